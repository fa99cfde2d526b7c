"""`storctl reconcile`: a real KVM pool (qemu-img) against the ledger.

Three VMs deployed from a tiny qcow2 template, then the pool is damaged the ways an
operator meets: a stray file (orphan), a deleted volume file (missing), a resized one
(size), a clone rebased onto another file (backing) and a staged write's `.part`
leftover. Each is reported once, exit 3; the clean pool exits 0.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from executors.reconcile import Claim, Scanner, files_under
from tests.integration.conftest import Storctl

pytestmark = pytest.mark.skipif(
    shutil.which("qemu-img") is None or shutil.which("qemu-io") is None,
    reason="qemu-img and qemu-io are needed for a real KVM pool",
)


def _qemu(*argv: str) -> None:
    subprocess.run(list(argv), check=True, capture_output=True)


@pytest.fixture
def kvm(db_url: str, tmp_path: Path) -> tuple[Storctl, Path]:
    for d in ("p1", "sec", "img"):
        (tmp_path / d).mkdir()
    image = tmp_path / "img" / "tiny.qcow2"
    _qemu("qemu-img", "create", "-f", "qcow2", str(image), "64M")
    _qemu("qemu-io", "-c", "write -P 0xab 0 64k", str(image))
    cli = Storctl(db_url)
    cli.ok("host", "add", "kvm1", "--zone", "z1", "--cluster", "c1")
    cli.ok("pool", "add", "p1", "--zone", "z1", "--cluster", "c1",
           "--path", str(tmp_path / "p1"), "--capacity", "10G",
           "--overprovision", "1")  # fmt: skip
    cli.ok("store", "add", "sec1", "--zone", "z1", "--path", str(tmp_path / "sec"))
    cli.ok("config", "set", "template.url.allowed.roots", str(tmp_path / "img"))
    cli.ok("template", "register", "tiny", "--url", f"file://{image}",
           "--format", "qcow2", "--zone", "z1")  # fmt: skip
    for vm in ("web1", "web2", "web3"):
        cli.ok("vm", "deploy", vm, "--template", "tiny", "--zone", "z1")
    return cli, tmp_path / "p1"


def test_clean_then_every_kind_of_damage(kvm: tuple[Storctl, Path]) -> None:
    cli, pool = kvm
    clean = cli.run("reconcile", "p1")
    assert clean.code == 0, clean
    assert clean.json == []

    vols = {v["name"]: v for v in cli.ok("volume", "list")}
    web1, web2, web3 = (vols[f"ROOT-web{i}"] for i in (1, 2, 3))
    _qemu("qemu-img", "create", "-f", "qcow2", str(pool / "stray.qcow2"), "64M")
    (pool / web2["path"]).unlink()
    _qemu("qemu-img", "resize", "-f", "qcow2", str(pool / web3["path"]), "128M")
    _qemu("qemu-img", "rebase", "-u", "-b", "stray.qcow2", "-F", "qcow2",
          "-f", "qcow2", str(pool / web1["path"]))  # fmt: skip
    (pool / f".{web3['id']}x.part").write_bytes(b"half")

    found = cli.run("reconcile", "p1")
    assert found.code == 3, found
    assert len(found.err.strip().splitlines()) == 1, found
    got = sorted((f["problem"], f["path"], f["objectid"]) for f in found.json)
    assert got == sorted(
        [
            ("orphan", "stray.qcow2", None),
            ("missing", web2["path"], web2["id"]),
            ("size", web3["path"], web3["id"]),
            ("backing", web1["path"], web1["id"]),
            ("leftover", f".{web3['id']}x.part", None),
        ]
    )
    size = next(f for f in found.json if f["problem"] == "size")
    assert (size["expected"], size["found"]) == (str(64 << 20), str(128 << 20))
    backing = next(f for f in found.json if f["problem"] == "backing")
    assert backing["found"] == "stray.qcow2"


def test_refusals(kvm: tuple[Storctl, Path]) -> None:
    cli, _ = kvm
    missing = cli.run("reconcile", "no-such-pool")
    assert missing.code == 2, missing
    assert len(missing.err.strip().splitlines()) == 1


def test_in_flight_files_are_not_orphans(tmp_path: Path) -> None:
    (tmp_path / "vol-1").write_bytes(b"")
    (tmp_path / ".vol-2.part").write_bytes(b"")
    (tmp_path / "sub").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "sub")
    claims = [Claim("volume", "1", "v", "vol-1", "Creating", settled=False)]
    findings = Scanner().scan(tmp_path, claims, in_flight=["vol-2"])
    assert [(f.problem, f.path) for f in findings] == [("orphan", "link")]
    assert files_under(tmp_path) == [".vol-2.part", "link", "vol-1"]


def test_a_backed_up_snapshot_left_primary_and_a_simulator_pool_is_refused(
    kvm: tuple[Storctl, Path],
) -> None:
    """On a directory pool a backup removes the snapshot from primary (its
    `primary_path` goes): the pool reconciles clean. A pool whose provider cannot
    list what it holds (the simulator) is refused: exit 2, one line."""
    cli, pool = kvm
    cli.ok("vm", "stop", "web1")
    snap = cli.ok("snapshot", "create", "ROOT-web1", "--name", "s1")
    assert snap["state"] == "BackedUp"
    assert not (pool / "snapshots").exists() or not any(
        (pool / "snapshots").rglob("*.qcow2")
    )
    clean = cli.run("reconcile", "p1")
    assert (clean.code, clean.json) == (0, []), clean

    cli.ok("host", "add", "sim1", "--zone", "z2", "--cluster", "c2",
           "--hypervisor", "simulator")  # fmt: skip
    cli.ok("pool", "add", "sim", "--zone", "z2", "--cluster", "c2",
           "--path", "/sim/p1", "--capacity", "10G", "--type", "simulator")  # fmt: skip
    refused = cli.run("reconcile", "sim")
    assert refused.code == 2, refused
    assert refused.err.strip().splitlines() == [
        "storctl: invalid pool 'sim': its provider simulator cannot list what it holds"
    ]
