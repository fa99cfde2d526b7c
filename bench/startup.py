"""`startup`: whole `storctl` commands against `python -c pass`, medians of fresh
processes interleaved in one run.

What an operator feels is a command's wall time, most of it imports. Three
commands, each as a fresh process of the venv's interpreter, against bare Python's
start in the same run (issue 20, item 1):

- `storctl volume list` on a ledger of 1,000 volumes: a read command, which on a
  caught-up SQLite ledger imports neither the write side nor psycopg (<= 2.5x);
- `storctl volume create NAME --zone z1 --size 1G`, which stays Allocated: it
  records events, so it imports eventsourcing and the aggregates, but no executor
  and no psycopg (<= 4x);
- `storctl --help`: click's own help (informative: no hand-written fast path);
- `python -c 'import click'`: what any click command costs before it does
  anything (informative: the floor under the two targets).

Bytecode is cached (in the work folder, `PYTHONPYCACHEPREFIX`) as it is for an
installed or activated storctl; `make` exports PYTHONDONTWRITEBYTECODE=1, which
would have every run compile every module and measure the compiler instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from bench.common import Figure, Options, median, percentile

VOLUMES = 1000
CREATE = ("--zone", "z1", "--size", "1G")


def _run(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def _ledger(path: Path, volumes: int) -> None:
    """A SQLite ledger with one host and `volumes` Allocated volumes, its tables
    caught up (as every write command leaves them)."""
    from cli.bootstrap import open_ledger
    from ledger.aggregate import Ctx
    from ledger.usecases import infrastructure
    from ledger.usecases import volumes as usecases
    from ledger.values import GiB, Hypervisor
    from projections.projector import catch_up

    ledger = open_ledger(str(path))
    try:
        infrastructure.register_host(
            ledger, Ctx.new("bench"), "kvm-01", "z1", "c1", Hypervisor.KVM
        )
        for i in range(volumes):  # a context per command, as the CLI makes them
            usecases.create_volume(
                ledger, Ctx.new("bench"), name=f"v-{i:04d}", zone="z1", size=GiB
            )
        catch_up(ledger)
    finally:
        ledger.close()


def run(opts: Options) -> list[Figure]:
    repeats = 7 if opts.quick else 21
    db = opts.workdir / "startup.db"
    _ledger(db, VOLUMES)
    exe = Path(sys.executable).with_name("storctl")
    storctl = [str(exe)] if exe.exists() else [sys.executable, "-m", "cli"]
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("STORCTL_DB", "PYTHONDONTWRITEBYTECODE")
    }
    env["STORCTL_DB"] = str(db)
    env["PYTHONPYCACHEPREFIX"] = str(opts.workdir / "pycache")
    commands = {
        "list": [*storctl, "volume", "list"],
        "create": [*storctl, "volume", "create", "{name}", *CREATE],
        "help": [*storctl, "--help"],
        "click": [sys.executable, "-c", "import click"],
        "bare": [sys.executable, "-c", "pass"],
    }
    times: dict[str, list[float]] = {k: [] for k in commands}
    made = 0

    def once(key: str) -> float:
        nonlocal made
        argv = commands[key]
        if key == "create":
            made += 1
            argv = [a.replace("{name}", f"startup-{made}") for a in argv]
        return _run(argv, env)

    for key in commands:  # warm the page cache and write the bytecode cache
        once(key)
    for _ in range(repeats):  # interleaved, so a noisy moment hits all of them
        for key in commands:
            times[key].append(once(key))
    bare = median(times["bare"])
    common = {"repeats": repeats, "baseline_p90_ms": percentile(times["bare"], 90)}

    def figure(key: str, name: str, target: float | None, text: str) -> Figure:
        value = median(times[key])
        return Figure(
            benchmark="startup",
            name=name,
            value=value * 1000,
            unit="ms",
            baseline="python -c pass (median)",
            baseline_value=bare * 1000,
            ratio=value / bare,
            target=target,
            direction="lower",
            target_text=text,
            extra={
                **common,
                "p90_ms": percentile(times[key], 90) * 1000,
                "min_ms": min(times[key]) * 1000,
                "baseline_p90_ms": common["baseline_p90_ms"] * 1000,
                "argv": commands[key],
            },
        )

    return [
        figure("list", f"storctl volume list, {VOLUMES:,} volumes", 2.5, "<= 2.5x"),
        figure("create", "storctl volume create (stays Allocated)", 4.0, "<= 4x"),
        figure("help", "storctl --help (click's own)", None, "informative"),
        figure("click", "python -c 'import click' (any click CLI's floor)", None, "-"),
    ]
