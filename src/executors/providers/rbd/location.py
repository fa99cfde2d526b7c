"""Where an RBD pool is: `rbd://USER@MON_HOST[:PORT]/POOL`, checked and canonical.

CloudStack records an RBD pool as a monitor address, a Ceph user and a pool name
(`rbd://user:secret@monitor/pool` in its API). storctl keeps the same three facts
in the URL but never the secret: the cephx key lives in the credentials the pool
names (`--credentials NAME`), so a URL with a password, a query string or a
fragment is refused, with one line that names the right form and never repeats
what stood where the password was.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from dataclasses import dataclass

from ledger.errors import InvalidInput

SCHEME = "rbd"
FORM = "expected rbd://USER@MON_HOST[:PORT]/POOL"
#: Ceph's names for users, pools and images; a leading '-' would read as an option.
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")
_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9-]+)*")


@dataclass(frozen=True)
class RbdLocation:
    """The three facts of a pool's URL: who connects, to which monitor, which pool."""

    user: str
    host: str
    port: int | None
    pool: str

    @property
    def mon_host(self) -> str:
        """The monitor address as Ceph's `mon_host` takes it (`[v6]:port` too)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"

    def url(self) -> str:
        return f"{SCHEME}://{self.user}@{self.mon_host}/{self.pool}"


def parse(location: str) -> RbdLocation:
    """The URL's facts, or `InvalidInput` naming the right form."""
    if not location:
        raise InvalidInput("location", location, f"empty; {FORM}")
    if any(not c.isprintable() for c in location):
        raise InvalidInput(
            "location", _shown(location), "control character in location"
        )
    try:
        parts = urllib.parse.urlsplit(location)
    except ValueError as exc:  # e.g. a bracketed host that is no IPv6 address
        raise InvalidInput(
            "location", _shown(location), f"bad IPv6 monitor address ({exc}); {FORM}"
        ) from None
    if parts.scheme.lower() != SCHEME:
        raise InvalidInput("location", _shown(location), f"not an rbd:// URL; {FORM}")
    if parts.query or parts.fragment or "?" in location or "#" in location:
        raise InvalidInput(
            "location", _shown(location), f"a query string is not accepted here; {FORM}"
        )
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if ":" in userinfo:
        raise InvalidInput(
            "location",
            _shown(location),
            f"no password in the URL: the key goes in --credentials NAME; {FORM}",
        )
    user = urllib.parse.unquote(userinfo)
    if not at or not _NAME.fullmatch(user):
        raise InvalidInput("location", location, f"names no Ceph user; {FORM}")
    host, port = _host_port(location, hostport)
    pool = parts.path.strip("/")
    if not _NAME.fullmatch(pool):
        why = "names no pool" if not pool else f"{pool!r} is not one Ceph pool name"
        raise InvalidInput("location", location, f"{why}; {FORM}")
    return RbdLocation(user, host, port, pool)


def validate(location: str) -> str:
    """`Provider.validate`: the canonical URL (host lower case, no trailing '/')."""
    return parse(location).url()


def image_name(name: str, what: str = "image") -> str:
    """An RBD image or snapshot name from a command, refused unless plain: no '/',
    '@' or ':' (they would name another pool, a snapshot, or an option to qemu)."""
    if not _NAME.fullmatch(name or "") or len(name) > 250:
        raise InvalidInput(f"rbd {what} name", _shown(name), "not a plain Ceph name")
    return name


def _host_port(location: str, hostport: str) -> tuple[str, int | None]:
    host, port_text = hostport, ""
    if hostport.startswith("["):
        host, _, rest = hostport[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise InvalidInput("location", location, f"bad monitor address; {FORM}")
        port_text = rest[1:]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise InvalidInput(
                "location", location, f"bad IPv6 monitor address; {FORM}"
            ) from None
    elif ":" in hostport:
        host, _, port_text = hostport.rpartition(":")
    if not host or (not hostport.startswith("[") and not _HOST.fullmatch(host)):
        raise InvalidInput("location", location, f"names no monitor host; {FORM}")
    if not port_text and not hostport.endswith(":"):
        return host.lower(), None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise InvalidInput("location", location, f"bad monitor port; {FORM}")
    return host.lower(), int(port_text)


def _shown(value: str) -> str:
    """The URL as an error may repeat it: any password replaced, kept short."""
    scheme, sep, rest = value.partition("://")
    if sep:
        netloc, slash, path = rest.partition("/")
        userinfo, at, hostport = netloc.rpartition("@")
        if at and ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
            value = f"{scheme}://{userinfo}@{hostport}{slash}{path}"
    value = "".join(c if c.isprintable() else "?" for c in value)
    return value if len(value) <= 120 else value[:117] + "..."
