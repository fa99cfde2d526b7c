"""An iSCSI pool's location (the portal), its credentials profile, and the check that
tgtd answers before the pool is written.

The location is the portal initiators log in to, `iscsi://HOST:PORT` (3260 when no
port is given): no path, no query, no user or password, since every volume has its
own target and its own CHAP secret (`layout`). The credentials profile (a table of
`$STORCTL_CREDENTIALS`, e.g. the lab's `[lab-iscsi]`) says what the executor needs
besides, and holds no secret itself:

- `control_port`: tgtd's control port (`tgtd -C N`, `tgtadm -C N`);
- `portal`: `HOST:PORT`, which must be the location's (a profile for another tgtd
  is refused, not silently used);
- `lun_dir`: the directory the LUN files (and the per-volume CHAP files) live in,
  on the host that runs tgtd.
"""

from __future__ import annotations

import socket
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from executors.credentials import resolve
from executors.providers.iscsi import tgtadm
from executors.runner import CommandTimedOut, SubprocessRunner
from ledger.commands import PrimaryDataStoreTO
from ledger.errors import InvalidInput

DEFAULT_PORT = 3260
CHECK_TIMEOUT = 10.0
_WHAT = "location"


def validate(location: str) -> str:
    """`iscsi://HOST:PORT`, canonical (host lower case, the port always given)."""
    if not location:
        raise InvalidInput(_WHAT, location, "empty")
    if any(not c.isprintable() for c in location):
        raise InvalidInput(_WHAT, location, "control character in location")
    parts = urllib.parse.urlsplit(location)
    if parts.scheme.lower() != "iscsi":
        raise InvalidInput(_WHAT, location, "not an iscsi:// URL")
    if parts.query or parts.fragment or location.endswith(("?", "#")):
        raise InvalidInput(_WHAT, location, "a query string is not accepted here")
    if "@" in parts.netloc:
        raise InvalidInput(
            _WHAT,
            location,
            "no user or password in the location: each volume gets its own CHAP "
            "secret, kept by the executor",
        )
    if parts.path not in ("", "/"):
        raise InvalidInput(
            _WHAT, location, "no path: the location is the portal, iscsi://HOST:PORT"
        )
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise InvalidInput(
            _WHAT, location, "the port is not a number 1-65535"
        ) from None
    host = parts.hostname
    if not host:
        raise InvalidInput(_WHAT, location, "no host: iscsi://HOST:PORT")
    return f"iscsi://{_bracketed(host)}:{port}"


def portal_of(location: str) -> str:
    """`HOST:PORT` of a canonical location (libiscsi's and tgtd's portal form)."""
    return validate(location).removeprefix("iscsi://")


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@dataclass(frozen=True)
class Profile:
    """What the executor reads from the pool's credentials (no secret among it)."""

    control_port: int
    portal: str
    lun_dir: Path


def parse_profile(found: Mapping[str, Any], name: str = "credentials") -> Profile:
    """The profile's keys checked; refused naming the key, never a value's secret."""
    port = found.get("control_port")
    if isinstance(port, str) and port.isdigit():
        port = int(port)  # from the environment, every value is a string
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port < 65536:
        raise InvalidInput("credentials", name, "control_port must be a port number")
    portal = found.get("portal")
    if not isinstance(portal, str) or not portal:
        raise InvalidInput("credentials", name, "portal must be HOST:PORT")
    lun_dir = found.get("lun_dir")
    if not isinstance(lun_dir, str) or not lun_dir.startswith("/"):
        raise InvalidInput("credentials", name, "lun_dir must be an absolute path")
    return Profile(port, portal_of(f"iscsi://{portal}"), Path(lun_dir))


def profile_of(store: PrimaryDataStoreTO) -> Profile:
    """The profile a pool's commands name, resolved now (never recorded)."""
    if not store.credentials:
        raise InvalidInput(
            "pool",
            store.name,
            "an iSCSI pool needs credentials (pool add --credentials)",
        )
    profile = parse_profile(resolve(store.credentials), store.credentials)
    if profile.portal != portal_of(store.path):
        raise InvalidInput(
            "credentials",
            store.credentials,
            f"its portal {profile.portal} is not the pool's {portal_of(store.path)}",
        )
    if not profile.lun_dir.is_dir():
        raise InvalidInput(
            "credentials", store.credentials, f"lun_dir {profile.lun_dir} is missing"
        )
    return profile


def check(location: str, credentials: Mapping[str, Any]) -> None:
    """tgtd answers on the profile's control port, its portal is the location's and
    takes connections, and the LUN directory is there; else one line why not."""
    profile = parse_profile(credentials)
    if profile.portal != portal_of(location):
        raise InvalidInput(
            _WHAT, location, f"the credentials name another portal, {profile.portal}"
        )
    if not profile.lun_dir.is_dir():
        raise InvalidInput(
            _WHAT, location, f"the credentials' lun_dir {profile.lun_dir} is missing"
        )
    argv = tgtadm.system_argv(profile.control_port)
    try:
        done = SubprocessRunner().run(argv, timeout=CHECK_TIMEOUT)
    except CommandTimedOut:
        raise InvalidInput(
            _WHAT,
            location,
            f"tgtd did not answer on control port {profile.control_port} "
            f"in {CHECK_TIMEOUT:g} s",
        ) from None
    except OSError as exc:  # tgtadm is not installed
        raise InvalidInput(
            _WHAT, location, f"cannot run tgtadm: {exc.strerror}"
        ) from None
    if done.returncode != 0:
        why = tgtadm.failure_line(argv, done.returncode, done.stderr, done.stdout)
        raise InvalidInput(
            _WHAT,
            location,
            f"tgtd does not answer on control port {profile.control_port}: {why}",
        )
    if "iscsi: ready" not in done.stdout:
        raise InvalidInput(_WHAT, location, "tgtd's iscsi driver is not ready")
    host, _, port = profile.portal.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=3).close()
    except OSError as exc:
        raise InvalidInput(
            _WHAT, location, f"the portal takes no connection: {exc.strerror or exc}"
        ) from None
