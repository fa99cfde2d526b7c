"""The lab's servers answer as the executors will use them, through the credentials
profile only: Ceph (`ceph`, `rbd`, qemu-img's rbd driver), RGW's S3 (boto3) and
Swift (auth v1, urllib), tgtd (tgtadm, qemu-img's iscsi driver); `make lab` is
idempotent and `make lab-down` + `make lab` keeps the data.

The last test stops and restarts the lab: keep it last.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LAB_SCRIPT, Lab

pytestmark = pytest.mark.lab
ROOT = LAB_SCRIPT.parents[1]


def sh(*argv: str, timeout: float = 120) -> str:
    proc = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert proc.returncode == 0, f"{argv[:4]}: exit {proc.returncode}\n{proc.stderr}"
    return proc.stdout


def make(target: str) -> str:
    return sh("make", "-s", "-C", str(ROOT), target, timeout=600)


@pytest.fixture
def lab(lab_backends: Lab) -> Lab:
    return lab_backends


def lab_pids() -> dict[str, int | None]:
    out = json.loads(sh(sys.executable, str(LAB_SCRIPT), "status", "--json"))
    return {
        name: info["pid"]
        for daemons in out["backends"].values()
        for name, info in daemons.items()
    }


def secrets(lab: Lab) -> list[str]:
    return [
        lab["lab-s3"]["access_key"],
        lab["lab-s3"]["secret_key"],
        lab["lab-swift"]["key"],
    ]


def s3_client(lab: Lab) -> Any:
    import boto3
    from botocore.config import Config

    s3 = lab["lab-s3"]
    return boto3.client(
        "s3",
        endpoint_url=s3["endpoint"],
        aws_access_key_id=s3["access_key"],
        aws_secret_access_key=s3["secret_key"],
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}),
    )


def rbd_uri(lab: Lab, image: str) -> str:
    c = lab["lab-ceph"]
    return (
        f"rbd:{c['pool']}/{image}:conf={c['conf']}:id={c['user']}"
        f":keyring={c['keyring']}"
    )


def test_credentials_are_private_and_name_every_backend(lab: Lab):
    assert lab.credentials.stat().st_mode & 0o777 == 0o600
    assert {p: lab[p]["kind"] for p in lab.profiles} == {
        "lab-ceph": "ceph",
        "lab-s3": "s3",
        "lab-swift": "swift",
        "lab-iscsi": "iscsi",
    }
    assert Path(lab["lab-ceph"]["conf"]).is_absolute()
    assert Path(lab["lab-iscsi"]["lun_dir"]).is_dir()


def test_every_lab_daemon_listens_on_loopback_only(lab: Lab):
    pids = {pid for pid in lab_pids().values() if pid}
    assert len(pids) == 5
    listening: dict[str, str] = {}  # socket inode -> local address
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN
                listening[fields[9]] = fields[1].split(":")[0]
    seen = []
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            target = os.readlink(fd) if fd.is_symlink() else ""
            inode = target.removeprefix("socket:[").removesuffix("]")
            if inode in listening:
                seen.append(listening[inode])
    assert seen, "no listening socket found"
    assert set(seen) == {"0100007F"}, f"bound beyond 127.0.0.1: {seen}"


def test_the_cluster_answers_health_and_rbd_through_its_conf(lab: Lab):
    c = lab["lab-ceph"]
    health = sh("ceph", "-c", c["conf"], "--id", c["user"], "health")
    assert health.startswith(("HEALTH_OK", "HEALTH_WARN")), health
    sh("rbd", "-c", c["conf"], "--id", c["user"], "ls", c["pool"])
    image = f"lab-test-{uuid.uuid4().hex[:8]}"
    sh("qemu-img", "create", "-f", "raw", rbd_uri(lab, image), "16M")
    try:
        listed = sh("rbd", "-c", c["conf"], "ls", c["pool"]).split()
        assert image in listed
    finally:
        sh("rbd", "-c", c["conf"], "rm", "--no-progress", f"{c['pool']}/{image}")


def test_s3_round_trip_in_the_lab_bucket_is_byte_identical(lab: Lab):
    s3, bucket = s3_client(lab), lab["lab-s3"]["bucket"]
    key = f"lab-test/{uuid.uuid4().hex}"
    body = os.urandom(3 << 20) + b"\0" * 4096
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    try:
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body
    finally:
        s3.delete_object(Bucket=bucket, Key=key)
    keys = s3.list_objects_v2(Bucket=bucket, Prefix=key).get("Contents", [])
    assert keys == []


def http_get(url: str, headers: dict[str, str]) -> Any:
    """urllib on an http:// URL of the lab's profile (nothing else reaches here)."""
    assert url.startswith("http://127.0.0.1:"), url
    req = urllib.request.Request(url, headers=headers)  # noqa: S310
    return urllib.request.urlopen(req, timeout=30)  # noqa: S310


def test_swift_auth_v1_lists_the_lab_bucket_as_a_container(lab: Lab):
    swift = lab["lab-swift"]
    auth = {"X-Auth-User": swift["user"], "X-Auth-Key": swift["key"]}
    with http_get(swift["auth_url"], auth) as r:
        token, storage = r.headers["X-Auth-Token"], r.headers["X-Storage-Url"]
    assert storage.startswith("http://127.0.0.1:7480/swift/v1")
    with http_get(f"{storage}?format=json", {"X-Auth-Token": token}) as r:
        names = [c["name"] for c in json.load(r)]
    assert lab["lab-s3"]["bucket"] in names


def test_a_thin_tgtd_lun_takes_a_qemu_img_convert(lab: Lab, tmp_path: Path):
    iscsi = lab["lab-iscsi"]
    port = str(iscsi["control_port"])

    def tgtadm(*args: str) -> str:
        return sh("tgtadm", "-C", port, *args)

    shown = tgtadm("--op", "show", "--mode", "target")
    tids = [int(ln.split()[1].rstrip(":")) for ln in shown.splitlines()
            if ln.startswith("Target ")]  # fmt: skip
    tid = str(max(tids, default=0) + 1)
    iqn = f"iqn.2026-12.org.storctl:lab-test-{uuid.uuid4().hex[:8]}"
    lun = Path(iscsi["lun_dir"]) / f"{iqn.rsplit(':', 1)[1]}.img"
    size = 8 << 20
    with lun.open("wb") as f:
        f.truncate(size)  # sparse
    source = tmp_path / "source.raw"
    data = os.urandom(size)
    source.write_bytes(data)
    tgtadm("--op", "new", "--mode", "target", "--tid", tid, "-T", iqn)
    try:
        tgtadm("--op", "new", "--mode", "logicalunit", "--tid", tid, "--lun", "1",
               "-b", str(lun), "--bstype", "rdwr")  # fmt: skip
        tgtadm("--op", "update", "--mode", "logicalunit", "--tid", tid, "--lun", "1",
               "--params", "thin_provisioning=1")  # fmt: skip
        tgtadm("--op", "bind", "--mode", "target", "--tid", tid, "-I", "ALL")
        assert iqn in tgtadm("--op", "show", "--mode", "target")
        url = f"iscsi://{iscsi['portal']}/{iqn}/1"
        sh("qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", str(source), url)
        assert lun.read_bytes() == data
    finally:
        tgtadm("--op", "delete", "--mode", "target", "--tid", tid, "--force")
        lun.unlink()
    assert iqn not in tgtadm("--op", "show", "--mode", "target")


def test_a_second_make_lab_finds_it_up_and_starts_nothing(lab: Lab):
    before = lab_pids()
    assert all(before.values()), before
    out = make("lab")
    assert out.count("already up") == 2, out
    assert lab_pids() == before
    assert f"export STORCTL_CREDENTIALS={lab.credentials}" in out
    assert not any(secret in out for secret in secrets(lab))


def test_make_lab_starts_again_only_the_daemon_found_dead(lab: Lab):
    before = lab_pids()
    os.kill(before["ceph-osd.0"], signal.SIGKILL)  # a pid the lab recorded
    out = make("lab")
    after = lab_pids()
    assert after["ceph-osd.0"] not in (None, before["ceph-osd.0"]), out
    assert {k: v for k, v in after.items() if k != "ceph-osd.0"} == {
        k: v for k, v in before.items() if k != "ceph-osd.0"
    }
    c = lab["lab-ceph"]
    assert sh("ceph", "-c", c["conf"], "health").startswith("HEALTH_OK")


def test_lab_down_then_lab_brings_it_back_with_the_data_kept(lab: Lab):
    """Last: it restarts every daemon (tgtd's targets are gone, by design)."""
    s3, bucket = s3_client(lab), lab["lab-s3"]["bucket"]
    key, body = f"lab-test/kept-{uuid.uuid4().hex}", os.urandom(1 << 20)
    c = lab["lab-ceph"]
    image = f"lab-test-kept-{uuid.uuid4().hex[:8]}"
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    sh("rbd", "-c", c["conf"], "create", "--size", "8M", f"{c['pool']}/{image}")
    before = lab_pids()

    out = make("lab-down")
    assert not any(secret in out for secret in secrets(lab))
    assert lab_pids() == dict.fromkeys(before)  # every recorded daemon gone
    for pid in before.values():
        stat = Path(f"/proc/{pid}/stat")
        assert not stat.exists() or stat.read_text().split(") ")[1][0] in "ZX"

    out = make("lab")
    after = lab_pids()
    assert all(after.values()), out
    assert after != before
    assert not any(secret in out for secret in secrets(lab))
    with lab.credentials.open("rb") as f:
        import tomllib

        assert tomllib.load(f) == lab.profiles  # same keys, same cluster
    try:
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body
        assert image in sh("rbd", "-c", c["conf"], "ls", c["pool"]).split()
    finally:
        s3.delete_object(Bucket=bucket, Key=key)
        sh("rbd", "-c", c["conf"], "rm", "--no-progress", f"{c['pool']}/{image}")
