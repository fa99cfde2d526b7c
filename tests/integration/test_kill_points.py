"""Workers killed at many points of many concurrent operations, then restarted.

Real files (kvm agent, qemu-img): a batch of `--async` operations (deploys, data
volumes, snapshots) is worked by `storctl executor run`, which is SIGKILLed after a
growing number of notifications, again and again, and restarted. In the end every
job settles, every request has exactly one answer, and the pools hold no orphan and
no temporary file (`storctl reconcile` is clean). Also: several processes operating
on the same objects at once either win, lose cleanly (exit 2 or 3), never a traceback.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import Storctl, assert_answered_at_most_once, finish, ledger_events

KILLS = 6


def kvm_lab(tmp_path: Path) -> Storctl:
    for d in ("p1", "sec", "img"):
        (tmp_path / d).mkdir()
    image = tmp_path / "img" / "t.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "32M"],
                   check=True)  # fmt: skip
    cli = Storctl(str(tmp_path / "ledger.db"))
    cli.ok("host", "add", "kvm-1", "--zone", "z1", "--cluster", "c1")
    cli.ok("pool", "add", "p1", "--zone", "z1", "--cluster", "c1",
           "--path", str(tmp_path / "p1"), "--capacity", "20G")  # fmt: skip
    cli.ok("store", "add", "sec", "--zone", "z1", "--path", str(tmp_path / "sec"))
    cli.ok("config", "set", "template.url.allowed.roots", str(image.parent))
    cli.ok("template", "register", "t", "--url", image.as_uri(), "--format", "qcow2",
           "--zone", "z1")  # fmt: skip
    return cli


def test_executor_killed_at_many_points_then_everything_settles(tmp_path):
    cli = kvm_lab(tmp_path)
    jobs = []
    for i in range(3):
        jobs.append(cli.ok("vm", "deploy", f"vm-{i}", "--template", "t", "--zone",
                           "z1", run_async=True)["jobid"])  # fmt: skip
    for i in range(3):
        jobs.append(cli.ok("volume", "create", f"d-{i}", "--zone", "z1", "--size",
                           "64M", "--pool", "p1", run_async=True)["jobid"])  # fmt: skip
    rng = random.Random(7)
    for _ in range(KILLS):
        before = len(ledger_events(cli.db))
        worker = cli.popen("executor", "run")
        # let it make some progress (a random number of new events), then kill it
        target = before + rng.randint(1, 6)
        deadline = time.monotonic() + 20
        while len(ledger_events(cli.db)) < target and time.monotonic() < deadline:
            if worker.poll() is not None:
                break
            time.sleep(0.01)  # polling the ledger, not timing anything
        worker.send_signal(signal.SIGKILL)
        worker.communicate()
    # a clean finish: one worker until every job settles
    for job in jobs:
        done = cli.run("job", "wait", job, "--timeout", "60")
        assert done.code == 0, done
    pairs = assert_answered_at_most_once(cli.db)
    assert all(len(answers) == 1 for _, answers in pairs.values())
    # snapshots on the now Ready volumes, with one more kill in the middle
    snap_jobs = [cli.ok("snapshot", "create", f"d-{i}", run_async=True)["jobid"]
                 for i in range(3)]  # fmt: skip
    worker = cli.popen("executor", "run")
    worker.send_signal(signal.SIGKILL)
    worker.communicate()
    for job in snap_jobs:
        assert cli.run("job", "wait", job, "--timeout", "60").code == 0
    clean = cli.run("reconcile", "p1")
    assert clean.code == 0, clean
    assert list((tmp_path / "p1").rglob("*.part")) == []
    assert list((tmp_path / "p1").rglob(".*.part")) == []


@pytest.mark.parametrize("rounds", [3])
def test_processes_racing_on_the_same_objects_never_crash(db_url, rounds):
    cli = Storctl(db_url)
    cli.ok("host", "add", "sim", "--zone", "z1", "--cluster", "c1",
           "--hypervisor", "simulator")  # fmt: skip
    cli.ok("pool", "add", "p1", "--zone", "z1", "--cluster", "c1", "--path", "/sim/p",
           "--capacity", "100G", "--type", "simulator")  # fmt: skip
    cli.ok("pool", "add", "p2", "--zone", "z1", "--cluster", "c1", "--path", "/sim/q",
           "--capacity", "100G", "--type", "simulator")  # fmt: skip
    cli.ok("store", "add", "s", "--zone", "z1", "--path", "/sim/s",
           "--provider", "simulator")  # fmt: skip
    cli.ok("template", "register", "t", "--url", "http://x.invalid/t", "--format",
           "qcow2", "--zone", "z1")  # fmt: skip
    cli.ok("vm", "deploy", "vm", "--template", "t", "--zone", "z1")
    cli.ok("vm", "stop", "vm")
    vol = cli.ok("volume", "create", "shared", "--zone", "z1", "--size", "1G",
                 "--pool", "p1")["id"]  # fmt: skip
    ops = [
        ["volume", "attach", vol, "--vm", "vm"],
        ["volume", "detach", vol],
        ["snapshot", "create", vol],
        ["volume", "migrate", vol, "--pool", "p2"],
        ["volume", "migrate", vol, "--pool", "p1"],
        ["volume", "delete", vol],
        ["volume", "recover", vol],
    ]
    results = []
    for _ in range(rounds):
        procs = [cli.popen(*op) for op in ops]
        results += [(op, finish(p)) for op, p in zip(ops, procs, strict=True)]
    for op, result in results:
        assert result.code in (0, 2, 3), (op, result)
        assert "Traceback" not in result.err, (op, result)
        if result.code != 0:
            assert len(result.err.strip().splitlines()) == 1, (op, result)
    assert_answered_at_most_once(db_url)
    volume = cli.volume(vol)
    assert volume["state"] in ("Ready", "Destroy")
