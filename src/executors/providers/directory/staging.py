"""Staged writes shared by the directory driver's modules: temp name, rename, clean-up.

CloudStack's `KVMStorageProcessor` writes straight into the final name and leaves a
half-written file behind when `qemu-img` dies. Here every output is written under a
hidden sibling (`.<name>.part`) and renamed into place only once it is complete, so a
file at its final name is always a finished one and a retried command can trust it.
Directories made for an output (`snapshots/<volume uuid>`, `template/tmpl/<uuid>`)
are removed again when the write fails, so a failure leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def staged(final: Path) -> Iterator[Path]:
    """A temporary sibling of `final`, renamed over it only if the block succeeds."""
    tmp = temp_for(final)
    remove(tmp)
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        remove(tmp)
        raise


@contextlib.contextmanager
def parent_dirs(final: Path, root: Path) -> Iterator[None]:
    """Make `final`'s missing parents under `root`; remove them if the block fails."""
    base = root.resolve()
    created = [
        p
        for p in final.parents
        if p != base and p.is_relative_to(base) and not p.exists()
    ]
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        for directory in created:  # innermost first
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise


def temp_for(final: Path) -> Path:
    """The hidden sibling a staged write of `final` goes through."""
    return final.with_name(f".{final.name}.part")


def remove(path: Path) -> None:
    """Unlink `path`; already gone is fine."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
