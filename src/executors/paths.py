"""Root containment: how an agent turns a store and a name into a file on disk.

CloudStack's KVM agent joins `/mnt/<pool uuid>` with `volumes.path` and trusts it. Here
every name that reaches the file system passes through `contained`, because names
arrive in commands (and so in stored events) that anyone with ledger access can shape.
"""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path

from ledger.commands import ImageStoreTO, PrimaryDataStoreTO
from ledger.errors import InvalidInput

# Store names are built from uuids and CloudStack's install paths
# (`template/tmpl/<id>/<uuid>.qcow2`); nothing legitimate needs more than this.
_SAFE_COMPONENT = re.compile(r"[A-Za-z0-9_.+-]+")
_NAME_MAX = 255  # bytes in one component on Linux file systems
_PATH_MAX = 4096


def contained(root: Path, *parts: str) -> Path:
    """`root / parts...`, refused unless it stays inside `root` once symlinks resolve.

    A part may hold several `/`-separated components (an install path); each is
    checked on its own, then the joined result is resolved and compared to the root,
    which catches a symlink planted inside the store that points out of it.
    """
    if not parts:
        raise InvalidInput("path", "", "no name given")
    components: list[str] = []
    for part in parts:
        components.extend(_components(part))
    candidate = root.joinpath(*components)
    if len(str(candidate).encode()) > _PATH_MAX:
        raise InvalidInput("path", _shown(str(candidate)), "path is too long")
    base = root.resolve()
    resolved = candidate.resolve(strict=False)
    if not resolved.is_relative_to(base) or resolved == base:
        raise InvalidInput("path", _shown("/".join(parts)), f"escapes the root {base}")
    return resolved


def _components(part: str) -> list[str]:
    if not isinstance(part, str) or part == "":
        raise InvalidInput("path", str(part), "empty name")
    if "\x00" in part or "\n" in part or "\r" in part:
        raise InvalidInput("path", _shown(part), "control character in name")
    if part.startswith("/"):
        raise InvalidInput("path", _shown(part), "absolute path where a name was due")
    pieces = part.split("/")
    for piece in pieces:
        if piece in ("", ".", ".."):
            raise InvalidInput("path", _shown(part), f"component {piece!r} not allowed")
        if len(piece.encode()) > _NAME_MAX:
            raise InvalidInput("path", _shown(part), "name is too long")
        if not _SAFE_COMPONENT.fullmatch(piece) or piece.startswith("-"):
            raise InvalidInput(
                "path", _shown(part), "characters outside [A-Za-z0-9_.+-]"
            )
    return pieces


def _shown(value: str) -> str:
    """Keep error lines readable when the hostile value is huge."""
    return value if len(value) <= 80 else value[:77] + "..."


def store_root(store: PrimaryDataStoreTO | ImageStoreTO | None) -> Path:
    """The directory a store lives in: a pool's `path`, an image store's `uri`."""
    if not isinstance(store, ImageStoreTO):
        return pool_root(store)
    uri = store.uri
    if uri.startswith("file://"):
        parsed = urllib.parse.urlparse(uri)
        if parsed.netloc not in ("", "localhost"):
            raise InvalidInput("image store uri", uri, "file:// must name a local path")
        uri = urllib.parse.unquote(parsed.path)
    elif "://" in uri:
        raise InvalidInput("image store uri", uri, "only local directories supported")
    return _existing_dir(Path(uri), store.name)


def pool_root(store: PrimaryDataStoreTO | ImageStoreTO | None) -> Path:
    """A primary pool's directory (CloudStack's `/mnt/<pool uuid>` mount point)."""
    if not isinstance(store, PrimaryDataStoreTO):
        raise InvalidInput(
            "data store", str(store and store.name), "not a primary pool"
        )
    return _existing_dir(Path(store.path), store.name)


def _existing_dir(root: Path, name: str) -> Path:
    if not root.is_absolute():
        raise InvalidInput("store root", str(root), "not an absolute path")
    if not root.is_dir():
        raise InvalidInput(
            "store root", str(root), f"store {name} has no such directory"
        )
    return root
