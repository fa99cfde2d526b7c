"""The lab's Ceph (Pacific): one mon, one lean mgr, one bluestore OSD on a sparse
file, radosgw (S3 + Swift) on 127.0.0.1:7480, an RBD pool and an S3 bucket.

Everything lives under `<lab>/ceph/`; clients find the cluster through `ceph.conf`
(its `[client]` section names the admin keyring). Nothing is exported: daemons would
read CEPH_ARGS too. See docs in README.md ("The lab") and backends.md for the why of
each setting.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import socket
import struct
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

from lab_common import (
    HOST,
    Daemon,
    LabError,
    debug,
    lab_dir,
    port_offset,
    port_open,
    read_credentials,
    run,
    say,
    stop_daemons,
    wait_until,
)

PACKAGES = ["ceph-mon", "ceph-mgr", "ceph-osd", "ceph-common", "radosgw"]
MON_V2, MON_V1, RGW_PORT = (p + port_offset() for p in (3300, 6789, 7480))
POOL, BUCKET = "storctl", "storctl-lab"
#: A second RBD pool, for a second storctl pool on the same cluster (two storctl
#: pools on one Ceph pool would be the same images, and `pool add` refuses that).
SECOND_POOL = "storctl-pairs"
RGW_UID, SWIFT_SUBUSER = "storctl", "storctl:swift"
#: the OSD's sparse bluestore file (bytes); the disk must really hold what is written
BLOCK_SIZE = int(os.environ.get("STORCTL_LAB_CEPH_BYTES", str(20 << 30)))
#: Pacific's always-on mgr modules: disabling one of them is HEALTH_ERR
ALWAYS_ON = {
    "balancer", "crash", "devicehealth", "orchestrator", "pg_autoscaler",
    "progress", "rbd_support", "status", "telemetry", "volumes",
}  # fmt: skip
#: health checks a one-OSD lab may show and still be healthy
TOLERATED = {"POOL_NO_REDUNDANCY"}


def home() -> Path:
    return lab_dir() / "ceph"


def conf() -> Path:
    return home() / "ceph.conf"


def admin_keyring() -> Path:
    return home() / "ceph.client.admin.keyring"


def daemons() -> list[Daemon]:
    """mon, mgr, osd, rgw: the order they start in (and stop in reverse)."""
    c = str(conf())

    def daemon(name: str, argv: list[str]) -> Daemon:
        return Daemon(
            name, argv, home() / "pids" / f"{name}.json", home() / "log" / f"{name}.out"
        )

    return [
        daemon("ceph-mon.a", ["ceph-mon", "-f", "-c", c, "-i", "a"]),
        daemon("ceph-mgr.x", ["ceph-mgr", "-f", "-c", c, "-i", "x"]),
        daemon("ceph-osd.0", ["ceph-osd", "-f", "-c", c, "-i", "0"]),
        daemon("radosgw.a", ["radosgw", "-f", "-c", c, "-n", "client.rgw.a"]),
    ]


def ceph(*args: str, timeout: float = 30.0) -> str:
    argv = ["ceph", "-c", str(conf()), "--connect-timeout", "15", *args]
    return run(argv, timeout=timeout).stdout


def rgw_admin(*args: str) -> dict[str, Any]:
    """radosgw-admin's JSON answer (it holds keys: never shown, never logged)."""
    argv = ["radosgw-admin", "-c", str(conf()), *args]
    proc = run(argv, timeout=60, secret=True, check=False)
    if proc.returncode != 0:
        return {"_exit": proc.returncode}
    return json.loads(proc.stdout or "{}")


# ------------------------------------------------------------------ first boot


def write_conf(fsid: str) -> None:
    d = home()
    optional = sorted(
        p.name
        for p in Path("/usr/share/ceph/mgr").iterdir()
        if p.is_dir() and (p / "module.py").exists() and p.name not in ALWAYS_ON
    )
    conf().write_text(f"""\
# written by tools/lab.py: the storctl lab's one-OSD cluster on {HOST} only
[global]
fsid = {fsid}
mon host = [v2:{HOST}:{MON_V2},v1:{HOST}:{MON_V1}]
public addr = {HOST}
cluster addr = {HOST}
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
auth allow insecure global id reclaim = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
run dir = {d}/run
crash dir = {d}/crash
mon cluster log file = {d}/log/$cluster.log
mon data avail warn = 10
mon data avail crit = 5
mgr stats period = 1
mon mgr digest period = 1

[mon]
mon data = {d}/mon/$cluster-$id
keyring = $mon_data/keyring
log file = {d}/log/$cluster-$name.log
paxos propose interval = 0.1
mon allow pool delete = true
mgr initial modules =

[mgr]
mgr data = {d}/mgr/$cluster-$id
keyring = $mgr_data/keyring
log file = {d}/log/$cluster-$name.log
mgr disabled modules = {" ".join(optional)}

[osd]
osd data = {d}/osd/$cluster-$id
keyring = $osd_data/keyring
log file = {d}/log/$cluster-$name.log
osd objectstore = bluestore
bluestore block path = {d}/osd-block-$id
bluestore block create = true
bluestore block size = {BLOCK_SIZE}
bdev aio poll ms = 20
osd memory target = 939524096

[client]
keyring = {admin_keyring()}
objecter tick interval = 1

[client.rgw.a]
rgw data = {d}/rgw/$cluster-$id
keyring = $rgw_data/keyring
log file = {d}/log/$cluster-$name.log
rgw frontends = beast endpoint={HOST}:{RGW_PORT}
rgw thread pool size = 64
rgw enable lc threads = false
rgw cache enabled = false
rgw run sync thread = false
rgw enable apis = s3, s3website, swift, swift_auth, admin
""")


KEYS = {
    "client.admin": ["mon", "allow *", "osd", "allow *", "mds", "allow *", "mgr",
                     "allow *"],
    "mgr.x": ["mon", "allow profile mgr", "osd", "allow *", "mds", "allow *"],
    "osd.0": ["mon", "allow profile osd", "mgr", "allow profile osd", "osd",
              "allow *"],
    "client.rgw.a": ["mon", "allow rw", "osd", "allow rwx", "mgr", "allow rw"],
}  # fmt: skip


def keyring_of(entity: str) -> Path:
    d = home()
    return {
        "client.admin": admin_keyring(),
        "mgr.x": d / "mgr" / "ceph-x" / "keyring",
        "osd.0": d / "osd" / "ceph-0" / "keyring",
        "client.rgw.a": d / "rgw" / "ceph-rgw.a" / "keyring",
    }[entity]


def bootstrap() -> None:
    """A new cluster's files: conf, keyrings, the mon's store, the OSD's bluestore."""
    d = home()
    for sub in ("mon/ceph-a", "mgr/ceph-x", "osd/ceph-0", "rgw/ceph-rgw.a", "run",
                "log", "crash", "pids", "bootstrap"):  # fmt: skip
        (d / sub).mkdir(parents=True, exist_ok=True)
    fsid = str(uuid.uuid4())
    write_conf(fsid)
    # the mon's keyring stays outside its data dir during --mkfs
    mon_keyring = d / "bootstrap" / "mon.keyring"
    run(["ceph-authtool", "--create-keyring", str(mon_keyring), "--gen-key",
         "-n", "mon.", "--cap", "mon", "allow *"])  # fmt: skip
    for entity, caps in KEYS.items():
        path = keyring_of(entity)
        argv = ["ceph-authtool", "--create-keyring", str(path), "--gen-key",
                "-n", entity]  # fmt: skip
        for i in range(0, len(caps), 2):
            argv += ["--cap", caps[i], caps[i + 1]]
        run(argv)
        path.chmod(0o600)
        run(["ceph-authtool", str(mon_keyring), "--import-keyring", str(path)])
    monmap = d / "bootstrap" / "monmap"
    run(["monmaptool", "--create", "--fsid", fsid, "--addv", "a",
         f"[v2:{HOST}:{MON_V2},v1:{HOST}:{MON_V1}]", str(monmap)])  # fmt: skip
    run(["ceph-mon", "-c", str(conf()), "--mkfs", "-i", "a", "--monmap",
         str(monmap), "--keyring", str(mon_keyring)])  # fmt: skip
    osd_uuid = str(uuid.uuid4())
    (d / "bootstrap" / "osd-uuid").write_text(osd_uuid + "\n")
    run(["ceph-osd", "-c", str(conf()), "-i", "0", "--mkfs", "--osd-uuid", osd_uuid,
         "--no-mon-config"], timeout=120)  # fmt: skip
    mon_keyring.unlink()


def mon_is_leader() -> bool:
    """The mon's own word (admin socket): its port opens before it answers clients,
    and a client that knocks too early hunts again 3-5 s later."""
    with (
        contextlib.suppress(OSError, ValueError, struct.error),
        socket.socket(socket.AF_UNIX) as s,
    ):
        s.settimeout(2)
        s.connect(str(home() / "run" / "ceph-mon.a.asok"))
        s.sendall(b'{"prefix": "mon_status"}\0')
        size = struct.unpack(">I", s.recv(4))[0]
        data = b""
        while len(data) < size:
            chunk = s.recv(size - len(data))
            if not chunk:
                break
            data += chunk
        return bool(json.loads(data).get("state") == "leader")
    return False


def init_pool() -> None:
    """The lab's RBD pools, each made once (8 PGs on the one OSD)."""
    pools = json.loads(ceph("osd", "pool", "ls", "-f", "json"))
    for name in (POOL, SECOND_POOL):
        if name not in pools:
            ceph("osd", "pool", "create", name, "8", "8", "replicated")
            run(["rbd", "-c", str(conf()), "pool", "init", name], timeout=120)


# ------------------------------------------------------------------ RGW users, bucket


def rgw(method: str, path: str, headers: dict[str, str] | None = None) -> Any:
    """One HTTP request to the lab's radosgw: (status, headers)."""
    conn = http.client.HTTPConnection(HOST, RGW_PORT, timeout=30)
    try:
        body = b"" if method in ("PUT", "POST") else None
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        resp.read()
        return resp.status, resp.headers
    finally:
        conn.close()


def rgw_answers() -> bool:
    try:
        return bool(rgw("GET", "/")[0] == 200)
    except OSError:
        return False


def rgw_user() -> dict[str, Any]:
    """The S3 user with its Swift subuser, made once; keys from RGW itself."""
    info = rgw_admin("user", "info", "--uid", RGW_UID)
    if "_exit" in info:
        info = rgw_admin("user", "create", "--uid", RGW_UID,
                         "--display-name", "storctl lab")  # fmt: skip
    if "_exit" not in info and not info.get("swift_keys"):
        info = rgw_admin("subuser", "create", "--uid", RGW_UID,
                         "--subuser", SWIFT_SUBUSER, "--access", "full",
                         "--key-type", "swift", "--gen-secret")  # fmt: skip
    if "_exit" in info:
        raise LabError(f"radosgw-admin could not make user {RGW_UID} ({info['_exit']})")
    return info


def ensure_bucket(swift_key: str) -> None:
    """The S3 bucket, made through Swift (same owner), and its data pool (a probe
    object written and deleted), so no pool is still being made after `up`."""
    auth = {"X-Auth-User": SWIFT_SUBUSER, "X-Auth-Key": swift_key}
    status, headers = rgw("GET", "/auth/1.0", auth)
    if status not in (200, 204):
        raise LabError(f"radosgw refused the lab's Swift key (HTTP {status})")
    h = {"X-Auth-Token": headers["X-Auth-Token"]}
    base = urllib.parse.urlsplit(headers["X-Storage-Url"]).path + f"/{BUCKET}"
    for method, path in (("PUT", base), ("PUT", f"{base}/.lab-probe"),
                         ("DELETE", f"{base}/.lab-probe")):  # fmt: skip
        status = rgw(method, path, h)[0]
        if status >= 300:
            raise LabError(f"radosgw: {method} {path}: HTTP {status}")


def sections(info: dict[str, Any]) -> dict[str, dict[str, Any]]:
    s3 = next(k for k in info["keys"] if k["user"] == RGW_UID)
    swift = next(k for k in info["swift_keys"] if k["user"] == SWIFT_SUBUSER)
    return {
        "lab-ceph": {
            "kind": "ceph",
            "conf": str(conf()),
            "keyring": str(admin_keyring()),
            "user": "admin",
            "mon_host": f"{HOST}:{MON_V2}",
            "pool": POOL,
            "second_pool": SECOND_POOL,
        },
        "lab-s3": {
            "kind": "s3",
            "endpoint": f"http://{HOST}:{RGW_PORT}",
            "access_key": s3["access_key"],
            "secret_key": s3["secret_key"],
            "bucket": BUCKET,
        },
        "lab-swift": {
            "kind": "swift",
            "auth_url": f"http://{HOST}:{RGW_PORT}/auth/1.0",
            "user": SWIFT_SUBUSER,
            "key": swift["secret_key"],
        },
    }


# ------------------------------------------------------------------ health


def health() -> tuple[bool, str]:
    """(healthy, why not): HEALTH_OK, one OSD up and in, every PG active+clean."""
    st = json.loads(ceph("status", "-f", "json"))
    checks = set(st["health"].get("checks", {}))
    osdmap = st["osdmap"].get("osdmap", st["osdmap"])
    pgmap = st["pgmap"]
    states = {s["state_name"]: s["count"] for s in pgmap.get("pgs_by_state", [])}
    clean = states.get("active+clean", 0)
    if checks - TOLERATED:
        return False, f"{st['health']['status']} {sorted(checks - TOLERATED)}"
    if osdmap.get("num_up_osds") != 1 or osdmap.get("num_in_osds") != 1:
        return False, "the OSD is not up and in"
    if not pgmap.get("num_pgs") or clean != pgmap["num_pgs"]:
        return False, f"PGs {states}"
    return True, "HEALTH_OK"


def wait_healthy(watch: list[Daemon], timeout: float = 180.0) -> None:
    why = ["no answer yet"]

    def healthy() -> bool:
        ok, why[0] = health()
        debug(why[0])
        return ok

    try:
        wait_until(healthy, timeout, "HEALTH_OK", watch, interval=0.5)
    except LabError as e:
        raise LabError(f"{e} (last: {why[0]})") from None


# ------------------------------------------------------------------ up, down, status


def is_up() -> bool:
    creds = read_credentials()
    return (
        all(d.alive() for d in daemons())
        and all(k in creds for k in ("lab-ceph", "lab-s3", "lab-swift"))
        and port_open(MON_V2)
        and port_open(RGW_PORT)
    )


def refuse_taken(*ports: int) -> None:
    for port in ports:
        if port_open(port):
            raise LabError(
                f"{HOST}:{port} is taken by a process this lab did not start "
                "(another checkout's lab?)"
            )


def up() -> dict[str, dict[str, Any]] | None:
    """Start what is down (first boot: make the cluster); None when all was up."""
    if is_up():
        return None
    asok = home() / "run" / "ceph-client.rgw.a.asok"
    if len(str(asok)) > 107:  # sun_path: the mon's would be missing, and waited on
        raise LabError(f"the lab folder is too deep for Ceph's admin sockets: {asok}")
    all_daemons = daemons()
    mon, mgr, osd, rgw = all_daemons
    if not mon.alive():
        refuse_taken(MON_V2, MON_V1)
    if not rgw.alive():
        refuse_taken(RGW_PORT)
    fresh = not (home() / "bootstrapped").exists()
    if fresh:
        stop_daemons(all_daemons)  # a half-made cluster from a killed first boot
        if home().exists():
            say("ceph: a first boot did not finish: starting over")
            remove()
        say(f"ceph: making a new cluster in {home()}")
        bootstrap()
    if not mon.alive():
        mon.start()
    wait_until(mon_is_leader, 30, "ceph-mon to lead", [mon], interval=0.05)
    if not mgr.alive():
        mgr.start()
    if fresh:
        osd_uuid = (home() / "bootstrap" / "osd-uuid").read_text().strip()
        ceph("osd", "new", osd_uuid, "0")
    if not osd.alive():
        if not fresh:
            # a killed OSD is still up in the map: clients would knock on its old
            # address until their 10 s op timeout. Down, they wait for the new one.
            ceph("osd", "down", "0")
        osd.start()
    if not rgw.alive():
        rgw.start()
    init_pool()
    debug("pool ready")
    wait_until(rgw_answers, 120, f"radosgw on {HOST}:{RGW_PORT}", all_daemons)
    debug("radosgw answers")
    creds = read_credentials()
    made = None
    if fresh or not all(k in creds for k in ("lab-ceph", "lab-s3", "lab-swift")):
        made = sections(rgw_user())
        creds = made
    ensure_bucket(creds["lab-swift"]["key"])
    wait_healthy(all_daemons)
    if fresh:
        (home() / "bootstrapped").write_text(time.strftime("%Y-%m-%dT%H:%M:%S\n"))
    return made


def down() -> None:
    """radosgw first: it unwatches its control objects on the OSD as it goes (with
    the OSD gone it hangs, and a killed one's watches delay the next start 30 s)."""
    mon, mgr, osd, rgw = daemons()
    stop_daemons([rgw])
    stop_daemons([osd, mgr])
    stop_daemons([mon])


def remove() -> None:
    if home().exists():
        shutil.rmtree(home())
