"""`rbd`: the rbd driver on the lab's Ceph, against Ceph's own tools.

`KvmAgent().handle(...)` runs each command as the dispatcher would, on the pool
`rbd://admin@127.0.0.1:3300/storctl` with the credentials `lab-ceph` (the lab's
profile, `$STORCTL_CREDENTIALS`); when that pool does not answer (the lab is
down), the benchmark says why and is skipped, its figures empty.

- ROOT clone: `CopyCommand` template on the pool -> ROOT volume (`rbd info`,
  `rbd clone`, `rbd info`), from a sparse 1 GiB and a sparse 20 GiB template
  copied into the pool first (untimed); ratio = 20 GiB time / 1 GiB time, the
  target 1.5x (an RBD clone is O(1): it copies no data). Medians of 5 (quick: 3).
- template copy: `CopyCommand` image store -> pool of a qcow2 template with real
  data (full: 2 GiB virtual, 1 GiB written; quick: 128 MiB, 64 MiB written):
  `qemu-img convert -W -m 16` into `<uuid>.part`, snapshot, protect, rename.
  Baseline: `rbd import` of the same file into the same pool; ratio = import
  time / agent time (1.0: as fast as rbd import), target >= 0.8. Runs alternate
  (which goes first alternates too) after one untimed round; the images are
  removed between runs, untimed. Medians of 5 pairs (quick: one pair, no untimed
  round: every `rbd` call costs 50-200 ms on the lab, and quick must stay quick;
  its ratio is a smoke test, dominated by the fixed ~0.7 s of the eight Ceph
  calls around the copy that a 64 MiB import does not make).

Every image is named `bench-<uuid>` and removed at the end, whatever happens:
the lab is shared.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench.common import Figure, Options, median

GiB = 1 << 30
MiB = 1 << 20
MON = f"127.0.0.1:{3300 + int(os.environ.get('STORCTL_LAB_PORT_OFFSET') or 0)}"
URL = f"rbd://admin@{MON}/storctl"
CREDENTIALS = "lab-ceph"


def _template(path: Path, virtual: int, written: int) -> None:
    """A qcow2 of `virtual` bytes whose first `written` bytes hold a pattern."""
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path),
                    str(virtual)], check=True, capture_output=True)  # fmt: skip
    chunk, cmds = 64 * MiB, []
    for offset in range(0, written, chunk):
        length = min(chunk, written - offset)
        cmds += [
            "-c",
            f"write -P 0x{(offset // chunk) % 255 + 1:02x} {offset} {length}",
        ]
    subprocess.run(["qemu-io", *cmds, str(path)], check=True, capture_output=True)


def _ok(answer: Any) -> Any:
    assert answer.result, getattr(answer, "details", answer)
    return answer


def reachable() -> str | None:
    """None when the lab's pool answers; else why not, in one line."""
    from executors.credentials import resolve
    from executors.providers.rbd.provider import check
    from ledger.errors import InvalidInput

    if not shutil.which("rbd") or not shutil.which("qemu-img"):
        return "rbd and qemu-img are needed (make lab)"
    try:
        check(URL, resolve(CREDENTIALS))
    except InvalidInput as exc:
        return str(exc)
    return None


class Pool:
    """The lab's pool as `rbd` sees it, for the baseline and the clean-up."""

    def __init__(self) -> None:
        from executors.credentials import resolve

        creds = resolve(CREDENTIALS)
        self.base = ["rbd", "-c", str(creds.get("conf", "/dev/null")), "--id",
                     "admin", "--keyring", str(creds["keyring"]), "-m",
                     MON]  # fmt: skip
        self.made: set[str] = set()

    def rbd(self, *args: str, check: bool = True) -> int:
        done = subprocess.run([*self.base, *args], check=check, capture_output=True)
        return done.returncode

    def name(self) -> str:
        made = f"bench-{uuid.uuid4()}"
        self.made.add(made)
        return made

    def remove(self, image: str) -> None:
        """The image and its snapshots; already gone is fine."""
        spec = f"storctl/{image}"
        if self.rbd("rm", "--no-progress", spec, check=False) in (0, 2):
            return
        self.rbd("snap", "unprotect", f"{spec}@cloudstack-base-snap", check=False)
        self.rbd("snap", "purge", "--no-progress", spec, check=False)
        self.rbd("rm", "--no-progress", spec, check=False)

    def remove_all(self) -> None:
        clones = [n for n in self.made if n.startswith("bench-") and "clone" in n]
        for image in [*clones, *sorted(self.made - set(clones))]:
            self.remove(image)
            self.remove(image + ".part")


@contextlib.contextmanager
def lab_pool() -> Iterator[Pool]:
    pool = Pool()
    try:
        yield pool
    finally:
        pool.remove_all()


def _paired(
    agent: Callable[[], Any],
    agent_cleanup: Callable[[], Any],
    base: Callable[[], Any],
    base_cleanup: Callable[[], Any],
    repeats: int,
    *,
    warm_up: bool = True,
) -> tuple[list[float], list[float]]:
    """Agent and baseline alternately (one untimed round first if `warm_up`),
    each timed run starting from a pool without the other's image."""
    agent_times: list[float] = []
    base_times: list[float] = []
    sides = [(agent, agent_times), (base, base_times)]
    for round_ in range(0 if warm_up else 1, repeats + 1):
        for fn, times in sides if round_ % 2 else sides[::-1]:
            agent_cleanup()
            base_cleanup()
            start = time.perf_counter()
            fn()
            if round_:
                times.append(time.perf_counter() - start)
    agent_cleanup()
    base_cleanup()
    return agent_times, base_times


def measure(root: Path, pool: Pool, *, quick: bool) -> dict[str, Any]:
    from executors.agents.kvm import KvmAgent
    from ledger.commands import (
        CopyCommand,
        ImageStoreTO,
        PrimaryDataStoreTO,
        TemplateObjectTO,
        VolumeObjectTO,
    )

    agent = KvmAgent()
    store_dir = root / "sec"
    store_dir.mkdir()
    store = ImageStoreTO(uuid=str(uuid.uuid4()), name="sec", uri=str(store_dir))
    ceph = PrimaryDataStoreTO(
        uuid=str(uuid.uuid4()), name="ceph", poolType="RBD", path=URL,
        credentials=CREDENTIALS,
    )  # fmt: skip
    repeats = 3 if quick else 5

    def copy_command(file: str, tid: str) -> CopyCommand:
        return CopyCommand(
            commandId=str(uuid.uuid4()),
            srcTO=TemplateObjectTO(tid, "t", "QCOW2", store, path=file),
            destTO=TemplateObjectTO(tid, "t", "QCOW2", ceph),
            wait=3600,
        )

    # ROOT clones of a sparse 1 GiB and 20 GiB template copied into the pool
    clones: dict[int, float] = {}
    clone_runs: dict[int, list[float]] = {}
    for size_gib in (1, 20):
        file = f"sparse-{size_gib}g.qcow2"
        _template(store_dir / file, size_gib * GiB, 4 * MiB)
        tid = pool.name()
        _ok(agent.handle(copy_command(file, tid)))
        times = []
        for _ in range(repeats):
            vid = pool.name() + "-clone"
            pool.made.add(vid)
            clone = CopyCommand(
                commandId=str(uuid.uuid4()),
                srcTO=TemplateObjectTO(tid, "t", "RAW", ceph, path=tid),
                destTO=VolumeObjectTO(vid, "r", "ROOT", size_gib * GiB, ceph),
                wait=600,
            )
            start = time.perf_counter()
            _ok(agent.handle(clone))
            times.append(time.perf_counter() - start)
            pool.remove(vid)
        clones[size_gib] = median(times)
        clone_runs[size_gib] = times

    # a template with data, copied by the agent vs rbd import of the same file
    virtual, written = (128 * MiB, 64 * MiB) if quick else (2 * GiB, GiB)
    source = store_dir / "data.qcow2"
    _template(source, virtual, written)
    tid, imported = pool.name(), pool.name()
    command = copy_command(source.name, tid)
    agent_times, import_times = _paired(
        lambda: _ok(agent.handle(command)),
        lambda: pool.remove(tid),
        lambda: pool.rbd("import", "--no-progress", str(source), f"storctl/{imported}"),
        lambda: pool.remove(imported),
        1 if quick else repeats,
        warm_up=not quick,
    )
    return {
        "template_virtual_bytes": virtual,
        "template_written_bytes": written,
        "template_file_bytes": os.path.getsize(source),
        "clone_1g_s": clones[1],
        "clone_20g_s": clones[20],
        "clone_1g_runs_s": clone_runs[1],
        "clone_20g_runs_s": clone_runs[20],
        "agent_copy_s": median(agent_times),
        "rbd_import_s": median(import_times),
        "agent_copy_runs_s": agent_times,
        "rbd_import_runs_s": import_times,
    }


def run(opts: Options) -> list[Figure]:
    why = reachable()
    if why is not None:
        print(f"# rbd skipped: the lab's Ceph does not answer ({why})", file=sys.stderr)
        return []
    root = Path(tempfile.mkdtemp(prefix="rbd-", dir=opts.workdir))
    try:
        with lab_pool() as pool:
            m = measure(root, pool, quick=opts.quick)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    size = f"{m['template_written_bytes'] // MiB} MiB of data"
    return [
        Figure(
            benchmark="rbd",
            name="ROOT clone of a 20 GiB template on RBD",
            value=m["clone_20g_s"] * 1000,
            unit="ms",
            baseline="ROOT clone of a 1 GiB template",
            baseline_value=m["clone_1g_s"] * 1000,
            ratio=m["clone_20g_s"] / m["clone_1g_s"],
            target=1.5,
            direction="lower",
            target_text="<= 1.5x",
            extra=m,
        ),
        Figure(
            benchmark="rbd",
            name=f"template copy into RBD ({size})",
            value=m["agent_copy_s"],
            unit="s",
            baseline="rbd import, same file",
            baseline_value=m["rbd_import_s"],
            ratio=m["rbd_import_s"] / m["agent_copy_s"],
            target=0.8,
            target_text=">= 0.8 of rbd import",
        ),
    ]
