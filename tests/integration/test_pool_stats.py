"""Physical use: `storctl pool stats` measures a pool through a host, and the
allocators refuse a pool whose use reaches `pool.storage.capacity.disablethreshold`.

A KVM host measures a directory pool by the blocks its files occupy, on real files;
the simulator has no disk and reports nothing used.
"""

from __future__ import annotations

import os
from pathlib import Path

from .conftest import SimZone, Storctl

MiB = 1 << 20


def _kvm_pool(cli: Storctl, root: Path, capacity: str) -> None:
    root.mkdir()
    cli.ok("host", "add", "kvm1", "--zone", "z1", "--cluster", "c1")
    cli.ok("pool", "add", "p1", "--zone", "z1", "--cluster", "c1",
           "--path", str(root), "--capacity", capacity,
           "--overprovision", "1")  # fmt: skip


def _fill(path: Path, size: int) -> None:
    with path.open("wb") as f:  # random bytes: no filesystem can make them sparse
        f.write(os.urandom(size))
        f.flush()
        os.fsync(f.fileno())


def test_a_pool_used_past_the_threshold_is_refused_until_measured_again(
    tmp_path: Path,
) -> None:
    cli = Storctl(str(tmp_path / "ledger.db"))
    root = tmp_path / "p1"
    _kvm_pool(cli, root, "8M")
    assert cli.pool("p1")["disksizeused"] == 0

    (root / "sub").mkdir()
    _fill(root / "sub" / "someone-elses.img", 7 * MiB)
    measured = cli.ok("pool", "stats", "p1")
    assert 7 * MiB <= measured["disksizeused"] < 8 * MiB

    refused = cli.run(
        "volume", "create", "d1", "--zone", "z1", "--size", "1M", "--pool", "p1"
    )
    assert refused.code == 3, refused
    why = cli.ok("why", "d1")
    assert [v["pool"] for v in why["verdicts"]] == ["p1"]
    reason = why["verdicts"][0]["reason"]
    assert "used on disk" in reason, reason
    assert "at or over the 85% used threshold" in reason, reason
    assert cli.pool("p1")["disksizeallocated"] == 0

    (root / "sub" / "someone-elses.img").unlink()
    assert cli.ok("pool", "stats", "p1")["disksizeused"] < MiB
    created = cli.ok(
        "volume", "create", "d2", "--zone", "z1", "--size", "1M", "--pool", "p1"
    )
    assert created["storage"] == "p1"


def test_the_threshold_is_a_setting(tmp_path: Path) -> None:
    cli = Storctl(str(tmp_path / "ledger.db"))
    root = tmp_path / "p1"
    _kvm_pool(cli, root, "8M")
    _fill(root / "big.img", 7 * MiB)
    cli.ok("pool", "stats", "p1")
    cli.ok("config", "set", "pool.storage.capacity.disablethreshold", "0.95")
    created = cli.ok(
        "volume", "create", "d1", "--zone", "z1", "--size", "1M", "--pool", "p1"
    )
    assert created["storage"] == "p1"


def test_stats_of_a_simulator_pool_and_of_an_unknown_one(sim: SimZone) -> None:
    cli = sim.cli
    assert cli.ok("pool", "stats", "p1")["disksizeused"] == 0
    missing = cli.run("pool", "stats", "nope")
    assert missing.code != 0
    assert "nope" in missing.err
    cli.ok("host", "disable", "sim1")
    unreachable = cli.run("pool", "stats", "p1")
    assert unreachable.code == 3, unreachable
    assert "No remote endpoint" in unreachable.err
