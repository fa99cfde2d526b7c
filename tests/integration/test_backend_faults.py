"""Faults are answers: a backend daemon stopped in the middle of a copy.

Each test starts a copy through the CLI, waits (with a deadline) until the agent's
`qemu-img convert` is writing into the backend, then stops the daemon the copy
needs — the Ceph OSD, radosgw or tgtd, by the PID the lab recorded — and asserts
what an operator must see:

- the CLI exits 3 with one line carrying the backend's own words, and the failed
  answer is recorded (`result=false`, the same words) on the command's job;
- the object is back in CloudStack's state (the copy's
  `template_spool_ref`/`template_store_ref` row failed or gone, no `Copying` left);
- nothing half-made is left on the backend once the daemon is back (no image, LUN
  or object of the failed copy), and `reconcile` finds the pool clean;
- the next operation after the daemon returns succeeds.

They stop daemons of whichever lab `STORCTL_LAB_DIR`/`STORCTL_LAB_PORT_OFFSET`
name (the one `make test` brings up, or a second lab beside it: see README.md),
and start them again (`tools/lab.py up`) whatever happens.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LAB_SCRIPT, Lab
from tests.integration import test_rbd
from tests.integration.conftest import Storctl, finish, wait_for
from tests.integration.staged_stores import S3, Zone, add_stores, image, make_zone
from tests.integration.test_rbd import MON, Ceph, qemu_io

#: the fixtures of the RBD tests: the lab's cluster, a Ceph pool of the test's own
ceph, own_pool = test_rbd.ceph, test_rbd.own_pool
MiB = 1 << 20
#: seconds a Ceph client waits for an OSD before its write fails (ETIMEDOUT):
#: short, so a stopped OSD is an answer within the test, not a wait of minutes
OP_TIMEOUT = "5"


def lab_pids() -> dict[str, int | None]:
    out = subprocess.run(
        [sys.executable, str(LAB_SCRIPT), "status", "--json"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    return {
        name: info["pid"]
        for daemons in json.loads(out)["backends"].values()
        for name, info in daemons.items()
    }


def lab_up(backend: str) -> None:
    done = subprocess.run(
        [sys.executable, str(LAB_SCRIPT), "up", backend],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def stop(daemon: str, sig: int = signal.SIGTERM) -> None:
    """The daemon stopped the way an operator's `kill` stops it (tgtd ignores
    SIGTERM: it is killed, as a crash would)."""
    pid = lab_pids()[daemon]
    assert pid, f"{daemon} is not running"
    os.kill(pid, sig)
    wait_for(lambda: not Path(f"/proc/{pid}").exists() or _zombie(pid), 60,
             f"{daemon} to stop")  # fmt: skip


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] in "ZX"
    except (OSError, IndexError):
        return True


def writers(marker: str) -> list[int]:
    """PIDs of `qemu-img convert` processes whose argv names `marker`."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        writing = argv and argv[0].endswith(b"qemu-img") and b"convert" in argv
        if writing and any(marker.encode() in a for a in argv):
            found.append(int(proc.name))
    return found


def stop_mid_copy(marker: str, daemon: str, sig: int = signal.SIGTERM) -> None:
    """The daemon stopped while `qemu-img` is writing: the writer is paused the
    moment it shows (so the copy cannot finish first), the daemon stopped, the
    writer resumed into a backend that is gone."""
    [writer, *_] = wait_for(lambda: writers(marker), 60, f"qemu-img writing {marker}")
    os.kill(writer, signal.SIGSTOP)
    try:
        stop(daemon, sig)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(writer, signal.SIGCONT)


def template_file(path: Path, size: int, written: int) -> Path:
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), str(size)],
                   check=True)  # fmt: skip
    out = qemu_io("qcow2", str(path), f"write -P 0x5c 0 {written}")
    assert "wrote" in out, out
    return path


def answers_saying(cli: Storctl, words: str) -> list[dict[str, Any]]:
    """The journal's answers whose details carry `words` (a failed answer's)."""
    return cli.db_rows(
        "SELECT event, details FROM event_journal WHERE event LIKE '%Answered'"
        " AND details LIKE ? ORDER BY position",
        [f"%{words}%"],
    )


# ------------------------------------------------------------------ rbd: the OSD


@pytest.fixture
def ceph_zone(own_pool: Ceph, tmp_path: Path):
    """A zone whose RBD pool is a Ceph pool of the test's own (reconcile sees
    only what this test made) and a 1 GiB template with 256 MiB of data."""
    ceph = own_pool
    (tmp_path / "sec").mkdir()
    cli = Storctl(
        str(tmp_path / "ledger.db"),
        env={"STORCTL_CRED_LAB_CEPH_OP_TIMEOUT": OP_TIMEOUT},
        subprocess=True,
    )
    cli.ok("host", "add", "kvm1", "--zone", "z1", "--cluster", "c1")
    cli.ok("pool", "add", "ceph", "--zone", "z1", "--scope", "zone", "--provider",
           "rbd", "--url", f"rbd://admin@{MON}/{ceph.pool}", "--credentials",
           "lab-ceph", "--capacity", "20G")  # fmt: skip
    cli.ok("store", "add", "sec", "--zone", "z1", "--path", str(tmp_path / "sec"))
    cli.ok("config", "set", "template.url.allowed.roots", str(tmp_path))
    image = template_file(tmp_path / "big.qcow2", 1024 * MiB, 256 * MiB)
    cli.ok("template", "register", "big", "--zone", "z1", "--url", image.as_uri(),
           "--format", "qcow2")  # fmt: skip
    try:
        yield cli, ceph
    finally:
        lab_up("ceph")  # own_pool removes the pool, with what is in it


def test_the_osd_stopped_mid_copy_is_a_recorded_answer_and_leaves_nothing(
    ceph_zone: tuple[Storctl, Ceph],
):
    cli, ceph = ceph_zone
    template = cli.ok("template", "show", "big")
    before = ceph.images()
    deploy = cli.popen("vm", "deploy", "web1", "--template", "big", "--zone", "z1")
    try:
        stop_mid_copy(f"rbd:{ceph.pool}/{template['id']}", "ceph-osd.0")
        result = finish(deploy, timeout=240)
    finally:
        if deploy.poll() is None:
            deploy.kill()
        lab_up("ceph")
    assert result.code == 3, result
    err = result.err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Connection timed out" in err, err  # librados' words, through qemu-img
    answered = answers_saying(cli, "Connection timed out")
    assert [a["event"] for a in answered] == ["CopyAnswered"], answered
    # after a failed copy: the ROOT volume never made is expunged (its name free
    # for the retry), the pool's template copy failed back to Allocated with the
    # reason (CloudStack's OperationFailed)
    # (never made, so the ROOT volume and its VM then go: their names are free)
    [root] = cli.db_rows("SELECT state FROM volumes WHERE name = ?", ["ROOT-web1"])
    assert root["state"] == "Expunged"
    [ref] = cli.db_rows("SELECT * FROM template_spool_ref", [])
    assert (ref["state"], ref["download_state"]) == ("Allocated", "DOWNLOAD_ERROR")
    assert "Connection timed out" in ref["error_str"]
    wait_for(lambda: ceph.rbd("ls", ceph.pool, check=False).returncode == 0, 120,
             "the pool to answer again")  # fmt: skip
    # the OSD was gone when the agent tried to remove its half-made image: the
    # `.part` is all that is left, reconcile names it, and the next copy replaces it
    part = f"{template['id']}.part"
    assert ceph.images() - before <= {part}
    if ceph.images() - before:
        found = cli.run("reconcile", "ceph")
        assert found.code == 3, found
        assert [(f["problem"], f["path"]) for f in found.json] == [("leftover", part)]

    again = cli.run("vm", "deploy", "web2", "--template", "big", "--zone", "z1")
    assert again.code == 0, again
    root = cli.volume("ROOT-web2")
    assert root["state"] == "Ready"
    assert ceph.images() - before == {template["id"], root["path"]}
    clean = cli.run("reconcile", "ceph")
    assert (clean.code, clean.json) == (0, []), clean


# ------------------------------------------------------------------ iscsi: tgtd


@pytest.fixture
def iscsi_zone(lab_backends: Lab, tmp_path: Path) -> Iterator[tuple[Storctl, Path]]:
    """A zone whose only pool is a managed iSCSI pool of the lab's tgtd, and a
    1 GiB template with 256 MiB of data; yields the CLI and the pool's LUN folder."""
    profile = lab_backends["lab-iscsi"]
    (tmp_path / "sec").mkdir()
    cli = Storctl(
        str(tmp_path / "ledger.db"),
        env={"STORCTL_CREDENTIALS": str(lab_backends.credentials)},
        subprocess=True,
    )
    cli.ok("host", "add", "kvm1", "--zone", "z1", "--cluster", "c1")
    pool = cli.ok("pool", "add", "lun", "--zone", "z1", "--provider", "iscsi",
                  "--url", f"iscsi://{profile['portal']}", "--credentials",
                  "lab-iscsi", "--scope", "zone", "--capacity", "20G")  # fmt: skip
    cli.ok("store", "add", "sec", "--zone", "z1", "--path", str(tmp_path / "sec"))
    cli.ok("config", "set", "template.url.allowed.roots", str(tmp_path))
    image = template_file(tmp_path / "big.qcow2", 1024 * MiB, 256 * MiB)
    cli.ok("template", "register", "big", "--zone", "z1", "--url", image.as_uri(),
           "--format", "qcow2")  # fmt: skip
    folder = Path(profile["lun_dir"]) / pool["id"]
    try:
        yield cli, folder
    finally:
        lab_up("iscsi")
        for vm in cli.ok("vm", "list"):
            cli.run("vm", "destroy", vm["name"], "--expunge")


def test_tgtd_killed_mid_copy_is_a_recorded_answer_and_leaves_nothing(
    iscsi_zone: tuple[Storctl, Path], lab_backends: Lab
):
    cli, folder = iscsi_zone
    portal = lab_backends["lab-iscsi"]["portal"]
    deploy = cli.popen("vm", "deploy", "web1", "--template", "big", "--zone", "z1")
    try:
        stop_mid_copy(f"file.portal={portal}", "tgtd", signal.SIGKILL)
        result = finish(deploy, timeout=240)
    finally:
        if deploy.poll() is None:
            deploy.kill()
        lab_up("iscsi")
    assert result.code == 3, result
    err = result.err.strip()
    assert len(err.splitlines()) == 1, err
    # libiscsi reconnects forever; the agent's probe of tgtd's control port
    # stops the copy, in tgtadm's words
    assert "tgtd stopped answering on control port" in err, err
    assert "to tgt daemon" in err, err  # tgtadm's own words
    answered = answers_saying(cli, "tgtd stopped answering")
    assert [a["event"] for a in answered] == ["CopyAnswered"], answered
    [root] = cli.db_rows("SELECT * FROM volumes WHERE name = ?", ["ROOT-web1"])
    assert (root["state"], root["path"]) == ("Expunged", None)  # never made
    # the half-written LUN, its secret and its target went with the failure
    assert not list(folder.glob("*")) if folder.exists() else True
    clean = cli.run("reconcile", "lun")
    assert (clean.code, clean.json) == (0, []), clean

    again = cli.run("vm", "deploy", "web2", "--template", "big", "--zone", "z1")
    assert again.code == 0, again
    root = cli.volume("ROOT-web2")
    assert root["state"] == "Ready"
    assert [p.name for p in folder.glob("*.lun")] == [f"{root['id']}.lun"]
    clean = cli.run("reconcile", "lun")
    assert (clean.code, clean.json) == (0, []), clean


# ------------------------------------------------------------------ s3: radosgw


@pytest.fixture
def s3_zone(tmp_path: Path, lab_backends: Lab) -> Iterator[Zone]:
    """A directory pool, the lab's S3 bucket under a prefix of the test's own as
    the image store, and the staging cache (`staged_stores.make_zone`)."""
    try:
        yield from make_zone(tmp_path, lab_backends, S3)
    finally:
        lab_up("ceph")


def test_radosgw_stopped_mid_upload_is_a_recorded_answer_and_leaves_nothing(
    s3_zone: Zone,
):
    zone = s3_zone
    add_stores(zone)
    source = image(zone.root / "img" / "big.qcow2", 256 * MiB, size="512M")
    register = zone.cli.popen(
        "template", "register", "big", "--zone", "z1", "--url", source.as_uri(),
        "--format", "qcow2",
    )  # fmt: skip
    try:
        wait_for(lambda: uploads(zone), 60, "the multipart upload to start")
        os.kill(register.pid, signal.SIGSTOP)  # mid-upload, whatever the speed
        try:
            stop("radosgw.a")
        finally:
            os.kill(register.pid, signal.SIGCONT)
        result = finish(register, timeout=240)
    finally:
        if register.poll() is None:
            register.kill()
        lab_up("ceph")
    assert result.code == 3, result
    err = result.err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Could not connect to the endpoint URL" in err, err  # botocore's words
    answered = answers_saying(zone.cli, "Could not connect to the endpoint URL")
    assert [a["event"] for a in answered] == ["DownloadAnswered"], answered
    [ref] = zone.cli.db_rows("SELECT * FROM template_store_ref", [])
    assert (ref["state"], ref["download_state"]) == ("Allocated", "DOWNLOAD_ERROR")
    wait_for(lambda: _answers(zone), 60, "radosgw to answer again")
    # no object; the upload radosgw could not abort while it was down is what
    # is left, and deleting the failed template removes it
    assert zone.objects() == {}
    assert [u["Key"] for u in uploads(zone)] == [
        f"{zone.prefix}/template/tmpl/{ref['template_id']}/{ref['template_id']}.qcow2"
    ]
    zone.cli.ok("template", "delete", "big")
    assert uploads(zone) == []
    [ref] = zone.cli.db_rows("SELECT * FROM template_store_ref", [])
    assert ref["state"] == "Destroyed"

    small = image(zone.root / "img" / "small.qcow2", 4 * MiB)
    again = zone.cli.ok("template", "register", "small", "--zone", "z1", "--url",
                        small.as_uri(), "--format", "qcow2")  # fmt: skip
    assert again["isready"] is True
    assert list(zone.objects()) == [f"template/tmpl/{again['id']}/{again['id']}.qcow2"]


def uploads(zone: Zone) -> list[dict[str, Any]]:
    found = zone.s3.list_multipart_uploads(Bucket=zone.bucket, Prefix=zone.prefix)
    return list(found.get("Uploads", []))


def _answers(zone: Zone) -> bool:
    try:
        zone.s3.head_bucket(Bucket=zone.bucket)
    except Exception:
        return False
    return True
