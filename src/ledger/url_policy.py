"""Which template URLs the cloud may read: CloudStack's rules, checked before anything
is written or connects.

CloudStack downloads templates from `http` and `https` only, and refuses addresses
inside the cloud's own networks unless `secstorage.allowed.internal.sites` lists
them: a template URL is an operator's input that the management side then fetches,
and `file:///etc/passwd` or `http://127.0.0.1:5432/` would read the host or its
services into secondary storage, where any VM deployed from it can read them.

Here: `http`, `https`, and `file` only under a directory that
`template.url.allowed.roots` lists (none by default); no user or password in a URL
(it would be recorded in an event); an address literal in a loopback, link-local,
private, reserved or multicast range refused unless an allowed site names it. A
host *name* is resolved at the edge (`executors.providers.url_check`, before anything is
written) and again by the agent at download time, redirects included. Pure.
"""

from __future__ import annotations

import ipaddress
import posixpath
import urllib.parse
from collections.abc import Iterable

from ledger.errors import InvalidInput

ROOTS_KEY = "template.url.allowed.roots"
SITES_KEY = "secstorage.allowed.internal.sites"


def split_list(text: str) -> list[str]:
    """A configuration value listing items with commas."""
    return [item.strip() for item in str(text or "").split(",") if item.strip()]


def check_template_url(url: str, roots: Iterable[str], sites: Iterable[str]) -> None:
    """Refuse (exit 2, one line) a template URL the cloud must not read."""
    try:
        parsed = urllib.parse.urlsplit(url)
    except ValueError:
        raise InvalidInput("url", url, "not a URL") from None
    scheme = parsed.scheme.lower()
    if scheme not in ("http", "https", "file"):
        raise InvalidInput("url", url, "expected http://, https:// or file://")
    if parsed.username is not None or parsed.password is not None:
        # never echo what may be a password: the URL is shown without it
        shown = urllib.parse.urlunsplit(parsed._replace(netloc=parsed.hostname or ""))
        raise InvalidInput(
            "url", shown, "no user or password in a URL (it would be recorded)"
        )
    if scheme == "file":
        check_file_path(url, parsed, roots)
        return
    host = parsed.hostname
    if not host:
        raise InvalidInput("url", url, "names no host")
    if internal_literal(host) and not allowed_site(host, sites):
        raise InvalidInput(
            "url",
            url,
            f"{host} is an internal address; list it in {SITES_KEY} to allow it",
        )


def check_file_path(
    url: str, parsed: urllib.parse.SplitResult, roots: Iterable[str]
) -> None:
    if parsed.netloc not in ("", "localhost"):
        raise InvalidInput("url", url, "a file:// URL names a local path")
    path = urllib.parse.unquote(parsed.path)
    if not path.startswith("/") or posixpath.normpath(path) != path.rstrip("/"):
        raise InvalidInput("url", url, "a file:// URL names an absolute, plain path")
    allowed = [posixpath.normpath(r) for r in roots if r.startswith("/")]
    if not any(path == r or path.startswith(r.rstrip("/") + "/") for r in allowed):
        where = ", ".join(allowed) or "no directory (the default)"
        raise InvalidInput(
            "url", url, f"file:// is allowed only under {ROOTS_KEY}: {where}"
        )


def internal_literal(host: str) -> bool:
    """Whether `host` is an address literal (or `localhost`) inside the cloud."""
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return is_internal(address)


def is_internal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return bool(
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
    )


def allowed_site(host: str, sites: Iterable[str]) -> bool:
    """Whether `host` (a name or an address) is one of the allowed internal sites:
    a host name, an address, or a network in CIDR form."""
    name = host.lower().rstrip(".").strip("[]")
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = (
            ipaddress.ip_address(name)
        )
    except ValueError:
        address = None
    for site in sites:
        site = site.strip().lower()
        if site == name:
            return True
        if address is not None and "/" in site:
            try:
                if address in ipaddress.ip_network(site, strict=False):
                    return True
            except ValueError:
                continue
    return False
