"""A KVM zone on real files: qemu-img images on a directory pool, through the CLI.

Template download from a file:// URL, the template cached once per pool as a base
copy, every ROOT volume a linked clone of it (CloudStack's createBaseImage then
clone), and a data volume's full life cycle down to its file and the pool's books.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import Storctl, assert_answered_at_most_once

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.skipif(
        not (shutil.which("qemu-img") and shutil.which("qemu-io")),
        reason="needs qemu-img and qemu-io",
    ),
]

MiB = 1 << 20


def qemu_info(path: Path) -> dict:
    out = subprocess.run(
        ["qemu-img", "info", "--output=json", "-U", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout)


def qemu_io(path: Path, command: str, *, read_only: bool = False) -> None:
    argv = ["qemu-io", *(["-r"] if read_only else []), "-c", command, str(path)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done
    assert "Pattern verification failed" not in done.stdout + done.stderr, done


def make_template(path: Path, size: str = "64M") -> Path:
    subprocess.run(["qemu-img", "create", "-f", "qcow2", str(path), size],
                   capture_output=True, check=True)  # fmt: skip
    qemu_io(path, "write -P 0xab 0 64k")
    return path


class KvmZone:
    def __init__(self, tmp_path: Path) -> None:
        self.pool_dir = tmp_path / "p1"
        self.store_dir = tmp_path / "sec"
        self.pool_dir.mkdir()
        self.store_dir.mkdir()
        self.image = make_template(tmp_path / "tiny.qcow2")
        self.cli = Storctl(str(tmp_path / "ledger.db"))
        self.cli.ok("host", "add", "kvm1", "--zone", "z1", "--cluster", "c1")
        self.cli.ok("pool", "add", "p1", "--zone", "z1", "--cluster", "c1",
                    "--path", str(self.pool_dir), "--capacity", "10G",
                    "--overprovision", "1")  # fmt: skip
        self.cli.ok("store", "add", "sec1", "--zone", "z1",
                    "--path", str(self.store_dir))  # fmt: skip
        self.cli.ok("config", "set", "template.url.allowed.roots", str(tmp_path))

    def register(self, name: str, *extra: str) -> dict:
        return self.cli.ok("template", "register", name, "--zone", "z1",
                           "--url", self.image.as_uri(), "--format", "qcow2",
                           *extra)  # fmt: skip

    def volume_file(self, volume: dict) -> Path:
        assert volume["path"], volume
        return self.pool_dir / volume["path"]


@pytest.fixture
def kvm(tmp_path: Path) -> KvmZone:
    return KvmZone(tmp_path)


def test_template_from_file_url_is_ready_with_its_virtual_size(kvm: KvmZone) -> None:
    digest = hashlib.sha256(kvm.image.read_bytes()).hexdigest()
    template = kvm.register("tiny", "--checksum", digest)
    assert template["isready"] is True
    assert template["state"] == "Active"
    assert template["size"] == 64 * MiB
    assert template["format"] == "QCOW2"
    shown = kvm.cli.ok("template", "show", "tiny")
    assert shown["isready"] is True
    assert shown["size"] == 64 * MiB


def test_deploy_makes_linked_clones_of_one_base_copy(kvm: KvmZone) -> None:
    template = kvm.register("tiny")
    cli = kvm.cli
    roots = []
    for name in ("web1", "web2", "web3"):
        vm = cli.ok("vm", "deploy", name, "--template", "tiny", "--zone", "z1")
        assert vm["state"] == "Running"
        root = cli.volume(f"ROOT-{name}")
        assert root["state"] == "Ready"
        assert root["type"] == "ROOT"
        assert root["storage"] == "p1"
        assert root["virtualmachineid"] == vm["id"]
        assert root["size"] == 64 * MiB
        roots.append(root)

    base = kvm.pool_dir / template["id"]
    assert base.is_file()
    for root in roots:
        clone = kvm.volume_file(root)
        info = qemu_info(clone)
        assert info["format"] == "qcow2"
        assert info["virtual-size"] == 64 * MiB
        backing = Path(info.get("full-backing-filename") or info["backing-filename"])
        if not backing.is_absolute():
            backing = clone.parent / backing
        assert backing.resolve() == base.resolve()
        qemu_io(clone, "read -P 0xab 0 64k", read_only=True)

    volume_files = {r["path"] for r in roots}
    others = sorted(p.name for p in kvm.pool_dir.iterdir())
    others = [name for name in others if name not in volume_files]
    assert others == [template["id"]], "exactly one base copy, nothing else"

    allocated = cli.pool("p1")["disksizeallocated"]
    assert allocated == 4 * 64 * MiB  # the base copy and three clones
    assert_answered_at_most_once(cli.db)


def test_data_volume_life_cycle_on_files(kvm: KvmZone) -> None:
    cli = kvm.cli
    kvm.register("tiny")
    vm = cli.ok("vm", "deploy", "web1", "--template", "tiny", "--zone", "z1")
    before = cli.pool("p1")["disksizeallocated"]

    created = cli.ok("volume", "create", "data1", "--zone", "z1", "--size", "256M")
    assert created["state"] == "Allocated"
    assert cli.pool("p1")["disksizeallocated"] == before

    attached = cli.ok("volume", "attach", "data1", "--vm", "web1")
    assert attached["state"] == "Ready"
    assert attached["virtualmachineid"] == vm["id"]
    assert attached["deviceid"] == 1
    assert attached["size"] == 256 * MiB
    path = kvm.volume_file(attached)
    assert qemu_info(path)["virtual-size"] == 256 * MiB
    assert cli.pool("p1")["disksizeallocated"] == before + 256 * MiB

    detached = cli.ok("volume", "detach", "data1")
    assert detached["state"] == "Ready"
    assert detached["virtualmachineid"] is None

    deleted = cli.ok("volume", "delete", "data1")
    assert deleted["state"] == "Destroy"
    assert path.is_file(), "a destroyed volume is recoverable: its file stays"
    assert cli.pool("p1")["disksizeallocated"] == before

    recovered = cli.ok("volume", "recover", "data1")
    assert recovered["state"] == "Ready"
    assert cli.pool("p1")["disksizeallocated"] == before + 256 * MiB

    assert cli.ok("volume", "delete", "data1")["state"] == "Destroy"
    expunged = cli.ok("volume", "expunge", "data1")
    assert expunged["state"] == "Expunged"
    assert not path.exists()
    assert cli.pool("p1")["disksizeallocated"] == before
    assert not [p for p in kvm.pool_dir.iterdir() if p.name.endswith(".part")]
    assert_answered_at_most_once(cli.db)


def test_wrong_checksum_fails_the_download(kvm: KvmZone) -> None:
    wrong = hashlib.sha256(b"not the image").hexdigest()
    result = kvm.cli.run("template", "register", "bad", "--zone", "z1",
                         "--url", kvm.image.as_uri(), "--format", "qcow2",
                         "--checksum", wrong)  # fmt: skip
    assert result.code == 3, result
    assert "checksum" in result.err, result
    assert len(result.err.strip().splitlines()) == 1, result
    template = kvm.cli.ok("template", "show", "bad")
    assert template["isready"] is False
    leftovers = [p for p in kvm.store_dir.rglob("*") if p.is_file()]
    assert leftovers == [], "nothing of a failed download stays on the image store"
    # and a deploy from it is refused
    refused = kvm.cli.run("vm", "deploy", "web1", "--template", "bad", "--zone", "z1")
    assert refused.code == 2, refused
