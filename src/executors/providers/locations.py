"""How a pool's or a store's location is read: scheme, path, and the checks on both.

CloudStack's `createStoragePool` takes a URL (`nfs://server/export`,
`SharedMountPoint:///mnt/x`) and each provider's lifecycle parses it. Here a plain
absolute path counts as a `file` URL. These helpers are the shared part of the
providers' `validate`: each refuses with `InvalidInput` (exit 2, one line) before
anything is written.
"""

from __future__ import annotations

import os
import urllib.parse
from pathlib import PurePosixPath

from ledger.errors import InvalidInput

_WHAT = "location"


def scheme_of(location: str) -> str:
    """The URL scheme of `location`, lower case; `file` for a plain path."""
    if "://" not in location:
        return "file"
    return urllib.parse.urlsplit(location).scheme.lower()


def absolute_path(location: str) -> str:
    """The absolute path a plain path or a `file://` URL names, canonical.

    Refused: control characters, a query string or fragment (`?`, `#`: nothing
    here takes options in its location), a `file://` URL naming another host, and
    a relative path (it would mean whatever directory the CLI ran in).
    """
    if not location:
        raise InvalidInput(_WHAT, location, "empty")
    if any(not c.isprintable() for c in location):
        raise InvalidInput(_WHAT, location, "control character in location")
    if "://" in location:
        parts = urllib.parse.urlsplit(location)
        if parts.query or parts.fragment or location.endswith(("?", "#")):
            raise InvalidInput(_WHAT, location, "a query string is not accepted here")
        if parts.scheme.lower() != "file":
            raise InvalidInput(_WHAT, location, f"not a path: {parts.scheme}:// URL")
        if parts.netloc not in ("", "localhost"):
            raise InvalidInput(_WHAT, location, "file:// must name a local path")
        path = urllib.parse.unquote(parts.path)
    else:
        if "?" in location or "#" in location:
            raise InvalidInput(
                _WHAT, location, "a query string ('?' or '#') is not accepted here"
            )
        path = location
    if not path.startswith("/"):
        raise InvalidInput(_WHAT, location, "not an absolute path")
    return str(PurePosixPath(path))


def existing_directory(location: str) -> str:
    """`absolute_path`, refused unless a directory is there now (the mount point)."""
    path = absolute_path(location)
    if not os.path.isdir(path):
        why = "not a directory" if os.path.exists(path) else "no such directory"
        raise InvalidInput(_WHAT, location, f"{why} (mount it first)")
    return path


def directory_place(location: str, credentials: str | None) -> str:
    """`Provider.place` of a directory: its real path (symlinks and `..`
    resolved), so `/srv/gold`, `/srv/x/../gold` and a link to it are one place.
    Every host's agent reads the path on the machine it runs on, so two pools
    on one directory are one set of files whatever their scope or host."""
    return "file://" + os.path.realpath(absolute_path(location))
