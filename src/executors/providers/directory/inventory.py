"""A directory pool's inventory: every file under its root, read with `qemu-img info`.

The directory providers (`filesystem`, `sharedmountpoint`, `networkfilesystem`)
keep a pool as files under one root: volumes and template copies named by their
paths, snapshots under `snapshots/`, staged writes as `.<name>.part` next to the
name they become. Listing is a walk that never follows a link; only a claimed file
is read, with `qemu-img info -f FORMAT -U` in the format the ledger recorded (an
argv list through the injected `Runner`, never a shell), because the format is the
ledger's to say and reading an unclaimed file's header would guess it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from executors import qemu
from executors.providers.inventory import Claim, Found, Inventory
from executors.runner import CommandTimedOut, Runner
from ledger.commands import PrimaryDataStoreTO
from ledger.errors import InvalidInput

INFO_TIMEOUT = 60.0  # seconds for one `qemu-img info`


def files_under(root: Path) -> list[str]:
    """Every non-directory entry under `root`, relative, without following links."""
    found: list[str] = []
    for directory, dirs, files in os.walk(root, followlinks=False):
        here = Path(directory)
        for name in files:
            found.append(str((here / name).relative_to(root)))
        for name in dirs:  # a symlink to a directory is listed, never entered
            if (here / name).is_symlink():
                found.append(str((here / name).relative_to(root)))
    return sorted(found)


def temp_target(rel: str) -> str | None:
    """`a/.x.part` -> `a/x` (the final name a staged write was making), else None."""
    path = Path(rel)
    name = path.name
    if name.startswith(".") and name.endswith(".part") and len(name) > len(".part") + 1:
        return str(path.with_name(name[1 : -len(".part")]))
    return None


@dataclass
class DirectoryInventory(Inventory):
    """The files under `root` (resolved), keyed by their relative paths."""

    root: Path = Path("/")
    runner: Runner | None = None

    def key(self, path: str) -> str:
        return os.path.normpath(path)

    def expected_backing(self, base: str | None) -> str | None:
        return str((self.root / base).resolve()) if base else None

    def inspect(self, item: Found, claim: Claim) -> Found:
        """The claimed file's virtual size and backing file (`qemu-img info`)."""
        path = self.root / item.path
        if path.is_symlink() or not path.is_file():
            return item.but(unreadable=("a regular file", "not one"))
        try:
            info = self.info(path, claim.fmt)
        except ValueError as exc:
            return item.but(unreadable=(f"a {claim.fmt} image", str(exc)))
        backing = None
        if info.backing_file is not None:
            backing = str((path.parent / info.backing_file).resolve())
        return item.but(
            size=info.virtual_size, backing=backing, backing_shown=info.backing_file
        )

    def info(self, path: Path, fmt: str) -> qemu.ImageInfo:
        if self.runner is None:
            raise ValueError("no runner to read the file with")
        argv = qemu.info_argv(path, qemu.qemu_format(fmt))
        try:
            done = self.runner.run(argv, timeout=INFO_TIMEOUT)
        except CommandTimedOut as exc:
            raise ValueError(str(exc)) from exc
        if done.returncode != 0:
            lines = [x for x in done.stderr.splitlines() if x.strip()]
            raise ValueError(lines[-1] if lines else f"exit {done.returncode}")
        return qemu.parse_info(done.stdout)


def scan(root: Path, runner: Runner) -> DirectoryInventory:
    """Every file under `root`; `FileNotFoundError` if it is not a directory."""
    if not root.is_dir():
        raise FileNotFoundError(f"pool directory {root} does not exist")
    base = root.resolve()
    inventory = DirectoryInventory(noun="file", root=base, runner=runner)
    for rel in files_under(base):
        inventory.add(
            Found(
                rel, "file", temp_of=temp_target(rel), description=describe(base / rel)
            )
        )
    return inventory


def list_pool(
    store: PrimaryDataStoreTO, credentials: Mapping[str, Any], runner: Runner
) -> DirectoryInventory:
    """`Provider.inventory` of the directory providers: the pool's directory,
    which must be mounted on the machine that runs reconcile."""
    root = Path(store.path)
    if not root.is_dir():
        raise InvalidInput(
            "pool", store.name, f"its directory {root} does not exist here"
        )
    return scan(root, runner)


def describe(path: Path) -> str:
    """How an unclaimed file is shown: its size, or what it is instead."""
    try:
        st = path.lstat()
    except OSError as exc:
        return exc.strerror or "unreadable"
    if stat.S_ISLNK(st.st_mode):
        return "a symbolic link"
    return f"{st.st_size} bytes"
