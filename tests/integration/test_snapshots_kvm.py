"""Snapshots, revert, volumes from snapshots and StorageMotion with real files.

Data written into a volume (qemu-io) before a snapshot is read back byte for byte
after later writes and a revert, for two snapshots in turn; a volume made from a
snapshot carries its data; a migration keeps the data, moves the file, and moves the
allocated size from one pool to the other exactly; a failed migration (simulator, and
a real failure with the kvm agent) leaves the volume Ready on its source with both
pools' capacity as before.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import Storctl, simulator_zone

MiB = 1 << 20
pytestmark = pytest.mark.skipif(shutil.which("qemu-io") is None, reason="no qemu-io")


def qemu_io(path: Path, command: str, *, read_only: bool = False) -> str:
    argv = ["qemu-io", *(["-r"] if read_only else []), "-f", "qcow2", "-c", command,
            str(path)]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    return proc.stdout + proc.stderr


def reads(path: Path, pattern: int) -> bool:
    out = qemu_io(path, f"read -P {pattern} 0 64k", read_only=True)
    return "read 65536/65536" in out and "Pattern verification failed" not in out


def write(path: Path, pattern: int) -> None:
    assert "wrote 65536/65536" in qemu_io(path, f"write -P {pattern} 0 64k")


@pytest.fixture
def lab(tmp_path: Path) -> tuple[Storctl, Path]:
    for d in ("p1", "p2", "sec"):
        (tmp_path / d).mkdir()
    cli = Storctl(str(tmp_path / "ledger.db"))
    cli.ok("host", "add", "kvm-1", "--zone", "z1", "--cluster", "c1")
    for pool in ("p1", "p2"):
        cli.ok("pool", "add", pool, "--zone", "z1", "--cluster", "c1",
               "--path", str(tmp_path / pool), "--capacity", "10G",
               "--overprovision", "1")  # fmt: skip
    cli.ok("store", "add", "sec", "--zone", "z1", "--path", str(tmp_path / "sec"))
    return cli, tmp_path


def volume_file(cli: Storctl, root: Path, ref: str) -> Path:
    v = cli.volume(ref)
    return root / v["storage"] / v["path"]


def test_two_snapshots_revert_in_turn_and_a_volume_from_one(lab):
    cli, root = lab
    cli.ok("volume", "create", "d1", "--zone", "z1", "--size", "32M", "--pool", "p1")
    disk = volume_file(cli, root, "d1")
    write(disk, 0xAA)
    s1 = cli.ok("snapshot", "create", "d1", "--name", "s1")
    assert s1["state"] == "BackedUp"
    write(disk, 0xBB)
    s2 = cli.ok("snapshot", "create", "d1", "--name", "s2")
    assert s2["parentid"] == s1["id"]  # the chain: s2 follows s1
    write(disk, 0xCC)
    assert cli.volume("d1")["state"] == "Ready"

    cli.ok("snapshot", "revert", "s2")
    assert reads(disk, 0xBB)
    write(disk, 0xDD)
    cli.ok("snapshot", "revert", "s1")
    assert reads(disk, 0xAA)
    assert not reads(disk, 0xBB)

    restored = cli.ok("volume", "create", "r2", "--from-snapshot", "s2")
    assert restored["state"] == "Ready"
    assert reads(volume_file(cli, root, "r2"), 0xBB)


def test_deleting_the_middle_of_a_chain_keeps_later_snapshots_restorable(lab):
    cli, root = lab
    cli.ok("volume", "create", "d1", "--zone", "z1", "--size", "32M", "--pool", "p1")
    disk = volume_file(cli, root, "d1")
    made = {}
    for name, pattern in (("s1", 0x11), ("s2", 0x22), ("s3", 0x33)):
        write(disk, pattern)
        made[name] = cli.ok("snapshot", "create", "d1", "--name", name)
    cli.ok("snapshot", "delete", "s2")  # s3 is a delta of s2: s2's file stays hidden
    assert cli.ok("snapshot", "show", made["s2"]["id"])["state"] == "Destroyed"
    assert [s["name"] for s in cli.ok("snapshot", "list")] == ["s1", "s3"]
    restored = cli.ok("volume", "create", "r3", "--from-snapshot", "s3")
    assert reads(volume_file(cli, root, restored["id"]), 0x33)
    cli.ok("snapshot", "revert", "s1")
    assert reads(disk, 0x11)
    files_before = sorted((root / "sec").rglob("*.qcow2"))
    cli.ok("snapshot", "delete", "s3")  # the last dependent: s2's hidden file goes too
    files_after = sorted((root / "sec").rglob("*.qcow2"))
    assert len(files_after) == len(files_before) - 2


def test_migration_keeps_data_moves_the_file_and_the_capacity(lab):
    cli, root = lab
    cli.ok("volume", "create", "d1", "--zone", "z1", "--size", "64M", "--pool", "p1")
    old_file = volume_file(cli, root, "d1")
    write(old_file, 0x5A)
    before = {p: cli.pool(p)["disksizeallocated"] for p in ("p1", "p2")}
    moved = cli.ok("volume", "migrate", "d1", "--pool", "p2")
    assert moved["storage"] == "p2"
    assert moved["state"] == "Ready"
    new_file = volume_file(cli, root, "d1")
    assert new_file.parent == root / "p2"
    assert reads(new_file, 0x5A)
    assert not old_file.exists()
    after = {p: cli.pool(p)["disksizeallocated"] for p in ("p1", "p2")}
    assert after["p1"] == before["p1"] - 64 * MiB
    assert after["p2"] == before["p2"] + 64 * MiB


def test_real_copy_failure_leaves_the_volume_on_its_source(lab):
    cli, root = lab
    cli.ok("volume", "create", "d1", "--zone", "z1", "--size", "16M", "--pool", "p1")
    disk = volume_file(cli, root, "d1")
    write(disk, 0x77)
    before = {p: cli.pool(p)["disksizeallocated"] for p in ("p1", "p2")}
    (root / "p2").rmdir()  # the destination's mount is gone: qemu-img cannot write
    failed = cli.run("volume", "migrate", "d1", "--pool", "p2")
    assert failed.code == 3, failed
    assert len(failed.err.strip().splitlines()) == 1
    volume = cli.volume("d1")
    assert (volume["state"], volume["storage"]) == ("Ready", "p1")
    assert reads(disk, 0x77)
    assert {p: cli.pool(p)["disksizeallocated"] for p in ("p1", "p2")} == before


def test_simulated_copy_failure_leaves_both_pools_as_before(tmp_path):
    cli = Storctl(str(tmp_path / "sim.db"))
    simulator_zone(cli)
    cli.ok("pool", "add", "p2", "--zone", "z1", "--cluster", "c1", "--path", "/sim/p2",
           "--capacity", "100G", "--type", "simulator")  # fmt: skip
    cli.ok("volume", "create", "d1", "--zone", "z1", "--size", "1G", "--pool", "p1")
    before = {p: cli.pool(p)["disksizeallocated"] for p in ("p1", "p2")}
    cli.ok("simulator", "configure", "--host", "sim1", "--command", "CopyCommand",
           "--fail", "disk error on the destination", "--count", "1")  # fmt: skip
    failed = cli.run("volume", "migrate", "d1", "--pool", "p2")
    assert failed.code == 3, failed
    assert "disk error on the destination" in failed.err
    volume = cli.volume("d1")
    assert (volume["state"], volume["storage"]) == ("Ready", "p1")
    assert {p: cli.pool(p)["disksizeallocated"] for p in ("p1", "p2")} == before
    # and the next migration goes through
    moved = cli.ok("volume", "migrate", "d1", "--pool", "p2")
    assert moved["storage"] == "p2"


def test_migration_of_a_volume_attached_to_a_running_vm_is_refused(tmp_path):
    cli = Storctl(str(tmp_path / "sim.db"))
    simulator_zone(cli)
    cli.ok("pool", "add", "p2", "--zone", "z1", "--cluster", "c1", "--path", "/sim/p2",
           "--capacity", "100G", "--type", "simulator")  # fmt: skip
    cli.ok("vm", "deploy", "web", "--template", "t1", "--zone", "z1")
    root_volume = cli.ok("volume", "list", "--vm", "web")[0]
    other = "p2" if root_volume["storage"] == "p1" else "p1"  # placement is random
    refused = cli.run("volume", "migrate", root_volume["id"], "--pool", other)
    assert refused.code == 2
    assert "running VM web" in refused.err
    refused = cli.run("volume", "migrate", root_volume["id"], "--pool", other, "--live")
    assert refused.code == 2
    assert "not supported" in refused.err
    cli.ok("vm", "stop", "web")
    moved = cli.ok("volume", "migrate", root_volume["id"], "--pool", other)
    assert moved["storage"] == other


def test_migration_between_clusters_is_staged_through_the_image_store(tmp_path):
    """No host reaches both pools: the copy goes pool -> image store -> pool, each
    leg on a host that reaches its two stores, and the data arrives intact."""
    for d in ("pa", "pb", "sec"):
        (tmp_path / d).mkdir()
    cli = Storctl(str(tmp_path / "ledger.db"))
    for host, cluster, pool in (("kvm-a", "ca", "pa"), ("kvm-b", "cb", "pb")):
        cli.ok("host", "add", host, "--zone", "z1", "--cluster", cluster)
        cli.ok("pool", "add", pool, "--zone", "z1", "--cluster", cluster,
               "--path", str(tmp_path / pool), "--capacity", "10G",
               "--overprovision", "1")  # fmt: skip
    cli.ok("store", "add", "sec", "--zone", "z1", "--path", str(tmp_path / "sec"))
    cli.ok("volume", "create", "d1", "--zone", "z1", "--size", "32M", "--pool", "pa")
    write(volume_file(cli, tmp_path, "d1"), 0x3C)
    moved = cli.ok("volume", "migrate", "d1", "--pool", "pb")
    assert (moved["storage"], moved["state"]) == ("pb", "Ready")
    assert reads(tmp_path / "pb" / moved["path"], 0x3C)
    assert list((tmp_path / "pa").iterdir()) == []
    assert list((tmp_path / "sec").rglob("*.qcow2")) == []  # the staged copy is gone
    assert cli.pool("pa")["disksizeallocated"] == 0
    assert cli.pool("pb")["disksizeallocated"] == 32 * MiB
    legs = [e for e in cli.ok("history", "volume", "d1") if e["event"] in
            ("StagedCopyRequested", "CopyRequested")]  # fmt: skip
    assert [e["event"] for e in legs] == ["CopyRequested", "StagedCopyRequested"]


def test_replay_before_a_migration_shows_the_old_pool(lab, tmp_path):
    cli, _ = lab
    cli.ok("volume", "create", "d1", "--zone", "z1", "--size", "16M", "--pool", "p1")
    head = cli.ok("projection", "status")["head"]
    cli.ok("volume", "migrate", "d1", "--pool", "p2")
    assert cli.volume("d1")["storage"] == "p2"
    before = tmp_path / "before.db"
    cli.ok("replay", "--until", str(head), "--into", str(before))
    assert Storctl(str(before)).volume("d1")["storage"] == "p1"
    assert cli.run("replay", "verify").code == 0
