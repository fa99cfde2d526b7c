"""A zone on the lab's Ceph, through the CLI: the `rbd` provider end to end.

The pool is `rbd://admin@127.0.0.1:3300/storctl` with the lab's credentials
(`lab-ceph`); the image store and a filesystem pool are directories. What Ceph
holds afterwards is read with `rbd` itself (`rbd info`, `rbd children`, `rbd snap
ls`) and the data with `qemu-io` over qemu's rbd driver: the template copied once
with its protected base snapshot, every ROOT an RBD clone of it, data volumes
created, attached, grown and removed, native snapshots backed up whole, reverted
by rollback or from the backup, volumes and templates made from them, migration
to a filesystem pool and back, and the pool's use from `ceph df`.

Faults are answers: a clone of a base that is gone, a monitor that does not answer,
a refused key. And the cephx key never reaches the ledger nor the CLI's output.

The lab is shared: every image is named by a uuid of the test's own ledger, and
the `ceph` fixture removes whatever of them is left in the pool afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import Result, Storctl, ledger_events

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.skipif(
        not (shutil.which("qemu-img") and shutil.which("qemu-io")),
        reason="needs qemu-img and qemu-io",
    ),
]

MiB = 1 << 20
#: the lab's monitor (`STORCTL_LAB_PORT_OFFSET`: a second lab beside the first)
MON = f"127.0.0.1:{3300 + int(os.environ.get('STORCTL_LAB_PORT_OFFSET') or 0)}"
URL = f"rbd://admin@{MON}/storctl"
BASE = "cloudstack-base-snap"


@dataclass
class Recording(Storctl):
    """A `Storctl` that keeps every command's stdout and stderr."""

    outputs: list[str] = field(default_factory=list)

    def run(self, *args: str, **kw: Any) -> Result:
        result = super().run(*args, **kw)
        self.outputs += [result.out, result.err]
        return result


@dataclass
class Ceph:
    """The lab's cluster, read and cleaned with the tools themselves."""

    conf: str
    keyring: str
    pool: str

    def rbd(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = ["rbd", "-c", self.conf, "--id", "admin", "--keyring", self.keyring,
                *args]  # fmt: skip
        return subprocess.run(argv, capture_output=True, text=True, check=check)

    def json(self, *args: str) -> Any:
        return json.loads(self.rbd(*args, "--format", "json").stdout)

    def images(self) -> set[str]:
        return set(self.json("ls", self.pool))

    def info(self, image: str) -> dict[str, Any]:
        return self.json("info", f"{self.pool}/{image}")

    def snaps(self, image: str) -> dict[str, dict[str, Any]]:
        return {s["name"]: s for s in self.json("snap", "ls", f"{self.pool}/{image}")}

    def children(self, image: str) -> set[str]:
        rows = self.json("children", f"{self.pool}/{image}@{BASE}")
        return {r["image"] for r in rows}

    def qemu(self, image: str) -> str:
        return (f"rbd:{self.pool}/{image}:conf={self.conf}:id=admin"
                f":keyring={self.keyring}")  # fmt: skip

    def write(self, image: str, pattern: int) -> None:
        out = qemu_io("raw", self.qemu(image), f"write -P {pattern} 0 64k")
        assert "wrote 65536/65536" in out, out

    def reads(self, image: str, pattern: int) -> bool:
        return reads("raw", self.qemu(image), pattern)

    def remove(self, names: set[str]) -> None:
        """Remove these images (clones first), their snapshots purged."""
        present = [n for n in names if n in self.images()]
        present.sort(key=lambda n: "parent" not in self.info(n))
        for name in present:
            for snap, row in self.snaps(name).items():
                if row.get("protected") == "true":
                    self.rbd("snap", "unprotect", f"{self.pool}/{name}@{snap}")
            self.rbd("snap", "purge", "--no-progress", f"{self.pool}/{name}")
            self.rbd("rm", "--no-progress", f"{self.pool}/{name}")


def qemu_io(fmt: str, name: str, command: str, *, read_only: bool = False) -> str:
    argv = ["qemu-io", *(["-r"] if read_only else []), "-f", fmt, "-c", command, name]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    return done.stdout + done.stderr


def reads(fmt: str, name: str, pattern: int) -> bool:
    out = qemu_io(fmt, name, f"read -P {pattern} 0 64k", read_only=True)
    return "read 65536/65536" in out and "Pattern verification failed" not in out


@dataclass
class Zone:
    cli: Recording
    ceph: Ceph
    root: Path

    def volume(self, ref: str) -> dict[str, Any]:
        return self.cli.ok("volume", "show", ref)

    def file(self, volume: dict[str, Any]) -> Path:
        return self.root / volume["storage"] / volume["path"]


@pytest.fixture
def ceph(lab_backends: Any, monkeypatch: pytest.MonkeyPatch) -> Ceph:
    monkeypatch.setenv("STORCTL_CREDENTIALS", str(lab_backends.credentials))
    c = lab_backends["lab-ceph"]
    return Ceph(c["conf"], c["keyring"], c["pool"])


@pytest.fixture
def zone(ceph: Ceph, tmp_path: Path) -> Iterator[Zone]:
    """A host, the rbd pool `ceph` (tag ceph, zone scope), a filesystem pool `fs`
    (tag fs), an image store, and the template `tiny` (64 MiB, 0xab at 0)."""
    for folder in ("fs", "sec"):
        (tmp_path / folder).mkdir()
    cli = Recording(str(tmp_path / "ledger.db"))
    cli.ok("host", "add", "kvm1", "--zone", "z1", "--cluster", "c1")
    pool = cli.ok("pool", "add", "ceph", "--zone", "z1", "--scope", "zone",
                  "--provider", "rbd", "--url", URL, "--credentials", "lab-ceph",
                  "--capacity", "20G", "--tags", "ceph")  # fmt: skip
    assert (pool["type"], pool["path"]) == ("RBD", URL)
    cli.ok("pool", "add", "fs", "--zone", "z1", "--cluster", "c1", "--path",
           str(tmp_path / "fs"), "--capacity", "10G", "--tags", "fs")  # fmt: skip
    cli.ok("store", "add", "sec", "--zone", "z1", "--path", str(tmp_path / "sec"))
    image = tmp_path / "tiny.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "64M"],
                   check=True)  # fmt: skip
    assert "wrote" in qemu_io("qcow2", str(image), "write -P 0xab 0 64k")
    cli.ok("config", "set", "template.url.allowed.roots", str(tmp_path))
    cli.ok("template", "register", "tiny", "--zone", "z1", "--url", image.as_uri(),
           "--format", "qcow2")  # fmt: skip
    try:
        yield Zone(cli, ceph, tmp_path)
    finally:
        ours = {e.originator_id for e in ledger_events(cli.db)}
        ceph.remove({n for n in ceph.images() if n.removesuffix(".part") in ours})


def test_deploy_copies_the_template_once_and_every_root_is_an_rbd_clone(zone: Zone):
    cli, ceph = zone.cli, zone.ceph
    template = cli.ok("template", "show", "tiny")
    web1 = cli.ok("vm", "deploy", "web1", "--template", "tiny", "--zone", "z1",
                  "--tags", "ceph")  # fmt: skip
    cli.ok("vm", "deploy", "web2", "--template", "tiny", "--zone", "z1",
           "--tags", "ceph", "--root-size", "128M")  # fmt: skip
    assert web1["state"] == "Running"
    roots = [zone.volume(f"ROOT-{name}") for name in ("web1", "web2")]
    assert {r["storage"] for r in roots} == {"ceph"}
    base = ceph.info(template["id"])
    assert base["size"] == 64 * MiB
    assert ceph.snaps(template["id"])[BASE]["protected"] == "true"
    assert ceph.children(template["id"]) == {r["path"] for r in roots}
    for root, size in zip(roots, (64 * MiB, 128 * MiB), strict=True):
        info = ceph.info(root["path"])
        assert info["parent"]["image"] == template["id"]
        assert info["parent"]["snapshot"] == BASE
        assert info["size"] == size == root["size"]
        assert ceph.reads(root["path"], 0xAB)
    ours = {template["id"], *(r["path"] for r in roots)}
    assert {n for n in ceph.images() if n.startswith(tuple(ours))} == ours

    stats = cli.ok("pool", "stats", "ceph")
    assert stats["disksizeused"] > 0


def test_a_data_volume_is_created_attached_grown_and_removed(zone: Zone):
    cli, ceph = zone.cli, zone.ceph
    cli.ok("vm", "deploy", "web1", "--template", "tiny", "--zone", "z1",
           "--tags", "ceph")  # fmt: skip
    cli.ok("volume", "create", "data1", "--zone", "z1", "--size", "64M",
           "--tags", "ceph")  # fmt: skip
    attached = cli.ok("volume", "attach", "data1", "--vm", "web1")
    assert (attached["state"], attached["storage"]) == ("Ready", "ceph")
    image = attached["path"]
    assert ceph.info(image)["size"] == 64 * MiB
    assert "parent" not in ceph.info(image)
    grown = cli.ok("volume", "resize", "data1", "--size", "128M")
    assert grown["size"] == 128 * MiB
    assert ceph.info(image)["size"] == 128 * MiB
    cli.ok("volume", "detach", "data1")
    ceph.write(image, 0x3C)
    made = cli.ok("template", "create", "t3", "--from-volume", "data1")
    assert made["isready"] is True
    on_store = zone.root / "sec" / "template" / "tmpl" / made["id"]
    assert reads("qcow2", str(on_store / f"{made['id']}.qcow2"), 0x3C)
    assert cli.ok("volume", "delete", "data1")["state"] == "Destroy"
    assert image in ceph.images(), "a destroyed volume is recoverable"
    assert cli.ok("volume", "expunge", "data1")["state"] == "Expunged"
    assert image not in ceph.images()


def test_snapshots_are_native_backed_up_whole_and_reverted(zone: Zone):
    cli, ceph = zone.cli, zone.ceph
    made = cli.ok("volume", "create", "d1", "--zone", "z1", "--size", "32M",
                  "--pool", "ceph")  # fmt: skip
    image = made["path"]
    ceph.write(image, 0xAA)
    s1 = cli.ok("snapshot", "create", "d1", "--name", "s1")
    assert s1["state"] == "BackedUp"
    assert s1["id"] in ceph.snaps(image), "the RBD snapshot stays on primary"
    backup = zone.root / "sec" / "snapshots" / image / f"{s1['id']}.qcow2"
    assert reads("qcow2", str(backup), 0xAA)
    ceph.write(image, 0xBB)
    s2 = cli.ok("snapshot", "create", "d1", "--name", "s2")
    backup2 = backup.with_name(f"{s2['id']}.qcow2")
    info = json.loads(subprocess.run(
        ["qemu-img", "info", "--output=json", str(backup2)],
        capture_output=True, text=True, check=True).stdout)  # fmt: skip
    assert "backing-filename" not in info, "a full backup, never a delta"

    ceph.write(image, 0xCC)
    cli.ok("snapshot", "revert", "s1")  # on primary: rbd snap rollback
    assert ceph.reads(image, 0xAA)
    ceph.rbd("snap", "rm", "--no-progress", f"{ceph.pool}/{image}@{s2['id']}")
    cli.ok("snapshot", "revert", "s2")  # gone from primary: from the backup
    assert ceph.reads(image, 0xBB)
    assert set(ceph.snaps(image)) == {s1["id"]}, "no guard snapshot left"

    restored = cli.ok("volume", "create", "r1", "--from-snapshot", "s1",
                      "--pool", "ceph")  # fmt: skip
    assert (restored["state"], restored["storage"]) == ("Ready", "ceph")
    assert ceph.reads(restored["path"], 0xAA)
    assert "parent" not in ceph.info(restored["path"])

    made_from = cli.ok("template", "create", "t2", "--from-snapshot", "s2")
    assert made_from["isready"] is True
    cli.ok("vm", "deploy", "web2", "--template", "t2", "--zone", "z1",
           "--tags", "ceph")  # fmt: skip
    root = zone.volume("ROOT-web2")
    assert ceph.info(root["path"])["parent"]["image"] == made_from["id"]
    assert ceph.reads(root["path"], 0xBB)

    cli.ok("snapshot", "delete", "s1")
    assert not backup.exists()
    assert s1["id"] not in ceph.snaps(image)


def test_migration_from_rbd_to_a_filesystem_pool_and_back(zone: Zone):
    cli, ceph = zone.cli, zone.ceph
    made = cli.ok("volume", "create", "d1", "--zone", "z1", "--size", "32M",
                  "--pool", "ceph")  # fmt: skip
    image = made["path"]
    ceph.write(image, 0x5A)
    before = {p: cli.pool(p)["disksizeallocated"] for p in ("ceph", "fs")}

    moved = cli.ok("volume", "migrate", "d1", "--pool", "fs")
    assert (moved["state"], moved["storage"]) == ("Ready", "fs")
    assert reads("qcow2", str(zone.file(moved)), 0x5A)
    assert image not in ceph.images()
    assert cli.pool("ceph")["disksizeallocated"] == before["ceph"] - 32 * MiB

    back = cli.ok("volume", "migrate", "d1", "--pool", "ceph")
    assert (back["state"], back["storage"]) == ("Ready", "ceph")
    assert ceph.reads(back["path"], 0x5A)
    assert list((zone.root / "fs").iterdir()) == []
    assert {p: cli.pool(p)["disksizeallocated"] for p in ("ceph", "fs")} == before

    # a ROOT clone leaves its template's children when it moves, whole
    cli.ok("vm", "deploy", "web1", "--template", "tiny", "--zone", "z1",
           "--tags", "ceph")  # fmt: skip
    cli.ok("vm", "stop", "web1")
    root = zone.volume("ROOT-web1")
    template = cli.ok("template", "show", "tiny")["id"]
    (zone.root / "fs2").mkdir()
    cli.ok("pool", "add", "fs2", "--zone", "z1", "--cluster", "c1", "--path",
           str(zone.root / "fs2"), "--capacity", "10G", "--tags", "ceph")  # fmt: skip
    cli.ok("volume", "migrate", root["id"], "--pool", "fs2")
    assert ceph.children(template) == set()
    returned = cli.ok("volume", "migrate", root["id"], "--pool", "ceph")
    assert "parent" not in ceph.info(returned["path"])
    assert ceph.reads(returned["path"], 0xAB)


def test_a_migration_no_host_reaches_both_ends_of_is_staged_both_ways(zone: Zone):
    """The rbd pool in cluster c1, a filesystem pool in c2 whose only host is
    kvm2: the volume goes pool -> image store -> pool, each leg on a host that
    reaches its two stores, and back."""
    cli, ceph = zone.cli, zone.ceph
    (zone.root / "far").mkdir()
    cli.ok("host", "add", "kvm2", "--zone", "z1", "--cluster", "c2")
    # the zone-wide pool `ceph` reaches c2 too; `near` takes its Ceph pool (one
    # storctl pool per Ceph pool), so `ceph` goes first: it holds nothing yet
    cli.ok("pool", "maintenance", "enable", "ceph")
    cli.ok("pool", "delete", "ceph")
    cli.ok("pool", "add", "near", "--zone", "z1", "--cluster", "c1", "--provider",
           "rbd", "--url", URL, "--credentials", "lab-ceph", "--capacity", "5G",
           "--tags", "near")  # fmt: skip
    cli.ok("pool", "add", "far", "--zone", "z1", "--cluster", "c2", "--path",
           str(zone.root / "far"), "--capacity", "5G", "--tags", "near")  # fmt: skip
    made = cli.ok("volume", "create", "d1", "--zone", "z1", "--size", "32M",
                  "--pool", "near")  # fmt: skip
    ceph.write(made["path"], 0x6E)
    moved = cli.ok("volume", "migrate", "d1", "--pool", "far")
    assert (moved["state"], moved["storage"]) == ("Ready", "far")
    assert reads("qcow2", str(zone.file(moved)), 0x6E)
    assert made["path"] not in ceph.images()
    back = cli.ok("volume", "migrate", "d1", "--pool", "near")
    assert (back["state"], back["storage"]) == ("Ready", "near")
    assert ceph.reads(back["path"], 0x6E)
    legs = [e["event"] for e in cli.ok("history", "volume", "d1")
            if e["event"] in ("StagedCopyRequested", "CopyRequested")]  # fmt: skip
    assert legs == ["CopyRequested", "StagedCopyRequested"] * 2
    assert list((zone.root / "sec").rglob("volumes/*")) == []


# ------------------------------------------------------------------ faults


def test_a_clone_of_a_base_that_is_gone_fails_with_cephs_words(zone: Zone):
    cli, ceph = zone.cli, zone.ceph
    cli.ok("vm", "deploy", "web1", "--template", "tiny", "--zone", "z1",
           "--tags", "ceph")  # fmt: skip
    template = cli.ok("template", "show", "tiny")["id"]
    root = zone.volume("ROOT-web1")
    ceph.remove({root["path"], template})  # behind the ledger's back
    failed = cli.run("vm", "deploy", "web2", "--template", "tiny", "--zone", "z1",
                     "--tags", "ceph")  # fmt: skip
    assert failed.code == 3, failed
    assert "rbd clone failed: clone error: (2) No such file or directory" in failed.err
    assert len(failed.err.strip().splitlines()) == 1
    answers = [e.state["answer"] for e in ledger_events(cli.db)
               if e.topic.endswith("Answered")]  # fmt: skip
    assert any(not a["result"] and "clone error" in a["details"] for a in answers), (
        "the failure is a recorded answer"
    )
    # nothing was made: the VM and its ROOT volume go, their names free
    [volume] = cli.db_rows("SELECT uuid AS id, state FROM volumes WHERE name = ?",
                           ["ROOT-web2"])  # fmt: skip
    assert volume["state"] == "Expunged"
    assert cli.run("vm", "show", "web2").code == 2
    assert not {n for n in ceph.images() if n.startswith(volume["id"])}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_pool_add_refuses_what_ceph_refuses_in_one_line(zone: Zone, tmp_path):
    cli = zone.cli
    before = len(ledger_events(cli.db))
    bad_keyring = tmp_path / "bad.keyring"
    bad_keyring.write_text(
        "[client.admin]\n\tkey = AQBgkjVnAAAAABAAxxxxxxxxxxxxxxxxxxxxxxxxxx==\n"
    )
    cases = [
        (f"rbd://admin@127.0.0.1:{closed_port()}/storctl", {}, "timed out"),
        (f"rbd://admin@{MON}/no-such-pool", {}, "No such file or directory"),
        (URL, {"STORCTL_CRED_LAB_CEPH_KEYRING": str(bad_keyring)}, "Permission denied"),
    ]
    for url, env, says in cases:
        refused = cli.run("pool", "add", "bad", "--zone", "z1", "--scope", "zone",
                          "--provider", "rbd", "--url", url, "--credentials",
                          "lab-ceph", "--capacity", "1G", env=env)  # fmt: skip
        assert refused.code == 2, refused
        assert len(refused.err.strip().splitlines()) == 1, refused
        assert "Ceph refused" in refused.err or "no answer" in refused.err, refused
        assert says in refused.err, refused
        assert "AQB" not in refused.err
    assert len(ledger_events(cli.db)) == before


def test_an_unreachable_monitor_is_a_recorded_failure(zone: Zone, monkeypatch):
    """A pool whose monitor stopped answering after it was added (recorded here
    through the use case, since `pool add` would refuse it now)."""
    from cli.bootstrap import open_ledger
    from executors.providers import installed
    from ledger.aggregate import Ctx
    from ledger.usecases import infrastructure
    from ledger.values import PoolType, Scope

    cli = zone.cli
    monkeypatch.setenv("STORCTL_CRED_LAB_CEPH_CONNECT_TIMEOUT", "2")
    ledger = open_ledger(cli.db)
    try:
        infrastructure.register_pool(
            ledger, Ctx.new("test"), name="gone", zone="z1",
            path=f"rbd://admin@127.0.0.1:{closed_port()}/storctl",
            capacity=1 << 30, scope=Scope.ZONE, pool_type=PoolType.RBD,
            tags=["gone"], credentials="lab-ceph",
            capabilities=installed().providers["rbd"].capabilities.recorded(),
        )  # fmt: skip
    finally:
        ledger.close()
    failed = cli.run("volume", "create", "d1", "--zone", "z1", "--size", "16M",
                     "--pool", "gone")  # fmt: skip
    assert failed.code == 3, failed
    assert "couldn't connect to the cluster" in failed.err, failed
    assert len(failed.err.strip().splitlines()) == 1
    volume = cli.failed("volume.create")
    assert volume["state"] == "Expunged"
    assert volume["id"] not in zone.ceph.images()


@pytest.fixture
def second(zone: Zone, lab_backends: Any) -> Iterator[Ceph]:
    """The lab's second RBD pool (`storctl-pairs`; made if an older lab lacks
    it), for a second storctl pool on the cluster; the ledger's images in it
    removed after."""
    name = str(lab_backends["lab-ceph"].get("second_pool", "storctl-pairs"))
    other = Ceph(zone.ceph.conf, zone.ceph.keyring, name)
    ceph_argv = ["ceph", "-c", other.conf, "--id", "admin", "--keyring",
                 other.keyring]  # fmt: skip
    listed = subprocess.run([*ceph_argv, "osd", "pool", "ls", "--format", "json"],
                            capture_output=True, text=True, check=True)  # fmt: skip
    if name not in json.loads(listed.stdout):
        subprocess.run([*ceph_argv, "osd", "pool", "create", name, "8", "8",
                        "replicated"], capture_output=True, check=True)  # fmt: skip
        other.rbd("pool", "init", name)
    try:
        yield other
    finally:
        ours = {e.originator_id for e in ledger_events(zone.cli.db)}
        other.remove({n for n in other.images() if n.removesuffix(".part") in ours})


# ------------------------------------------------------------------ secrets


def test_the_key_never_reaches_the_ledger_nor_the_output(
    zone: Zone, second: Ceph, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every stored event, every projected table (the whole database file) and
    every command's stdout and stderr, with the key given two ways: the lab's
    keyring file, and the key itself in the environment."""
    cli, ceph = zone.cli, zone.ceph
    text = Path(ceph.keyring).read_text()
    key = next(ln.split("=", 1)[1].strip() for ln in text.splitlines()
               if ln.strip().startswith("key"))  # fmt: skip
    monkeypatch.setenv("STORCTL_CRED_BYKEY_KEY", key)
    monkeypatch.setenv("STORCTL_CRED_BYKEY_CONF", ceph.conf)
    # the same Ceph pool as `ceph` through the other credentials is refused (its
    # place, the cluster's fsid from `ceph fsid`, is reached with the key too)
    refused = cli.run("pool", "add", "bykey", "--zone", "z1", "--scope", "zone",
                      "--provider", "rbd", "--url", URL.replace(":3300", ":6789"),
                      "--credentials", "bykey", "--capacity", "5G")  # fmt: skip
    assert refused.code == 2, refused
    assert "pool ceph is on the same backend location" in refused.err
    cli.ok("pool", "add", "bykey", "--zone", "z1", "--scope", "zone", "--provider",
           "rbd", "--url", f"rbd://admin@{MON}/{second.pool}", "--credentials",
           "bykey", "--capacity", "5G", "--tags", "bykey")  # fmt: skip
    cli.ok("vm", "deploy", "web1", "--template", "tiny", "--zone", "z1",
           "--tags", "bykey")  # fmt: skip
    cli.ok("volume", "create", "d1", "--zone", "z1", "--size", "16M",
           "--pool", "ceph")  # fmt: skip
    cli.ok("snapshot", "create", "d1", "--name", "s1")
    cli.ok("volume", "migrate", "d1", "--pool", "fs")
    cli.ok("volume", "migrate", "d1", "--pool", "bykey")
    cli.ok("pool", "stats", "bykey")
    wrong = {"STORCTL_CRED_BYKEY_KEY": "AQ" + "x" * 38}
    refused = cli.run("volume", "create", "d2", "--zone", "z1", "--size", "16M",
                      "--pool", "bykey", env=wrong)  # fmt: skip
    assert refused.code == 3, refused
    assert "couldn't connect to the cluster" in refused.err
    assert "AQxxx" not in refused.err
    for command in (["audit"], ["history", "volume", "d1"], ["volume", "list"],
                    ["pool", "list"], ["snapshot", "list"]):  # fmt: skip
        cli.ok(*command)

    for event in ledger_events(cli.db):
        assert key not in json.dumps(event.state), event.kind
    for db_file in zone.root.glob("ledger.db*"):
        assert key.encode() not in db_file.read_bytes(), db_file.name
    for output in cli.outputs:
        assert key not in output
    assert not list(Path("/tmp").glob("storctl-ceph-*/keyring")), "keyring left"


@pytest.fixture
def own_pool(ceph: Ceph) -> Iterator[Ceph]:
    """A Ceph pool of the test's own (the lab's `storctl` pool is shared with
    other tests, whose images would be orphans here), removed afterwards."""
    name = f"storctl-recon-{uuid.uuid4().hex[:8]}"
    tool = ["ceph", "-c", ceph.conf, "--id", "admin", "--keyring", ceph.keyring]
    subprocess.run([*tool, "osd", "pool", "create", name, "8", "8", "replicated"],
                   capture_output=True, check=True, timeout=120)  # fmt: skip
    try:
        ceph.rbd("pool", "init", name)
        yield Ceph(ceph.conf, ceph.keyring, name)
    finally:
        subprocess.run([*tool, "osd", "pool", "delete", name, name,
                        "--yes-i-really-really-mean-it"],
                       capture_output=True, check=True, timeout=120)  # fmt: skip


def test_reconcile_names_an_extra_image_and_a_removed_one(
    own_pool: Ceph, tmp_path: Path
) -> None:
    """`storctl reconcile` on an RBD pool: clean after a deploy (template image
    with its protected base snapshot, a ROOT clone), two data volumes and a
    native snapshot kept on primary (claimed, not an orphan): exit 0, nothing
    listed. Then an image made with `rbd create` and a volume's image removed
    with `rbd rm`: exit 3, exactly those two named."""
    ceph = own_pool
    (tmp_path / "sec").mkdir()
    cli = Recording(str(tmp_path / "ledger.db"))
    cli.ok("host", "add", "kvm1", "--zone", "z1", "--cluster", "c1")
    cli.ok("pool", "add", "mine", "--zone", "z1", "--scope", "zone",
           "--provider", "rbd", "--url", f"rbd://admin@{MON}/{ceph.pool}",
           "--credentials", "lab-ceph", "--capacity", "20G")  # fmt: skip
    cli.ok("store", "add", "sec", "--zone", "z1", "--path", str(tmp_path / "sec"))
    image = tmp_path / "tiny.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "16M"],
                   check=True)  # fmt: skip
    cli.ok("config", "set", "template.url.allowed.roots", str(tmp_path))
    cli.ok("template", "register", "tiny", "--zone", "z1", "--url", image.as_uri(),
           "--format", "qcow2")  # fmt: skip
    cli.ok("vm", "deploy", "web1", "--template", "tiny", "--zone", "z1")
    cli.ok("volume", "create", "d1", "--zone", "z1", "--size", "8M", "--pool", "mine")
    cli.ok("volume", "create", "d2", "--zone", "z1", "--size", "8M", "--pool", "mine")
    snap = cli.ok("snapshot", "create", "d1", "--name", "s1")
    d1, d2 = cli.ok("volume", "show", "d1"), cli.ok("volume", "show", "d2")
    assert snap["id"] in ceph.snaps(d1["path"]), "kept on primary"

    clean = cli.run("reconcile", "mine")
    assert (clean.code, clean.json) == (0, []), clean
    assert cli.run("doctor").code == 0

    # a volume with a native snapshot moved to a directory pool: the snapshot's
    # place on primary is the RBD pool's, not claimed on the new pool
    (tmp_path / "fs").mkdir()
    cli.ok("pool", "add", "fs", "--zone", "z1", "--cluster", "c1", "--path",
           str(tmp_path / "fs"), "--capacity", "1G")  # fmt: skip
    cli.ok("volume", "create", "d3", "--zone", "z1", "--size", "8M", "--pool", "mine")
    cli.ok("snapshot", "create", "d3", "--name", "s3")
    assert cli.ok("volume", "migrate", "d3", "--pool", "fs")["storage"] == "fs"
    for pool in ("fs", "mine"):
        moved = cli.run("reconcile", pool)
        assert (moved.code, moved.json) == (0, []), moved

    ceph.rbd("create", "--size", "4M", f"{ceph.pool}/extra")
    ceph.rbd("rm", "--no-progress", f"{ceph.pool}/{d2['path']}")
    drift = cli.run("reconcile", "mine")
    assert drift.code == 3, drift
    assert len(drift.err.strip().splitlines()) == 1, drift
    got = sorted((f["problem"], f["path"], f["objectid"]) for f in drift.json)
    assert got == sorted([("orphan", "extra", None), ("missing", d2["path"], d2["id"])])
    orphan = next(f for f in drift.json if f["problem"] == "orphan")
    assert orphan["found"] == f"an image of {4 * MiB} bytes"


def test_a_snapshot_kept_on_primary_only_is_deleted_from_ceph(
    own_pool: Ceph, tmp_path: Path
) -> None:
    """`snapshot.backup.to.secondary` false: the native snapshot is BackedUp on
    primary only (no backup file). `snapshot delete` sends the DeleteCommand to
    the pool: `rbd snap ls` no longer has it and reconcile is clean (before, no
    command went and the RBD snapshot stayed, an orphan)."""
    ceph = own_pool
    (tmp_path / "sec").mkdir()
    cli = Recording(str(tmp_path / "ledger.db"))
    cli.ok("host", "add", "kvm1", "--zone", "z1", "--cluster", "c1")
    cli.ok("pool", "add", "mine", "--zone", "z1", "--scope", "zone",
           "--provider", "rbd", "--url", f"rbd://admin@{MON}/{ceph.pool}",
           "--credentials", "lab-ceph", "--capacity", "2G")  # fmt: skip
    cli.ok("store", "add", "sec", "--zone", "z1", "--path", str(tmp_path / "sec"))
    cli.ok("config", "set", "snapshot.backup.to.secondary", "false")
    volume = cli.ok("volume", "create", "d1", "--zone", "z1", "--size", "8M",
                    "--pool", "mine")  # fmt: skip
    snap = cli.ok("snapshot", "create", "d1", "--name", "s1")
    shown = cli.ok("snapshot", "show", "s1")
    assert shown["state"] == "BackedUp", shown
    assert snap["id"] in ceph.snaps(volume["path"]), "kept on primary"
    assert not [p for p in (tmp_path / "sec").rglob("*") if p.is_file()], "no backup"
    clean = cli.run("reconcile", "mine")
    assert (clean.code, clean.json) == (0, []), clean

    cli.ok("snapshot", "delete", "s1")
    assert cli.ok("snapshot", "show", snap["id"])["state"] == "Destroyed"
    assert snap["id"] not in ceph.snaps(volume["path"])
    after = cli.run("reconcile", "mine")
    assert (after.code, after.json) == (0, []), after
    kinds = [e.kind for e in ledger_events(cli.db) if e.originator_id == snap["id"]]
    assert "Snapshot.DestroyAnswered" in kinds, kinds
    cli.ok("volume", "delete", "d1")
