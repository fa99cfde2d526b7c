"""The `iscsi` provider end to end, through the CLI, against the lab's real tgtd.

CloudStack's managed storage (SolidFire's model): a ROOT volume is the template
written whole into its own LUN (no base image on the pool), every volume has its
own target and CHAP account, and data moves over iSCSI (qemu-img's libiscsi
driver). Here that is read back over iSCSI with the volume's CHAP secret; volumes
migrate to a directory pool and back with their data; targets come back after a
tgtd restart (through the lab's own script); a command tgtd refuses is a recorded
`result=false` that leaves nothing half made; and no CHAP secret reaches the
ledger, its tables or the CLI's output.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from executors.providers.iscsi.tgtadm import Target, parse_targets, show_argv
from tests.conftest import LAB_SCRIPT, Lab

from .conftest import Result, Storctl, ledger_events, request_answer_pairs

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.skipif(
        not (shutil.which("qemu-img") and shutil.which("qemu-io")),
        reason="needs qemu-img and qemu-io",
    ),
]

MiB = 1 << 20


def qemu(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check:
        assert done.returncode == 0, done
    return done


class Zone:
    """Host kvm1, pool `lun` (iscsi, zone scope), image store `sec`, template
    `tiny` with a pattern in it; `add_fs_pool` adds `fs`, a directory pool."""

    def __init__(self, lab: Lab, tmp_path: Path) -> None:
        profile = lab["lab-iscsi"]
        self.port = int(profile["control_port"])
        self.portal = str(profile["portal"])
        self.lun_dir = Path(profile["lun_dir"])
        self.cli = Storctl(
            str(tmp_path / "ledger.db"),
            env={"STORCTL_CREDENTIALS": str(lab.credentials)},
        )
        self.outputs: list[str] = []
        self.secrets: set[str] = set()
        self.pool: dict[str, Any] = {}
        (tmp_path / "fs").mkdir()
        (tmp_path / "sec").mkdir()
        self.fs_dir = tmp_path / "fs"
        self.image = tmp_path / "tiny.qcow2"
        qemu("qemu-img", "create", "-q", "-f", "qcow2", str(self.image), "64M")
        qemu("qemu-io", "-c", "write -P 0xab 0 1M", "-c", "write -P 0xcd 40M 64k",
             str(self.image))  # fmt: skip
        self.ok("host", "add", "kvm1", "--zone", "z1", "--cluster", "c1")
        self.pool = self.ok(
            "pool", "add", "lun", "--zone", "z1", "--provider", "iscsi",
            "--url", f"iscsi://{self.portal}", "--credentials", "lab-iscsi",
            "--scope", "zone", "--capacity", "20G",
        )  # fmt: skip
        self.ok("store", "add", "sec", "--zone", "z1", "--path", str(tmp_path / "sec"))
        self.ok("config", "set", "template.url.allowed.roots", str(tmp_path))
        self.template = self.ok("template", "register", "tiny", "--zone", "z1",
                                "--url", self.image.as_uri(),
                                "--format", "qcow2")  # fmt: skip

    def add_fs_pool(self) -> None:
        self.ok("pool", "add", "fs", "--zone", "z1", "--cluster", "c1",
                "--path", str(self.fs_dir), "--capacity", "20G")  # fmt: skip

    # ------------------------------------------------------------- the CLI

    def run(self, *args: str, env: dict[str, str] | None = None) -> Result:
        result = self.cli.run(*args, env=env)
        self.outputs += [result.out, result.err]
        self.remember_secrets()
        return result

    def ok(self, *args: str) -> Any:
        result = self.run(*args)
        assert result.code == 0, f"storctl {' '.join(args)}: {result}"
        return result.json

    # ------------------------------------------------------------- tgtd, LUNs

    def folder(self) -> Path:
        return self.lun_dir / self.pool["id"]

    def lun_file(self, volume: dict[str, Any]) -> Path:
        return self.folder() / f"{volume['id']}.lun"

    def secret_file(self, volume: dict[str, Any]) -> Path:
        return self.folder() / f"{volume['id']}.chap"

    def remember_secrets(self) -> None:
        if self.pool and self.folder().is_dir():
            self.secrets |= {p.read_text() for p in self.folder().glob("*.chap")}

    def targets(self) -> dict[str, Target]:
        done = qemu(*show_argv(self.port))
        return parse_targets(done.stdout)

    def opts(self, volume: dict[str, Any]) -> list[str]:
        """qemu's `--object` and the LUN's options, logged in with its CHAP."""
        user = f"storctl-{volume['id']}-{self.pool['id'][:8]}"
        lun = ",".join([
            "driver=raw", "file.driver=iscsi", "file.transport=tcp",
            f"file.portal={self.portal}", f"file.target={volume['path']}",
            "file.lun=1", f"file.user={user}", "file.password-secret=chap",
        ])  # fmt: skip
        return ["--object", f"secret,id=chap,file={self.secret_file(volume)}", lun]

    def compare_with_template(self, volume: dict[str, Any]) -> None:
        obj, secret, lun = self.opts(volume)
        template = f"driver=qcow2,file.driver=file,file.filename={self.image}"
        done = qemu("qemu-img", "compare", obj, secret, "--image-opts", template, lun)
        assert "identical" in done.stdout

    def qemu_io(self, volume: dict[str, Any], command: str) -> None:
        obj, secret, lun = self.opts(volume)
        done = qemu("qemu-io", obj, secret, "--image-opts", lun, "-c", command)
        assert "verification failed" not in done.stdout + done.stderr, done

    def clean_up(self) -> None:
        """The lab's tgtd and LUN directory are shared: what this pool left goes."""
        port = str(self.port)
        for target in self.targets().values():
            if self.pool["id"] in target.iqn:
                qemu("tgtadm", "-C", port, "--op", "delete", "--mode", "target",
                     "--tid", str(target.tid), "--force")  # fmt: skip
                for user in target.accounts:
                    qemu("tgtadm", "-C", port, "--op", "delete", "--mode", "account",
                         "--user", user, check=False)  # fmt: skip
        shutil.rmtree(self.folder(), ignore_errors=True)

    def assert_no_secret_recorded(self) -> None:
        """No CHAP password in any stored event, projected table or CLI output."""
        assert self.secrets, "no volume had a CHAP secret to look for"
        events = json.dumps([e.state for e in ledger_events(self.cli.db)])
        with sqlite3.connect(self.cli.db) as db:
            names = [r[0] for r in db.execute("SELECT name FROM sqlite_master "
                                              "WHERE type = 'table'")]  # fmt: skip
            tables = "".join(
                repr(db.execute(f'SELECT * FROM "{n}"').fetchall()) for n in names
            )
        said = "".join(self.outputs)
        for secret in self.secrets:
            assert len(secret) >= 12
            for where, text in (("events", events), ("tables", tables),
                                ("output", said)):  # fmt: skip
                assert secret not in text, f"a CHAP secret is in the {where}"


def restart_tgtd(*actions: str) -> None:
    """tgtd stopped and/or started by the lab's own script (iscsi only)."""
    for action in actions:
        done = subprocess.run(
            [sys.executable, str(LAB_SCRIPT), action, "iscsi"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr


@pytest.fixture
def zone(lab_backends: Lab, tmp_path: Path) -> Iterator[Zone]:
    made = Zone(lab_backends, tmp_path)
    yield made
    made.clean_up()


def last_answer(db: str, volume_id: str) -> dict[str, Any]:
    pairs = request_answer_pairs(ledger_events(db))
    answers = [
        (answers[-1].position, answers[-1].state["answer"])
        for (origin, _), (_, answers) in pairs.items()
        if origin == volume_id and answers
    ]
    return max(answers, key=lambda pair: pair[0])[1]


def test_a_vm_and_its_volumes_live_on_their_own_luns(zone: Zone) -> None:
    vm = zone.ok("vm", "deploy", "web1", "--template", "tiny", "--zone", "z1",
                 "--root-size", "96M")  # fmt: skip
    assert vm["state"] == "Running"
    root = zone.cli.volume("ROOT-web1")
    assert (root["storage"], root["state"], root["size"]) == ("lun", "Ready", 96 * MiB)
    assert root["path"] == f"iqn.2010-01.org.apache.cloudstack.storctl:" \
        f"{zone.pool['id']}.{root['id']}"  # fmt: skip
    # the template whole in the LUN, no base image on the pool
    zone.compare_with_template(root)
    assert sorted(p.name for p in zone.folder().iterdir()) == [
        f"{root['id']}.chap",
        f"{root['id']}.lun",
    ]
    assert zone.secret_file(root).stat().st_mode & 0o777 == 0o600
    target = zone.targets()[root["path"]]
    assert target.luns[1] == str(zone.lun_file(root))
    assert target.accounts
    assert target.acls == ("ALL",)
    # without the volume's CHAP secret, no login
    nobody = qemu("qemu-img", "info", f"iscsi://{zone.portal}/{root['path']}/1",
                  check=False)  # fmt: skip
    assert nobody.returncode != 0
    assert "Authentication failure" in nobody.stderr

    created = zone.ok("volume", "create", "data1", "--zone", "z1", "--size", "32M",
                      "--pool", "lun")  # fmt: skip
    data = zone.cli.volume(created["id"])
    assert (data["state"], data["size"]) == ("Ready", 32 * MiB)
    assert zone.lun_file(data).stat().st_size == 32 * MiB
    assert zone.lun_file(data).stat().st_blocks == 0  # thin
    zone.ok("volume", "attach", "data1", "--vm", "web1")
    zone.qemu_io(data, "write -P 0x5c 0 64k")
    grown = zone.ok("volume", "resize", "data1", "--size", "64M")
    assert grown["size"] == 64 * MiB
    assert zone.lun_file(data).stat().st_size == 64 * MiB
    info = qemu("qemu-img", "info", "--output=json", *zone.opts(data)[:2],
                "--image-opts", zone.opts(data)[2])  # fmt: skip
    assert json.loads(info.stdout)["virtual-size"] == 64 * MiB
    zone.qemu_io(data, "read -P 0x5c 0 64k")
    zone.ok("volume", "detach", "data1")

    stats = zone.ok("pool", "stats", "lun")
    assert 1 * MiB <= stats["disksizeused"] < 96 * MiB  # blocks held, not sizes

    zone.ok("volume", "delete", "data1")
    zone.ok("volume", "expunge", "data1")
    assert not zone.lun_file(data).exists()
    assert not zone.secret_file(data).exists()
    assert data["path"] not in zone.targets()

    zone.ok("vm", "destroy", "web1", "--expunge")
    assert not zone.lun_file(root).exists()
    assert root["path"] not in zone.targets()
    assert list(zone.folder().iterdir()) == []
    zone.assert_no_secret_recorded()


def test_volumes_migrate_between_an_iscsi_pool_and_a_directory_pool(zone: Zone) -> None:
    zone.ok("vm", "deploy", "web1", "--template", "tiny", "--zone", "z1")
    zone.ok("volume", "create", "data1", "--zone", "z1", "--size", "32M",
            "--pool", "lun")  # fmt: skip
    data = zone.cli.volume("data1")
    zone.qemu_io(data, "write -P 0x77 1M 64k")
    zone.add_fs_pool()

    moved = zone.ok("volume", "migrate", "data1", "--pool", "fs")
    assert (moved["storage"], moved["state"], moved["path"]) == (
        "fs",
        "Ready",
        data["id"],
    )
    on_fs = zone.fs_dir / moved["path"]
    qemu("qemu-io", "-r", "-f", "qcow2", "-c", "read -P 0x77 1M 64k", str(on_fs))
    assert not zone.lun_file(data).exists()
    assert data["path"] not in zone.targets()

    back = zone.ok("volume", "migrate", "data1", "--pool", "lun")
    assert (back["storage"], back["path"]) == ("lun", data["path"])
    assert not on_fs.exists()
    zone.qemu_io(back, "read -P 0x77 1M 64k")

    zone.ok("vm", "stop", "web1")
    root = zone.cli.volume("ROOT-web1")
    zone.ok("volume", "migrate", root["id"], "--pool", "fs")
    qemu("qemu-img", "compare", "-f", "qcow2", "-F", "qcow2", str(zone.image),
         str(zone.fs_dir / root["id"]))  # fmt: skip
    zone.ok("volume", "migrate", root["id"], "--pool", "lun")
    zone.compare_with_template(zone.cli.volume(root["id"]))
    zone.ok("vm", "start", "web1")
    zone.assert_no_secret_recorded()


def backing_of(path: Path) -> str | None:
    done = qemu("qemu-img", "info", "--output=json", str(path))
    return json.loads(done.stdout).get("backing-filename")


def test_snapshots_are_the_lun_copied_to_the_image_store_and_restore_it(
    zone: Zone,
) -> None:
    """CloudStack's managed storage on KVM: a snapshot is the LUN's content read
    through the host into the image store (full, then a delta of it); revert
    writes a backup back into the LUN; a volume and a template are made from
    backups; the data is checked at each step."""
    zone.ok("volume", "create", "d1", "--zone", "z1", "--size", "64M",
            "--pool", "lun")  # fmt: skip
    data = zone.cli.volume("d1")
    zone.qemu_io(data, "write -P 0xa1 0 1M")
    zone.qemu_io(data, "write -P 0xa2 63M 1M")
    s1 = zone.ok("snapshot", "create", "d1", "--name", "s1")
    assert s1["state"] == "BackedUp"
    store = zone.fs_dir.parent / "sec"
    backup1 = store / "snapshots" / data["id"] / f"{s1['id']}.qcow2"
    assert backing_of(backup1) is None, "the first backup is full"
    qemu("qemu-io", "-r", "-f", "qcow2", "-c", "read -P 0xa1 0 1M",
         "-c", "read -P 0xa2 63M 1M", str(backup1))  # fmt: skip

    zone.qemu_io(data, "write -P 0xb1 0 1M")
    s2 = zone.ok("snapshot", "create", "d1", "--name", "s2")
    backup2 = backup1.with_name(f"{s2['id']}.qcow2")
    assert backing_of(backup2) == backup1.name, "the second is a delta of the first"
    assert backup2.stat().st_size < backup1.stat().st_size
    qemu("qemu-io", "-r", "-f", "qcow2", "-c", "read -P 0xb1 0 1M",
         "-c", "read -P 0xa2 63M 1M", str(backup2))  # fmt: skip
    assert list(store.rglob(".*")) == [], "no staged or full leftovers"

    zone.qemu_io(data, "write -P 0xc1 0 1M")
    zone.qemu_io(data, "write -P 0xc2 63M 1M")
    zone.ok("snapshot", "revert", "s1")
    zone.qemu_io(data, "read -P 0xa1 0 1M")
    zone.qemu_io(data, "read -P 0xa2 63M 1M")
    assert data["path"] in zone.targets(), "the target stays, on the new file"
    assert not list(zone.folder().glob(".*.part"))
    zone.ok("snapshot", "revert", "s2")  # a delta: its chain read whole
    zone.qemu_io(data, "read -P 0xb1 0 1M")
    zone.qemu_io(data, "read -P 0xa2 63M 1M")

    restored = zone.ok("volume", "create", "r1", "--from-snapshot", "s2",
                       "--pool", "lun")  # fmt: skip
    assert (restored["state"], restored["storage"]) == ("Ready", "lun")
    zone.qemu_io(restored, "read -P 0xb1 0 1M")
    zone.qemu_io(restored, "read -P 0xa2 63M 1M")

    made = zone.ok("template", "create", "t2", "--from-snapshot", "s2")
    assert made["isready"] is True
    zone.ok("vm", "deploy", "web2", "--template", "t2", "--zone", "z1")
    root = zone.cli.volume("ROOT-web2")
    assert root["storage"] == "lun"
    zone.qemu_io(root, "read -P 0xb1 0 1M")
    zone.qemu_io(root, "read -P 0xa2 63M 1M")

    zone.ok("snapshot", "delete", "s2")
    assert not backup2.exists()
    zone.assert_no_secret_recorded()


def test_targets_come_back_after_a_tgtd_restart(zone: Zone) -> None:
    zone.ok("vm", "deploy", "web1", "--template", "tiny", "--zone", "z1")
    zone.ok("volume", "create", "data1", "--zone", "z1", "--size", "32M",
            "--pool", "lun")  # fmt: skip
    zone.ok("volume", "attach", "data1", "--vm", "web1")
    root, data = zone.cli.volume("ROOT-web1"), zone.cli.volume("data1")
    zone.qemu_io(data, "write -P 0x3e 0 64k")

    restart_tgtd("down", "up")
    assert data["path"] not in zone.targets()
    # the next command on an existing volume makes its target again
    assert zone.ok("volume", "resize", "data1", "--size", "48M")["size"] == 48 * MiB
    zone.qemu_io(data, "read -P 0x3e 0 64k")
    assert root["path"] not in zone.targets()

    # tgtd down: a recorded failure in tgtadm's words, the volume as it was
    try:
        restart_tgtd("down")
        refused = zone.run("volume", "resize", "data1", "--size", "64M")
        assert refused.code == 3, refused
        answer = last_answer(zone.cli.db, data["id"])
        assert answer["result"] is False
        assert "tgtadm --op show --mode target failed:" in answer["details"]
        assert "not connected" in answer["details"] or "refused" in answer["details"]
        after = zone.cli.volume("data1")
        assert (after["state"], after["size"]) == ("Ready", 48 * MiB)
        assert zone.lun_file(data).stat().st_size == 48 * MiB
    finally:
        restart_tgtd("up")

    # one explicit way makes every target of the pool again, from the ledger
    made = zone.ok("pool", "targets", "lun")
    assert {(r["name"], r["status"]) for r in made} == {
        ("ROOT-web1", "made"),
        ("data1", "made"),
    }
    assert {root["path"], data["path"]} <= set(zone.targets())
    zone.compare_with_template(root)
    again = zone.ok("pool", "targets", "lun")
    assert {r["status"] for r in again} == {"present"}
    assert zone.ok("volume", "resize", "data1", "--size", "64M")["size"] == 64 * MiB
    zone.ok("volume", "detach", "data1")
    zone.assert_no_secret_recorded()


def test_a_command_tgtd_refuses_is_a_recorded_failure_leaving_nothing(
    zone: Zone,
) -> None:
    # the pool's credentials pointing at a control port nothing answers on
    wrong = {"STORCTL_CRED_LAB_ISCSI_CONTROL_PORT": "9"}
    before = set(zone.targets())
    failed = zone.run("volume", "create", "data1", "--zone", "z1", "--size", "32M",
                      "--pool", "lun", env=wrong)  # fmt: skip
    assert failed.code == 3, failed
    assert "tgtadm --op show --mode target failed" in failed.err
    volume = zone.cli.failed("volume.create")
    assert volume["state"] == "Expunged"  # nothing was made: the name is free
    answer = last_answer(zone.cli.db, volume["id"])
    assert answer["result"] is False
    assert "not connected" in answer["details"] or "refused" in answer["details"]
    assert not zone.folder().exists() or list(zone.folder().iterdir()) == []
    assert set(zone.targets()) == before

    # the template fill fails the same way, and leaves no LUN or secret behind
    failed = zone.run("vm", "deploy", "web1", "--template", "tiny", "--zone", "z1",
                      env=wrong)  # fmt: skip
    assert failed.code == 3, failed
    assert not zone.folder().exists() or list(zone.folder().iterdir()) == []
    assert set(zone.targets()) == before
    assert zone.ok("pool", "show", "lun")["disksizeallocated"] == 0


def test_pool_add_reaches_tgtd_and_refuses_what_does_not_answer(
    lab_backends: Lab, tmp_path: Path
) -> None:
    profile = lab_backends["lab-iscsi"]
    env = {"STORCTL_CREDENTIALS": str(lab_backends.credentials)}
    cli = Storctl(str(tmp_path / "ledger.db"), env=env)
    cli.ok("host", "add", "kvm1", "--zone", "z1", "--cluster", "c1")
    url = f"iscsi://{profile['portal']}"
    bad_port = {
        "STORCTL_CRED_NOWHERE_CONTROL_PORT": "9",
        "STORCTL_CRED_NOWHERE_PORTAL": str(profile["portal"]),
        "STORCTL_CRED_NOWHERE_LUN_DIR": str(profile["lun_dir"]),
    }
    cases = [
        (url, "nowhere", bad_port, "does not answer on control port 9"),
        (f"{url}/iqn.x/1", "lab-iscsi", {}, "no path"),
        (f"iscsi://u:p@{profile['portal']}", "lab-iscsi", {}, "no user or password"),
        (url + "?x=1", "lab-iscsi", {}, "query string"),
        ("iscsi://127.0.0.1:1", "lab-iscsi", {}, "another portal"),
    ]
    for location, creds, env, says in cases:
        refused = cli.run("pool", "add", "lun", "--zone", "z1", "--provider", "iscsi",
                          "--url", location, "--credentials", creds, "--scope", "zone",
                          "--capacity", "1G", env=env)  # fmt: skip
        assert refused.code == 2, refused
        assert len(refused.err.strip().splitlines()) == 1, refused.err
        assert says in refused.err
    added = cli.ok("pool", "add", "lun", "--zone", "z1", "--provider", "iscsi",
                   "--url", url + "/", "--credentials", "lab-iscsi",
                   "--scope", "zone", "--capacity", "1G")  # fmt: skip
    assert (added["type"], added["path"]) == ("Iscsi", url)
    none = cli.run("pool", "targets", "lun")
    assert none.code == 0
    assert none.json == []


def test_reconcile_names_an_extra_lun_and_a_removed_one(zone: Zone) -> None:
    """`storctl reconcile` on an iSCSI pool: clean after a deploy and a data
    volume (exit 0, nothing listed); then a LUN file with a target that no volume
    claims, made by hand with tgtadm, and a data volume's LUN file removed: exit
    3, exactly those two named, and no CHAP secret in what it printed."""
    import uuid

    zone.ok("vm", "deploy", "web1", "--template", "tiny", "--zone", "z1")
    zone.ok("volume", "create", "data1", "--zone", "z1", "--size", "32M",
            "--pool", "lun")  # fmt: skip
    data = zone.cli.volume("data1")
    clean = zone.run("reconcile", "lun")
    assert (clean.code, clean.json) == (0, []), clean
    assert zone.run("doctor").code == 0

    stray = str(uuid.uuid4())
    iqn = f"iqn.2010-01.org.apache.cloudstack.storctl:{zone.pool['id']}.{stray}"
    extra = zone.folder() / f"{stray}.lun"
    with extra.open("wb") as out:
        out.truncate(4 * MiB)
    port = str(zone.port)
    tid = str(max([t.tid for t in zone.targets().values()] + [20_000]) + 1)
    qemu("tgtadm", "-C", port, "--lld", "iscsi", "--op", "new", "--mode", "target",
         "--tid", tid, "-T", iqn)  # fmt: skip
    qemu("tgtadm", "-C", port, "--lld", "iscsi", "--op", "new", "--mode",
         "logicalunit", "--tid", tid, "--lun", "1", "-b", str(extra))  # fmt: skip
    zone.lun_file(data).unlink()

    drift = zone.run("reconcile", "lun")
    assert drift.code == 3, drift
    assert len(drift.err.strip().splitlines()) == 1, drift
    got = sorted((f["problem"], f["path"], f["objectid"]) for f in drift.json)
    assert got == sorted([("orphan", iqn, None), ("missing", data["path"], data["id"])])
    orphan = next(f for f in drift.json if f["problem"] == "orphan")
    assert orphan["found"] == f"LUN file of {4 * MiB} bytes, target tid {tid}"
    zone.assert_no_secret_recorded()
