"""Object store locations: `s3://BUCKET[/PREFIX]?endpoint=...` and the checks shared
with Swift (the endpoint URL, the prefix, an object's key under it).

A location comes from an operator and names a server the agent will connect to, so
it is checked whole before anything reaches it: only `http`/`https` endpoints with a
host and nothing else (no credentials, query or fragment in the URL, no path), only
the query keys the provider takes, a prefix of plain path components. A key is
built from a store's prefix and a path a command carries (which anyone with ledger
access can shape), so every path is checked the way `paths.contained` checks a
file name: no `..`, no absolute path, only `[A-Za-z0-9_.+-]` in each component.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from dataclasses import dataclass

from ledger.errors import InvalidInput

_WHAT = "location"
# S3's bucket naming rules (lower case, digits, dots, hyphens; 3-63 characters).
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_CONTAINER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}")
_COMPONENT = re.compile(r"[A-Za-z0-9_.+-]+")
_REGION = re.compile(r"[a-z0-9][a-z0-9-]{0,40}")
_HOST = re.compile(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?")
_KEY_MAX = 1024  # S3's and Swift's limit on an object name, in bytes


@dataclass(frozen=True)
class S3Location:
    """A checked `s3://` location, and the canonical form the ledger records."""

    bucket: str
    prefix: str  # "" or "a/b", no leading or trailing slash
    endpoint: str  # "http(s)://host[:port]"
    region: str | None

    @property
    def canonical(self) -> str:
        path = f"/{self.prefix}" if self.prefix else ""
        query = f"?endpoint={self.endpoint}"
        if self.region:
            query += f"&region={self.region}"
        return f"s3://{self.bucket}{path}{query}"

    def key(self, path: str) -> str:
        return object_key(self.prefix, path)


def parse_s3(location: str) -> S3Location:
    """`s3://BUCKET[/PREFIX]?endpoint=http(s)://HOST[:PORT][&region=R]`, checked."""
    parts = _split(location, "s3")
    bucket = parts.netloc
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise InvalidInput(
            _WHAT,
            location,
            f"bucket {bucket!r} is not a valid S3 bucket name "
            "(3-63 lower-case letters, digits, '.', '-')",
        )
    query = _query(location, parts.query, required=("endpoint",), optional=("region",))
    region = query.get("region")
    if region is not None and not _REGION.fullmatch(region):
        raise InvalidInput(_WHAT, location, f"region {region!r} is not a region name")
    return S3Location(
        bucket=bucket,
        prefix=prefix_of(location, parts.path),
        endpoint=endpoint_in(location, query["endpoint"], path=False),
        region=region,
    )


@dataclass(frozen=True)
class SwiftLocation:
    """A checked `swift://` location (auth v1), and its canonical form."""

    container: str
    prefix: str
    auth: str  # "http(s)://host[:port]/auth/1.0"

    @property
    def canonical(self) -> str:
        path = f"/{self.prefix}" if self.prefix else ""
        return f"swift://{self.container}{path}?auth={self.auth}"

    def key(self, path: str) -> str:
        return object_key(self.prefix, path)


def parse_swift(location: str) -> SwiftLocation:
    """`swift://CONTAINER[/PREFIX]?auth=http(s)://HOST[:PORT]/auth/1.0`, checked."""
    parts = _split(location, "swift")
    container = parts.netloc
    if not _CONTAINER.fullmatch(container):
        raise InvalidInput(
            _WHAT, location, f"container {container!r} is not a valid container name"
        )
    query = _query(location, parts.query, required=("auth",), optional=())
    auth = endpoint_in(location, query["auth"], path=True)
    if urllib.parse.urlsplit(auth).path in ("", "/"):
        raise InvalidInput(
            _WHAT, location, "auth names no path (Swift's auth v1: .../auth/1.0)"
        )
    return SwiftLocation(container, prefix_of(location, parts.path), auth)


def _split(location: str, scheme: str) -> urllib.parse.SplitResult:
    if not location:
        raise InvalidInput(_WHAT, location, "empty")
    if any(not c.isprintable() or c.isspace() for c in location):
        raise InvalidInput(_WHAT, location, "control character or space in location")
    parts = urllib.parse.urlsplit(location)
    if parts.scheme.lower() != scheme:
        raise InvalidInput(_WHAT, location, f"not an {scheme}:// location")
    if parts.fragment or location.endswith("#"):
        raise InvalidInput(_WHAT, location, "a fragment ('#') is not accepted")
    if "@" in parts.netloc or ":" in parts.netloc:
        raise InvalidInput(
            _WHAT, location, "credentials or a port where a name was due"
        )
    return parts


def _query(
    location: str, query: str, *, required: tuple[str, ...], optional: tuple[str, ...]
) -> dict[str, str]:
    """The location's query as a dict: each key once, only the keys it takes."""
    try:
        pairs = urllib.parse.parse_qsl(
            query, keep_blank_values=True, strict_parsing=bool(query)
        )
    except ValueError:
        raise InvalidInput(_WHAT, location, "the query string is malformed") from None
    found: dict[str, str] = {}
    for key, value in pairs:
        if key not in required + optional:
            takes = ", ".join(required + optional)
            raise InvalidInput(
                _WHAT, location, f"unknown query key {key!r} (takes {takes})"
            )
        if key in found:
            raise InvalidInput(_WHAT, location, f"query key {key!r} given twice")
        found[key] = value
    for key in required:
        if not found.get(key):
            raise InvalidInput(
                _WHAT, location, f"missing ?{key}=http(s)://HOST[:PORT]..."
            )
    return found


def endpoint_in(location: str, url: str, *, path: bool) -> str:
    """`checked_endpoint` of the URL a location names, refused as the location."""
    try:
        return checked_endpoint(url, "endpoint", path=path)
    except InvalidInput as exc:
        why = exc.facts["why"]
        raise InvalidInput(_WHAT, location, f"endpoint {url}: {why}") from None


def checked_endpoint(url: str, what: str, *, path: bool) -> str:
    """An `http`/`https` URL with a host, no credentials, query or fragment, and
    (unless `path`) no path: refused before anything connects to it."""
    if any(not c.isprintable() or c.isspace() for c in url):
        raise InvalidInput(what, url, "control character or space in the URL")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidInput(what, url, "only http:// and https:// endpoints")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise InvalidInput(what, url, "credentials do not belong in the URL")
    if parts.query or "?" in url:
        raise InvalidInput(what, url, "a query string is not accepted in the URL")
    if parts.fragment or "#" in url:
        raise InvalidInput(what, url, "a fragment is not accepted in the URL")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise InvalidInput(what, url, "the port is not a number 1-65535") from None
    if not host:
        raise InvalidInput(what, url, "no host in the URL")
    if not _HOST.fullmatch(host) and not _is_ipv6(host):
        raise InvalidInput(what, url, f"{host!r} is not a host name or address")
    netloc = parts.netloc.lower()
    if port == 0:
        raise InvalidInput(what, url, "the port is not a number 1-65535")
    route = parts.path.rstrip("/")
    if route and not path:
        raise InvalidInput(what, url, "a path is not accepted in the endpoint")
    if route:
        route = "/" + "/".join(_components(url, route.lstrip("/"), what))
    return f"{parts.scheme.lower()}://{netloc}{route}"


def prefix_of(location: str, path: str) -> str:
    """The key prefix a location's path names: "" or `a/b`, checked."""
    path = urllib.parse.unquote(path).strip("/")
    if not path:
        return ""
    return "/".join(_components(location, path, _WHAT))


def object_key(prefix: str, path: str) -> str:
    """The object key of `path` (a command's install path) under `prefix`."""
    if not isinstance(path, str) or not path:
        raise InvalidInput("path", str(path), "empty name")
    if path.startswith("/"):
        raise InvalidInput("path", _shown(path), "absolute path where a name was due")
    key = "/".join([*([prefix] if prefix else []), *_components(path, path, "path")])
    if len(key.encode()) > _KEY_MAX:
        raise InvalidInput("path", _shown(path), "object key is too long")
    return key


def _components(value: str, path: str, what: str) -> list[str]:
    pieces = path.split("/")
    for piece in pieces:
        if piece in ("", ".", ".."):
            raise InvalidInput(what, _shown(value), f"component {piece!r} not allowed")
        if not _COMPONENT.fullmatch(piece) or piece.startswith("-"):
            raise InvalidInput(
                what, _shown(value), "characters outside [A-Za-z0-9_.+-]"
            )
    return pieces


def _shown(value: str) -> str:
    return value if len(value) <= 80 else value[:77] + "..."


def _is_ipv6(host: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(host), ipaddress.IPv6Address)
    except ValueError:
        return False
