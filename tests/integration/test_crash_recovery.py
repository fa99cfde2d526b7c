"""A worker SIGKILLed in the middle of an agent command, then recovery (SQLite).

The dispatcher's promise (executors/dispatcher.py): host work is at-least-once, state
changes exactly-once. So after a kill the command is sent again, the job still
settles, and the ledger holds one answer per request, never two. On KVM the crashed
run's temporary file (`.NAME.part`) must not survive the recovery.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from .conftest import (
    Storctl,
    assert_answered_at_most_once,
    finish,
    ledger_events,
    simulator_zone,
    wait_for,
)


def _kill(proc: subprocess.Popen[str]) -> None:
    """SIGKILL one process we started (by its pid) and reap it."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.communicate()


def _every_request_answered_once(db: str) -> None:
    pairs = assert_answered_at_most_once(db)
    unanswered = [req.kind for req, answers in pairs.values() if not answers]
    assert unanswered == [], f"requests never answered: {unanswered}"


def test_executor_killed_mid_copy_then_job_wait_finishes(sqlite_cli: Storctl) -> None:
    cli = sqlite_cli
    simulator_zone(cli)
    cli.ok("simulator", "configure", "--host", "sim1",
           "--command", "CopyCommand", "--delay", "30")  # fmt: skip
    jobid = cli.ok("vm", "deploy", "vm1", "--template", "t1", "--zone", "z1",
                   run_async=True)["jobid"]  # fmt: skip
    assert cli.job(jobid)["status"] == "pending"

    executor = cli.popen("executor", "run")
    try:
        # The dispatcher is inside the delayed CopyCommand once the fault is used.
        wait_for(
            lambda: any(
                e.kind == "SimulatorPlan.FaultUsed" for e in ledger_events(cli.db)
            ),
            what="the executor to start the delayed CopyCommand",
        )
        assert executor.poll() is None
    finally:
        _kill(executor)

    events = ledger_events(cli.db)
    assert [e.kind for e in events if e.kind.endswith("CopyAnswered")] == []
    assert cli.job(jobid)["status"] == "pending"

    cli.ok("simulator", "clear")
    waited = Storctl(cli.db, subprocess=True).run("job", "wait", jobid,
                                                  "--timeout", "20")  # fmt: skip
    assert waited.code == 0, waited
    assert waited.json["status"] == "succeeded"

    root = cli.volume("ROOT-vm1")
    assert root["state"] == "Ready"
    assert root["storage"] == "p1"
    assert cli.ok("vm", "show", "vm1")["state"] == "Running"
    _every_request_answered_once(cli.db)
    copies = [e for e in ledger_events(cli.db) if e.kind.endswith("CopyAnswered")]
    assert sorted(e.kind for e in copies) == [
        "DataObjectInStore.CopyAnswered",  # the template onto the pool
        "Volume.CopyAnswered",  # the ROOT clone
    ]


def test_killed_executor_does_not_block_the_next_one(sqlite_cli: Storctl) -> None:
    """The lease of a SIGKILLed worker is free at once (same machine, pid gone):
    `executor run --once` takes it and finishes the job without waiting for TTL."""
    cli = sqlite_cli
    simulator_zone(cli)
    cli.ok("simulator", "configure", "--host", "sim1",
           "--command", "CopyCommand", "--delay", "30", "--count", "1")  # fmt: skip
    jobid = cli.ok("vm", "deploy", "vm1", "--template", "t1", "--zone", "z1",
                   run_async=True)["jobid"]  # fmt: skip
    executor = cli.popen("executor", "run")
    try:
        wait_for(
            lambda: any(
                e.kind == "SimulatorPlan.FaultUsed" for e in ledger_events(cli.db)
            ),
            what="the executor to start the delayed CopyCommand",
        )
    finally:
        _kill(executor)

    # the fault was for one command, already used: the re-sent copy is answered
    once = finish(cli.popen("executor", "run", "--once"), timeout=20)
    assert once.code == 0, once
    assert cli.job(jobid)["status"] == "succeeded"
    assert cli.volume("ROOT-vm1")["state"] == "Ready"
    _every_request_answered_once(cli.db)


# ------------------------------------------------------------------ KVM

SHIM = """#!/bin/sh
# qemu-img, except that `check` (of the copied template, before its rename) finishes
# and then never returns (until killed): a worker killed now leaves a finished
# temporary file behind.
if [ "$1" = check ]; then
    {real} "$@" || exit $?
    echo $$ > {marker}
    exec cat {fifo}
fi
exec {real} "$@"
"""


@pytest.mark.qemu
@pytest.mark.skipif(not shutil.which("qemu-img"), reason="needs qemu-img")
def test_kvm_kill_mid_copy_leaves_no_part_file(tmp_path: Path) -> None:
    from .test_deploy_kvm import KvmZone, qemu_info, qemu_io

    kvm = KvmZone(tmp_path)
    cli = kvm.cli
    template = kvm.register("tiny")
    shim_dir = tmp_path / "bin"
    shim_dir.mkdir()
    marker, fifo = tmp_path / "check.pid", tmp_path / "check.fifo"
    os.mkfifo(fifo)
    shim = shim_dir / "qemu-img"
    shim.write_text(
        SHIM.format(real=shutil.which("qemu-img"), marker=marker, fifo=fifo)
    )
    shim.chmod(0o755)

    jobid = cli.ok("vm", "deploy", "web1", "--template", "tiny", "--zone", "z1",
                   run_async=True)["jobid"]  # fmt: skip
    path = f"{shim_dir}{os.pathsep}{os.environ['PATH']}"
    executor = cli.popen("executor", "run", env={"PATH": path})
    shim_pid = None
    try:
        shim_pid = int(
            wait_for(
                lambda: marker.exists() and marker.read_text().strip(),
                what="the template copy to finish writing its temporary file",
            )
        )
    finally:
        _kill(executor)
        if shim_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(shim_pid, signal.SIGKILL)

    base = kvm.pool_dir / template["id"]
    part = kvm.pool_dir / f".{template['id']}.part"
    assert part.exists(), sorted(p.name for p in kvm.pool_dir.iterdir())
    assert not base.exists()
    assert cli.job(jobid)["status"] == "pending"

    waited = Storctl(cli.db, subprocess=True).run("job", "wait", jobid,
                                                  "--timeout", "20")  # fmt: skip
    assert waited.code == 0, waited
    assert json.loads(waited.out)["status"] == "succeeded"

    leftovers = [p.name for p in kvm.pool_dir.iterdir() if p.name.endswith(".part")]
    assert leftovers == []
    root = cli.volume("ROOT-web1")
    assert root["state"] == "Ready"
    assert base.is_file()
    assert qemu_info(base).get("backing-filename") is None
    qemu_io(kvm.volume_file(root), "read -P 0xab 0 64k", read_only=True)
    _every_request_answered_once(cli.db)
