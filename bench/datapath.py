"""`datapath`: the KVM agent on real files against `cp --sparse=always`.

A qcow2 template with real data (full: 2 GiB virtual, 1 GiB written with a pattern
by `qemu-io`; quick: 256 MiB, 128 MiB written) sits in an image-store directory.
`KvmAgent().handle(...)` runs each command as the dispatcher would:

- template copy to a pool: `CopyCommand` image store -> primary (`qemu-img info`,
  then a sparse byte copy to a staged file, `qemu-img check`, `qemu-img info`,
  rename; `qemu-img convert` only for a raw template);
- volume migration: `CopyCommand` volume on pool A -> pool B (the same byte copy of
  a volume with no backing file; a linked clone is flattened by `convert`);
- linked clone: `CopyCommand` template on primary -> volume (`qemu-img create -b`),
  for a sparse 1 GiB and a sparse 20 GiB template.

Baseline for copy and migration: `cp --sparse=always` of the same source file into
the same directory; ratio = cp time / agent time (1.0: as fast as cp). Agent and cp
runs alternate (which goes first alternates too), after one untimed round; before
each timed run both outputs are removed and `sync` runs (untimed), so the
writeback of earlier copies lands on neither side. Medians of 5 pairs (quick: 3).
For the clone: the 1 GiB template's clone time; ratio = 20 GiB time / 1 GiB time,
medians of 5. The files stay in the page cache, so this measures the copy path,
not the disk.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import Figure, Options, median

GiB = 1 << 30
MiB = 1 << 20


def _qemu_img(*args: str) -> None:
    subprocess.run(["qemu-img", *args], check=True, capture_output=True)


def _template(path: Path, virtual: int, written: int) -> None:
    _qemu_img("create", "-q", "-f", "qcow2", str(path), str(virtual))
    if written:
        chunk = 64 * MiB
        cmds: list[str] = []
        for offset in range(0, written, chunk):
            cmds += [
                "-c",
                f"write -P 0x{(offset // chunk) % 255 + 1:02x} {offset} {chunk}",
            ]
        subprocess.run(["qemu-io", *cmds, str(path)], check=True, capture_output=True)


def _ok(answer: Any) -> Any:
    assert answer.result, getattr(answer, "details", answer)
    return answer


def _timed(fn: Any, cleanup: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        cleanup()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    cleanup()
    return median(times)


def _paired(
    agent: Any, agent_cleanup: Any, cp: Any, cp_cleanup: Any, repeats: int
) -> tuple[list[float], list[float]]:
    """Agent and cp times taken alternately, each run with no writeback pending.

    A 1 GiB copy leaves 1 GiB of dirty pages. Before each timed run both outputs are
    removed (which drops their dirty pages unwritten) and `sync` runs, untimed, so
    no run pays for the writeback of an earlier one. One untimed round first (the
    first 1 GiB written into fresh memory is several times slower on this VM), and
    the side that goes first alternates, so neither always follows the other."""
    agent_times: list[float] = []
    cp_times: list[float] = []
    sides = [(agent, agent_times), (cp, cp_times)]
    for round_ in range(repeats + 1):
        for fn, times in sides if round_ % 2 else sides[::-1]:
            agent_cleanup()
            cp_cleanup()
            os.sync()
            start = time.perf_counter()
            fn()
            if round_:
                times.append(time.perf_counter() - start)
    agent_cleanup()
    cp_cleanup()
    return agent_times, cp_times


def measure(root: Path, *, quick: bool) -> dict[str, float]:
    from executors.agents.kvm import KvmAgent
    from ledger.commands import (
        CopyCommand,
        ImageStoreTO,
        PrimaryDataStoreTO,
        TemplateObjectTO,
        VolumeObjectTO,
    )

    agent = KvmAgent()
    store_dir, pool_a, pool_b = root / "sec", root / "pa", root / "pb"
    for d in (store_dir, pool_a, pool_b):
        d.mkdir()
    store = ImageStoreTO(uuid=str(uuid.uuid4()), name="sec", uri=str(store_dir))
    pa = PrimaryDataStoreTO(
        uuid=str(uuid.uuid4()), name="pa", poolType="Filesystem", path=str(pool_a)
    )
    pb = PrimaryDataStoreTO(
        uuid=str(uuid.uuid4()), name="pb", poolType="Filesystem", path=str(pool_b)
    )
    virtual, written = (256 * MiB, 128 * MiB) if quick else (2 * GiB, GiB)
    tid = str(uuid.uuid4())
    source = store_dir / "tmpl.qcow2"
    _template(source, virtual, written)
    repeats = 3 if quick else 5

    def cid() -> str:
        return str(uuid.uuid4())

    # template copy to a pool
    copy_cmd = CopyCommand(
        commandId=cid(),
        srcTO=TemplateObjectTO(
            uuid=tid, name="t", format="QCOW2", dataStore=store, path="tmpl.qcow2"
        ),
        destTO=TemplateObjectTO(uuid=tid, name="t", format="QCOW2", dataStore=pa),
        wait=3600,
    )
    copied = pool_a / tid
    cp_target = pool_a / "cp.qcow2"
    copy_times = _paired(
        lambda: _ok(agent.handle(copy_cmd)),
        lambda: copied.unlink(missing_ok=True),
        lambda: subprocess.run(
            ["cp", "--sparse=always", str(source), str(cp_target)], check=True
        ),
        lambda: cp_target.unlink(missing_ok=True),
        repeats,
    )
    # a volume on pool A (a full copy of the template), migrated to pool B
    _ok(agent.handle(copy_cmd))
    vid = str(uuid.uuid4())
    shutil.copyfile(copied, pool_a / vid)
    migrate_cmd = CopyCommand(
        commandId=cid(),
        srcTO=VolumeObjectTO(
            uuid=vid,
            name="v",
            volumeType="DATADISK",
            size=virtual,
            dataStore=pa,
            path=vid,
        ),
        destTO=VolumeObjectTO(
            uuid=vid, name="v", volumeType="DATADISK", size=virtual, dataStore=pb
        ),
        wait=3600,
    )
    cp_migrate_target = pool_b / "cp.qcow2"
    migrate_times = _paired(
        lambda: _ok(agent.handle(migrate_cmd)),
        lambda: (pool_b / vid).unlink(missing_ok=True),
        lambda: subprocess.run(
            ["cp", "--sparse=always", str(pool_a / vid), str(cp_migrate_target)],
            check=True,
        ),
        lambda: cp_migrate_target.unlink(missing_ok=True),
        repeats,
    )
    # linked clones of a sparse 1 GiB and 20 GiB base template on the pool
    clones: dict[int, float] = {}
    for size_gib in (1, 20):
        base = str(uuid.uuid4())
        _template(pool_a / base, size_gib * GiB, 4 * MiB)
        dest = str(uuid.uuid4())
        clone_cmd = CopyCommand(
            commandId=cid(),
            srcTO=TemplateObjectTO(
                uuid=base, name="b", format="QCOW2", dataStore=pa, path=base
            ),
            destTO=VolumeObjectTO(
                uuid=dest, name="c", volumeType="ROOT", size=GiB, dataStore=pa
            ),
            wait=600,
        )
        clones[size_gib] = _timed(
            lambda cmd=clone_cmd: _ok(agent.handle(cmd)),
            lambda dest=dest: (pool_a / dest).unlink(missing_ok=True),
            5,
        )
    agent_copy, cp_copy = map(median, copy_times)
    agent_migrate, cp_migrate = map(median, migrate_times)
    return {
        "template_virtual_bytes": virtual,
        "template_written_bytes": written,
        "template_file_bytes": source.stat().st_size,
        "agent_copy_s": agent_copy,
        "cp_copy_s": cp_copy,
        "agent_migrate_s": agent_migrate,
        "cp_migrate_s": cp_migrate,
        "clone_1g_s": clones[1],
        "clone_20g_s": clones[20],
        "agent_copy_runs_s": copy_times[0],
        "cp_copy_runs_s": copy_times[1],
        "agent_migrate_runs_s": migrate_times[0],
        "cp_migrate_runs_s": migrate_times[1],
    }


def run(opts: Options) -> list[Figure]:
    if not shutil.which("qemu-img") or not shutil.which("qemu-io"):
        raise RuntimeError("qemu-img and qemu-io are needed (make qemu)")
    root = Path(tempfile.mkdtemp(prefix="datapath-", dir=opts.workdir))
    try:
        m = measure(root, quick=opts.quick)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    size = f"{m['template_written_bytes'] // MiB} MiB of data"
    return [
        Figure(
            benchmark="datapath",
            name=f"template copy to pool ({size})",
            value=m["agent_copy_s"],
            unit="s",
            baseline="cp --sparse=always, same file",
            baseline_value=m["cp_copy_s"],
            ratio=m["cp_copy_s"] / m["agent_copy_s"],
            target=0.8,
            target_text=">= 0.8 of cp",
            extra=m,
        ),
        Figure(
            benchmark="datapath",
            name=f"volume migration pool to pool ({size})",
            value=m["agent_migrate_s"],
            unit="s",
            baseline="cp --sparse=always, same file",
            baseline_value=m["cp_migrate_s"],
            ratio=m["cp_migrate_s"] / m["agent_migrate_s"],
            target=0.8,
            target_text=">= 0.8 of cp",
        ),
        Figure(
            benchmark="datapath",
            name="linked clone of a 20 GiB template",
            value=m["clone_20g_s"] * 1000,
            unit="ms",
            baseline="linked clone of a 1 GiB template",
            baseline_value=m["clone_1g_s"] * 1000,
            ratio=m["clone_20g_s"] / m["clone_1g_s"],
            target=1.5,
            direction="lower",
            target_text="<= 1.5x",
        ),
    ]
