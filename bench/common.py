"""What every benchmark shares: stores, timers, figures and the results file."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PG_URL = os.environ.get("STORCTL_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")


@dataclass
class Options:
    quick: bool
    stores: list[str]
    workdir: Path


@dataclass
class Figure:
    """One measured figure, its baseline measured in the same run, and the target.

    `ratio` is always oriented so that bigger-is-better targets read as
    `ratio >= target` ("higher") and smaller-is-better ones as `ratio <= target`
    ("lower"); `target` None means the figure is informative only."""

    benchmark: str
    name: str
    value: float
    unit: str
    store: str | None = None
    baseline: str | None = None
    baseline_value: float | None = None
    ratio: float | None = None
    target: float | None = None
    direction: str = "higher"  # or "lower"
    target_text: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool | None:
        if self.target is None:
            return None
        measured = self.ratio if self.ratio is not None else self.value
        if self.direction == "higher":
            return measured >= self.target
        return measured <= self.target

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["passed"] = self.passed
        return out


def python_loop_ms() -> float:
    """How fast this machine runs Python right now: the best of five runs of a fixed
    loop, in ms. Taken before and after each benchmark, it lets runs on different
    machines (and the moods of one shared machine) be compared: the ratios are the
    figures, but an absolute target (seconds, milliseconds) moves with this."""
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        total = 0
        for i in range(1_000_000):
            total += i
        best = min(best, time.perf_counter() - start)
    return round(best * 1000, 1)


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_kb"] = int(line.split()[1])
                break
    with contextlib.suppress(Exception):
        from importlib.metadata import version

        info["eventsourcing"] = version("eventsourcing")
    with contextlib.suppress(Exception):
        info["sqlite"] = __import__("sqlite3").sqlite_version
    with contextlib.suppress(Exception):
        out = subprocess.run(
            ["qemu-img", "--version"], capture_output=True, text=True, check=False
        )
        info["qemu_img"] = out.stdout.splitlines()[0]
    with contextlib.suppress(Exception):
        info["git_commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    return info


def pg_available() -> bool:
    try:
        import psycopg

        from ledger.store.database import parse_db, pg_connect_args

        with psycopg.connect(**pg_connect_args(parse_db(PG_URL)), connect_timeout=3):
            return True
    except Exception:
        return False


@contextlib.contextmanager
def database(store: str, workdir: Path, label: str) -> Iterator[str]:
    """A fresh, empty database URL: a new SQLite file, or a new PostgreSQL schema
    (dropped afterwards)."""
    # Letters, digits and _ only, whatever the label says: a schema name takes no
    # more (parse_db refuses the rest), a file name no separator.
    label = re.sub(r"\W", "_", label)
    if store == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=workdir))
        try:
            yield str(folder / "ledger.db")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    from ledger.store.database import parse_db, pg_connect_args

    schema = f"bench_{label}_{uuid.uuid4().hex[:8]}"
    url = f"{PG_URL}?schema={schema}"
    try:
        yield url
    finally:
        import psycopg

        with psycopg.connect(**pg_connect_args(parse_db(url)), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def open_ledger(url: str, cls: Any = None, **env: str) -> Any:
    """The Ledger (or a subclass) on `url`, through the composition root
    (`cli.bootstrap`), as the CLI opens it."""
    from cli.bootstrap import open_ledger as bootstrap_open
    from ledger.app import Ledger

    return bootstrap_open(url, cls=cls or Ledger, **env)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * pct / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def median(values: list[float]) -> float:
    return statistics.median(values)


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 0.01:
        return f"{value:.3f}"
    return f"{value:.2e}"


def table(figures: list[Figure]) -> str:
    rows = [("figure", "store", "value", "unit", "baseline", "ratio", "target", "")]
    for f in figures:
        verdict = {True: "PASS", False: "MISS", None: ""}[f.passed]
        rows.append(
            (
                f.name,
                f.store or "",
                fmt(f.value),
                f.unit,
                fmt(f.baseline_value),
                fmt(f.ratio),
                f.target_text,
                verdict,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def new_volume(ctx: Any, volume_id: uuid.UUID, size: int) -> Any:
    """An unsaved data volume in Allocated (as `create_volume` makes one)."""
    import inspect

    from ledger.values import VolumeType
    from ledger.volume import Volume

    fields: dict[str, Any] = {
        "id": volume_id,
        "name": "bench",
        "volume_type": VolumeType.DATADISK,
        "size": size,
        "zone_id": "z1",
        "template_id": None,
        "snapshot_id": None,
        "vm_id": None,
        "device_id": None,
        "tags": [],
    }
    if "provisioning_type" in inspect.signature(Volume.__init__).parameters:
        fields["provisioning_type"] = "THIN"
    return Volume.create(Volume.Allocated, ctx, **fields)
