"""`volume resize`: the file grows, the pool reserves the difference first, and a
failed resize gives the reservation back."""

from __future__ import annotations

import json
import subprocess

from tests.integration.conftest import Storctl, simulator_zone

GiB = 1 << 30


def test_resize_grows_the_file_and_the_reservation(tmp_path):
    (tmp_path / "p1").mkdir()
    cli = Storctl(str(tmp_path / "ledger.db"))
    cli.ok("host", "add", "kvm", "--zone", "z1", "--cluster", "c1")
    cli.ok("pool", "add", "p1", "--zone", "z1", "--cluster", "c1",
           "--path", str(tmp_path / "p1"), "--capacity", "10G",
           "--overprovision", "1")  # fmt: skip
    cli.ok("volume", "create", "d", "--zone", "z1", "--size", "1G", "--pool", "p1")
    before = cli.pool("p1")["disksizeallocated"]
    grown = cli.ok("volume", "resize", "d", "--size", "2G")
    assert (grown["size"], grown["state"]) == (2 * GiB, "Ready")
    info = json.loads(subprocess.run(
        ["qemu-img", "info", "--output=json", str(tmp_path / "p1" / grown["path"])],
        capture_output=True, text=True, check=True).stdout)  # fmt: skip
    assert info["virtual-size"] == 2 * GiB
    assert cli.pool("p1")["disksizeallocated"] == before + GiB
    for size, words in (("2G", "the volume is that size"), ("512M", "smaller"),
                        ("100G", "over the 85% threshold")):  # fmt: skip
        refused = cli.run("volume", "resize", "d", "--size", size)
        assert refused.code == 2, refused
        assert words in refused.err
    assert cli.pool("p1")["disksizeallocated"] == before + GiB


def test_failed_resize_gives_the_reservation_back(tmp_path):
    cli = Storctl(str(tmp_path / "sim.db"))
    simulator_zone(cli)
    cli.ok("volume", "create", "d", "--zone", "z1", "--size", "1G", "--pool", "p1")
    before = cli.pool("p1")["disksizeallocated"]
    cli.ok("simulator", "configure", "--host", "sim1", "--command",
           "ResizeVolumeCommand", "--fail", "resize refused by the host",
           "--count", "1")  # fmt: skip
    failed = cli.run("volume", "resize", "d", "--size", "3G")
    assert failed.code == 3
    assert "resize refused by the host" in failed.err
    volume = cli.volume("d")
    assert (volume["size"], volume["state"]) == (GiB, "Ready")
    assert cli.pool("p1")["disksizeallocated"] == before
