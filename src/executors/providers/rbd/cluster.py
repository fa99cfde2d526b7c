"""How a command reaches one pool's Ceph cluster: argv for `rbd`, `ceph` and
qemu-img's rbd driver, and Ceph's error text turned into one line.

CloudStack's KVM agent hands libvirt a secret (`virsh secret-define`) and a
monitor list for each RBD pool. Here a `Cluster` holds the same facts as files:
the pool's URL gives the user, the monitor and the pool; the credentials it names
give a keyring file (`keyring = "/path"`) or the cephx key itself (`key = "AQ..."`,
written to a private 0600 keyring for the command's duration and removed after),
and optionally a `conf` file, a `connect_timeout` (seconds to reach a monitor,
default 10) and an `op_timeout` (seconds one OSD operation may wait, default 60).
The monitor of the URL always wins over the conf's (`-m`), so a pool is where its
URL says.

Everything here is pure but `connect` (which resolves and writes the keyring):
the argv builders never take a secret, only paths; and every line shown to an
operator passes through `redact`, so no key reaches an answer, an event or a log.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from executors.credentials import resolve
from executors.providers.rbd.location import RbdLocation, image_name, parse
from ledger.commands import PrimaryDataStoreTO
from ledger.errors import InvalidInput

RBD = "rbd"
CEPH = "ceph"
QEMU_IMG = "qemu-img"
#: Seconds a client waits for a monitor before giving up (Ceph's own default is
#: 300: a pool whose monitor is gone would hold every command five minutes).
CONNECT_TIMEOUT = 10
#: Seconds one OSD operation may wait. Ceph holds writes to a full pool until
#: space comes back (a copy would hang its whole wait, hours); with this, the
#: write fails with ETIMEDOUT and the command answers.
OP_TIMEOUT = 60
NO_CONF = "/dev/null"  # no conf file: the URL's monitor and the keyring suffice
_KEY = re.compile(r"[A-Za-z0-9+/]{20,}={0,2}")
_CEPHX_KEY = re.compile(r"AQ[A-Za-z0-9+/]{30,}={0,2}")
_KEY_LINE = re.compile(r"(key\s*=\s*)\S+", re.IGNORECASE)
# `2026-12-08T02:06:01.842+0000 7fa47b68d380  0 ` or `-1 `: Ceph's log prefix
_LOG_PREFIX = re.compile(r"^\d{4}-\d\d-\d\dT\S+\s+[0-9a-f]+\s+-?\d+\s+")


@dataclass(frozen=True)
class Cluster:
    """One pool's cluster as the tools are told about it: paths, never secrets."""

    location: RbdLocation
    keyring: str
    conf: str = NO_CONF
    connect_timeout: int = CONNECT_TIMEOUT
    op_timeout: int = OP_TIMEOUT

    @property
    def pool(self) -> str:
        return self.location.pool

    def _connection(self) -> list[str]:
        return ["-c", self.conf, "--id", self.location.user, "--keyring",
                self.keyring, "-m", self.location.mon_host]  # fmt: skip

    def rbd(self, *args: str) -> list[str]:
        """`rbd` on this cluster; JSON output is the caller's `--format json`."""
        return [RBD, *self._connection(),
                f"--client_mount_timeout={self.connect_timeout}",
                f"--rados_osd_op_timeout={self.op_timeout}", *args]  # fmt: skip

    def ceph(self, *args: str) -> list[str]:
        return [CEPH, *self._connection(),
                "--connect-timeout", str(self.connect_timeout), *args]  # fmt: skip

    def spec(self, image: str, snapshot: str | None = None) -> str:
        """`POOL/IMAGE[@SNAP]` as `rbd` takes it."""
        name = f"{self.pool}/{image_name(image)}"
        return (
            name if snapshot is None else f"{name}@{image_name(snapshot, 'snapshot')}"
        )

    def qemu(self, image: str, snapshot: str | None = None) -> str:
        """qemu's rbd filename: `rbd:POOL/IMAGE[@SNAP]:conf=..:id=..:keyring=..`,
        each value's `\\` and `:` escaped as qemu's parser wants."""
        options = {
            "conf": self.conf,
            "id": self.location.user,
            "keyring": self.keyring,
            "mon_host": self.location.mon_host,
            "client_mount_timeout": str(self.connect_timeout),
            "rados_osd_op_timeout": str(self.op_timeout),
        }
        tail = "".join(f":{k}={_escape(v)}" for k, v in options.items())
        return f"rbd:{self.spec(image, snapshot)}{tail}"

    def shown(self, image: str, snapshot: str | None = None) -> str:
        """How an image is named to an operator: `rbd:POOL/IMAGE[@SNAP]`."""
        return f"rbd:{self.spec(image, snapshot)}"


def convert_argv(
    source: str, src_fmt: str, dest: str, dest_fmt: str, *, existing: bool = False
) -> list[str]:
    """`qemu-img convert` between a file and an RBD image (either way, or both).

    Into RBD it writes out of order with 16 coroutines (`-W -m 16`): an RBD
    image is a set of objects written in parallel, and in-order writes leave
    the OSDs idle (1 GiB: 10.3 s in order, 6.7 s out of order). `existing`
    (`-n`) writes into an image that is already there (a revert).
    """
    for name, fmt in ((source, src_fmt), (dest, dest_fmt)):
        _check_endpoint(name)
        if fmt not in ("raw", "qcow2"):
            raise ValueError(f"unknown qemu image format {fmt!r}")
    argv = [QEMU_IMG, "convert", "-p", "-f", src_fmt, "-O", dest_fmt]
    if dest.startswith("rbd:"):
        argv += ["-W", "-m", "16"]
    if existing:
        argv.append("-n")
    return [*argv, source, dest]


def info_argv(image: str) -> list[str]:
    """`qemu-img info` of an RBD image or snapshot (always raw on RBD)."""
    _check_endpoint(image)
    return [QEMU_IMG, "info", "--output=json", "-f", "raw", image]


def _check_endpoint(name: str) -> None:
    """A file path (absolute: nothing read as an option or a protocol) or an
    rbd filename built by `Cluster.qemu`."""
    if "\x00" in name or not (name.startswith("/") or name.startswith("rbd:")):
        raise ValueError(f"unsafe image name {name[:80]!r}")


def _escape(value: str) -> str:
    if any(not c.isprintable() for c in value):
        raise ValueError("control character in an rbd option")
    return value.replace("\\", "\\\\").replace(":", "\\:")


@contextlib.contextmanager
def connect(store: PrimaryDataStoreTO) -> Iterator[Cluster]:
    """The cluster of an RBD pool, its credentials resolved for this command."""
    location = parse(store.path)
    if not store.credentials:
        raise InvalidInput(
            "pool", store.name, "an rbd pool needs credentials (pool add --credentials)"
        )
    with cluster_for(location, resolve(store.credentials), store.credentials) as c:
        yield c


@contextlib.contextmanager
def cluster_for(
    location: RbdLocation, credentials: Mapping[str, Any], name: str = "given"
) -> Iterator[Cluster]:
    """`Cluster` from resolved credentials; a `key` lives in a private keyring
    file only while the block runs."""
    conf = str(credentials.get("conf") or NO_CONF)
    timeouts = (
        _timeout(credentials.get("connect_timeout"), "connect_timeout", name),
        _timeout(credentials.get("op_timeout"), "op_timeout", name),
    )
    keyring = credentials.get("keyring")
    key = credentials.get("key")
    if keyring:
        yield Cluster(location, str(keyring), conf, *timeouts)
        return
    if not key:
        raise InvalidInput(
            "credentials", name, "an rbd pool's credentials need keyring or key"
        )
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise InvalidInput("credentials", name, "key is not a cephx key (base64)")
    folder = tempfile.mkdtemp(prefix="storctl-ceph-")  # 0700
    try:
        path = Path(folder) / "keyring"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        with os.fdopen(os.open(path, flags, 0o600), "w") as out:
            out.write(f"[client.{location.user}]\n\tkey = {key}\n")
        yield Cluster(location, str(path), conf, *timeouts)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _timeout(value: object, key: str, name: str) -> int:
    if value is None or value == "":
        return CONNECT_TIMEOUT if key == "connect_timeout" else OP_TIMEOUT
    try:
        seconds = int(str(value))
    except ValueError:
        seconds = 0
    if not 0 < seconds <= 3600:
        raise InvalidInput("credentials", name, f"{key}: 1 to 3600 seconds")
    return seconds


def redact(text: str) -> str:
    """`text` with anything that looks like a cephx key replaced."""
    return _CEPHX_KEY.sub("<key>", _KEY_LINE.sub(r"\1<key>", text))


def failure_line(stderr: str, *, shown: Mapping[str, str] | None = None) -> str:
    """Ceph's own words for a failure, on one line.

    `rbd` says what failed in lines of its own (`rbd: clone error: (2) No such
    file or directory`), after librbd's log lines; those are kept, in order.
    Without them, the last line that is not progress. qemu's long rbd filenames
    are replaced by their `shown` forms.
    """
    lines = [_LOG_PREFIX.sub("", ln).strip() for ln in stderr.splitlines()]
    lines = [ln for ln in lines if ln and "% complete" not in ln]
    ours = [ln.removeprefix("rbd: ") for ln in lines if ln.startswith("rbd: ")]
    if ours:
        text = "; ".join(dict.fromkeys(ours))
    else:
        text = lines[-1].removeprefix("qemu-img: ") if lines else "no message"
    for long, short in (shown or {}).items():
        text = text.replace(long, short)
    return redact(" ".join(text.split()))
