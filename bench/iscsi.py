"""`iscsi`: a template written into an iSCSI LUN against `qemu-img convert` to a file.

A qcow2 template with real data (full: 2 GiB virtual, 1 GiB written by `qemu-io`;
quick: 256 MiB virtual, 128 MiB written) sits in an image-store directory. The KVM
agent runs the managed pool's `CopyCommand` (template on the image store -> ROOT
volume on an iSCSI pool of the lab's tgtd) as the dispatcher would: a sparse LUN
file, its target and CHAP account made (tgtadm), `qemu-img convert` over iSCSI
(libiscsi) with the CHAP secret, the LUN renamed into place and re-added. Every
run is a new volume, deleted (untimed) afterwards.

Baseline: `qemu-img convert -O raw` of the same template into a local raw file on
the same file system, then an `fdatasync` of that file, measured in the same run:
both ends durable alike (the agent's copy ends with a SCSI SYNCHRONIZE CACHE,
which tgtd turns into an fdatasync of the LUN file). ratio = baseline time / agent
time (1.0: as fast). Runs alternate after one untimed round, with `sync` (untimed)
before each, medians of 5 (quick: 3). Informative figures: the bare `qemu-img
convert` over iSCSI (no tgtadm, into a LUN already filled once), and the local
convert without the fdatasync (qemu-img's default cache mode: the data only in the
page cache). Not the baseline: `qemu-img convert -t writeback` to a local file,
which on this VM spends seconds of system time for 1 GiB (2.9 s against 0.6 s for
convert + fdatasync), flattering the ratio.

Skipped (no figures, one line) when the lab's tgtd is not up (`make lab-iscsi`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import Figure, Options, median

GiB = 1 << 30
MiB = 1 << 20
CREDENTIALS = "lab-iscsi"


def _qemu(*args: str) -> None:
    subprocess.run(list(args), check=True, capture_output=True)


def _template(path: Path, virtual: int, written: int) -> None:
    _qemu("qemu-img", "create", "-q", "-f", "qcow2", str(path), str(virtual))
    chunk = 64 * MiB
    cmds: list[str] = []
    for offset in range(0, written, chunk):
        cmds += ["-c", f"write -P 0x{(offset // chunk) % 255 + 1:02x} {offset} {chunk}"]
    _qemu("qemu-io", *cmds, str(path))


def lab_down() -> str | None:
    """Why the lab's tgtd cannot be used now; None when it can."""
    from executors.providers.iscsi.location import check, validate
    from ledger.errors import StorctlError

    try:
        from executors.credentials import resolve

        profile = resolve(CREDENTIALS)
        check(validate(f"iscsi://{profile.get('portal', '')}"), profile)
    except StorctlError as exc:
        return str(exc)
    return None


def _convert_local(source: Path, dest: Path, *, flush: bool) -> None:
    _qemu("qemu-img", "convert", "-O", "raw", "-f", "qcow2", str(source), str(dest))
    if flush:
        fd = os.open(dest, os.O_RDONLY)
        try:
            os.fdatasync(fd)
        finally:
            os.close(fd)


def _paired(
    sides: list[tuple[Callable[[], Any], Callable[[], Any]]], repeats: int
) -> list[list[float]]:
    """Each side's times, taken alternately with `sync` before each run; one
    untimed round first, and the side that goes first rotates."""
    times: list[list[float]] = [[] for _ in sides]
    order = list(range(len(sides)))
    for round_ in range(repeats + 1):
        for i in order[round_ % len(order) :] + order[: round_ % len(order)]:
            fn = sides[i][0]
            for _, clean in sides:
                clean()
            os.sync()
            start = time.perf_counter()
            fn()
            if round_:
                times[i].append(time.perf_counter() - start)
    for _, clean in sides:
        clean()
    return times


def measure(root: Path, *, quick: bool) -> dict[str, Any]:
    from executors.agents.kvm import KvmAgent
    from executors.credentials import resolve
    from executors.providers.iscsi import images
    from executors.providers.iscsi.layout import Lun
    from executors.providers.iscsi.location import parse_profile
    from ledger.commands import (
        CopyCommand,
        DeleteCommand,
        ImageStoreTO,
        PrimaryDataStoreTO,
        TemplateObjectTO,
        VolumeObjectTO,
    )

    profile = parse_profile(resolve(CREDENTIALS), CREDENTIALS)
    agent = KvmAgent()
    store_dir = root / "sec"
    store_dir.mkdir()
    virtual, written = (256 * MiB, 128 * MiB) if quick else (2 * GiB, GiB)
    source = store_dir / "tmpl.qcow2"
    _template(source, virtual, written)
    store = ImageStoreTO(uuid=str(uuid.uuid4()), name="sec", uri=str(store_dir))
    pool = PrimaryDataStoreTO(
        uuid=str(uuid.uuid4()),
        name="bench-lun",
        poolType="Iscsi",
        path=f"iscsi://{profile.portal}",
        credentials=CREDENTIALS,
    )
    template = TemplateObjectTO(
        uuid=str(uuid.uuid4()), name="t", format="QCOW2", dataStore=store,
        path="tmpl.qcow2",
    )  # fmt: skip
    current: dict[str, VolumeObjectTO] = {}

    def volume() -> VolumeObjectTO:
        return VolumeObjectTO(
            uuid=str(uuid.uuid4()), name="root", volumeType="ROOT", size=virtual,
            dataStore=pool,
        )  # fmt: skip

    def fill() -> None:
        current["v"] = volume()
        command = CopyCommand(str(uuid.uuid4()), template, current["v"], wait=3600)
        answer = agent.handle(command)
        assert answer.result, answer.details

    def drop() -> None:
        made = current.pop("v", None)
        if made is not None:
            answer = agent.handle(DeleteCommand(str(uuid.uuid4()), made))
            assert answer.result, answer.details

    # the bare convert over iSCSI: one LUN made once, filled again each time
    bare = volume()
    made = agent.handle(CopyCommand(str(uuid.uuid4()), template, bare, wait=3600))
    assert made.result, made.details
    lun = Lun.of(pool.uuid, bare.uuid, profile.lun_dir)
    spec = images.LunSpec(profile.portal, lun.iqn, lun.user, lun.secret_file)
    bare_argv = images.fill_argv(source, "qcow2", spec)

    local = root / "local.raw"

    def unlink() -> None:
        local.unlink(missing_ok=True)

    def nothing() -> None:
        pass

    repeats = 3 if quick else 5
    try:
        agent_s, flushed_s, unsafe_s, bare_s = _paired(
            [
                (fill, drop),
                (lambda: _convert_local(source, local, flush=True), unlink),
                (lambda: _convert_local(source, local, flush=False), unlink),
                (lambda: _qemu(*bare_argv), nothing),
            ],
            repeats,
        )  # fmt: skip
    finally:
        drop()
        answer = agent.handle(DeleteCommand(str(uuid.uuid4()), bare))
        assert answer.result, answer.details
        shutil.rmtree(lun.root, ignore_errors=True)
    return {
        "template_virtual_bytes": virtual,
        "template_written_bytes": written,
        "agent_fill_s": median(agent_s),
        "local_flushed_s": median(flushed_s),
        "local_unflushed_s": median(unsafe_s),
        "bare_iscsi_convert_s": median(bare_s),
        "agent_fill_runs_s": agent_s,
        "local_flushed_runs_s": flushed_s,
        "local_unflushed_runs_s": unsafe_s,
        "bare_iscsi_convert_runs_s": bare_s,
    }


def run(opts: Options) -> list[Figure]:
    if not shutil.which("qemu-img") or not shutil.which("qemu-io"):
        raise RuntimeError("qemu-img and qemu-io are needed (make qemu)")
    why = lab_down()
    if why is not None:
        print(f"# iscsi: skipped, the lab's tgtd is not usable: {why}", flush=True)
        return []
    root = Path(tempfile.mkdtemp(prefix="iscsi-", dir=opts.workdir))
    try:
        m = measure(root, quick=opts.quick)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    size = f"{m['template_written_bytes'] // MiB} MiB of data"
    agent = m["agent_fill_s"]
    return [
        Figure(
            benchmark="iscsi",
            name=f"template into an iSCSI LUN ({size})",
            value=agent,
            unit="s",
            baseline="qemu-img convert into a local raw file + fdatasync",
            baseline_value=m["local_flushed_s"],
            ratio=m["local_flushed_s"] / agent,
            target=0.8,
            target_text=">= 0.8 of a local convert",
            extra=m,
        ),
        Figure(
            benchmark="iscsi",
            name=f"bare qemu-img convert over iSCSI ({size})",
            value=m["bare_iscsi_convert_s"],
            unit="s",
            baseline="qemu-img convert into a local raw file + fdatasync",
            baseline_value=m["local_flushed_s"],
            ratio=m["local_flushed_s"] / m["bare_iscsi_convert_s"],
        ),
        Figure(
            benchmark="iscsi",
            name=f"template into an iSCSI LUN vs an unflushed copy ({size})",
            value=agent,
            unit="s",
            baseline="qemu-img convert into a local raw file (page cache only)",
            baseline_value=m["local_unflushed_s"],
            ratio=m["local_unflushed_s"] / agent,
        ),
    ]
