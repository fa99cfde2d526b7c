"""The KVM agent's snapshot side: CloudStack's `KVMStorageProcessor` snapshot methods.

What each operation stands for in CloudStack, and what it writes (paths relative to
the store root, which is a pool's `path` or an image store's `uri`):

- `createSnapshot` (`CreateObjectCommand` of a `SnapshotObjectTO`): an external,
  standalone copy of the volume, flattened through any template backing, at
  `snapshots/<volume uuid>/<snapshot uuid>.qcow2` on the snapshot's store.
- `backupSnapshot` (`CopyCommand` snapshot on primary -> snapshot on an image store):
  the same name on the image store, either a full flattened copy or, when the
  destination names a `parentSnapshotPath` and the `full` option is not "true", a
  delta whose backing file is the parent, named relative to the delta's directory
  so the store can move. Then the primary copy goes if `removeAfterCopy` is "true".
- `LibvirtRevertSnapshotCommandWrapper` (`RevertSnapshotCommand`): the snapshot's
  chain flattened over the volume file, which is left with no backing file.
- `createVolumeFromSnapshot`, `createTemplateFromVolume`, `createTemplateFromSnapshot`
  and the two halves of a migration staged through secondary storage
  (`copyVolumeFromPrimaryToSecondary`, `copyVolumeFromImageCacheToPrimary`).
- `deleteSnapshot` (`DeleteCommand` of a `SnapshotObjectTO`), on either kind of store.

The delta is not `qemu-img convert -B`: convert writes every cluster allocated in the
source's top layer, and a flattened snapshot has all of them allocated, so its "delta"
would be as large as a full copy. Instead an empty overlay of the snapshot is made
and safely rebased onto the parent, which writes only the clusters that differ.

Every name passes through `paths.contained`, and every image read from a store has
its backing chain checked to stay inside that store (a crafted qcow2 on an image
store must not make the agent read a host file). The rules of `kvm.py` hold: `-f`
always given, argv lists only, staged temporary name then rename, a repeat finds
the finished file and answers success, a failure leaves no partial file behind.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Protocol

from executors import qemu
from executors.agents.staging import (
    AgentFailure,
    parent_dirs,
    remove,
    staged,
    temp_for,
)
from executors.paths import contained, pool_root, store_root
from executors.qemu import ImageInfo
from executors.runner import Completed
from ledger.commands import (
    Answer,
    Command,
    CopyCmdAnswer,
    CopyCommand,
    CreateObjectAnswer,
    CreateObjectCommand,
    DeleteCommand,
    ImageStoreTO,
    PrimaryDataStoreTO,
    RevertSnapshotCommand,
    SnapshotObjectTO,
    TemplateObjectTO,
    VolumeObjectTO,
)
from ledger.errors import InvalidInput

_MAX_CHAIN = 64  # CloudStack's snapshot.delta.max is 16; anything deeper is damage


class ImageTool(Protocol):
    """What these operations need of the KVM agent's job (`kvm._Job`)."""

    def qemu(self, argv: list[str], *, progress: bool = False) -> Completed: ...

    def info(self, path: Path, fmt: str) -> ImageInfo: ...

    def finished(
        self, final: Path, fmt: str, backing: str | None = None
    ) -> ImageInfo | None: ...


def run(tool: ImageTool, command: Command) -> Answer | None:
    """The answer to a snapshot-side command; None if `command` is not one."""
    ops = _Snapshots(tool)
    match command:
        case CreateObjectCommand(data=SnapshotObjectTO() as snapshot):
            return ops.create_snapshot(command, snapshot)
        case CopyCommand(
            srcTO=SnapshotObjectTO(dataStore=PrimaryDataStoreTO()) as src,
            destTO=SnapshotObjectTO(dataStore=ImageStoreTO()) as dest,
        ):
            return ops.backup_snapshot(command, src, dest)
        case RevertSnapshotCommand():
            return ops.revert_snapshot(command)
        case CopyCommand(
            srcTO=SnapshotObjectTO(
                dataStore=PrimaryDataStoreTO() | ImageStoreTO()
            ) as src,
            destTO=VolumeObjectTO(dataStore=PrimaryDataStoreTO()) as dest,
        ):
            return ops.volume_from_snapshot(command, src, dest)
        case CopyCommand(
            srcTO=(
                VolumeObjectTO(dataStore=PrimaryDataStoreTO())
                | SnapshotObjectTO(dataStore=PrimaryDataStoreTO() | ImageStoreTO())
            ) as src,
            destTO=TemplateObjectTO(dataStore=ImageStoreTO()) as dest,
        ):
            return ops.create_template(command, src, dest)
        case CopyCommand(
            srcTO=VolumeObjectTO(dataStore=PrimaryDataStoreTO()) as src,
            destTO=VolumeObjectTO(dataStore=ImageStoreTO()) as dest,
        ):
            return ops.stage_volume(command, src, dest)
        case CopyCommand(
            srcTO=VolumeObjectTO(dataStore=ImageStoreTO()) as src,
            destTO=VolumeObjectTO(dataStore=PrimaryDataStoreTO()) as dest,
        ):
            return ops.unstage_volume(command, src, dest)
        case DeleteCommand(data=SnapshotObjectTO() as snapshot):
            return ops.delete_snapshot(command, snapshot)
    return None


def snapshot_path(snapshot: SnapshotObjectTO, volume_uuid: str | None = None) -> str:
    """`snapshots/<volume uuid>/<snapshot uuid>.qcow2`, relative to a store root."""
    if volume_uuid is None:
        if snapshot.volume is None:
            raise InvalidInput("snapshot", snapshot.uuid, "names no volume")
        volume_uuid = snapshot.volume.uuid
    return f"snapshots/{volume_uuid}/{snapshot.uuid}.qcow2"


def template_path(template: TemplateObjectTO) -> str:
    """`template/tmpl/<uuid>/<uuid>.qcow2`, relative to the image store root."""
    return f"template/tmpl/{template.uuid}/{template.uuid}.qcow2"


def staged_volume_path(volume: VolumeObjectTO) -> str:
    """`volumes/<uuid>.qcow2`: a volume parked on an image store between pools."""
    return f"volumes/{volume.uuid}.qcow2"


class _Snapshots:
    def __init__(self, tool: ImageTool) -> None:
        self.tool = tool

    # ------------------------------------------------------------ snapshots

    def create_snapshot(
        self, cmd: CreateObjectCommand, snapshot: SnapshotObjectTO
    ) -> Answer:
        """`createSnapshot` of a stopped VM's volume: a flattened external copy."""
        volume = snapshot.volume
        if volume is None:
            raise InvalidInput("snapshot", snapshot.uuid, "names no volume")
        vol_root = pool_root(volume.dataStore)
        source = contained(vol_root, volume.path or volume.uuid)
        root = store_root(snapshot.dataStore)
        name = snapshot_path(snapshot)
        final = contained(root, name)
        _distinct(source, final)
        if self.tool.finished(final, "qcow2") is None:
            fmt = _volume_format(volume)
            self.checked_source(source, vol_root, fmt, "volume")
            self.flatten(source, fmt, final, root)
        data = snapshot.replace(path=name, physicalSize=final.stat().st_size)
        return CreateObjectAnswer(commandId=cmd.commandId, result=True, data=data)

    def backup_snapshot(
        self, cmd: CopyCommand, src: SnapshotObjectTO, dest: SnapshotObjectTO
    ) -> Answer:
        """`backupSnapshot`: a full copy or a delta on the image store."""
        remove_after = _flag(cmd.options, "removeAfterCopy")
        full = _flag(cmd.options, "full")
        src_root = store_root(src.dataStore)
        source = contained(src_root, src.path or snapshot_path(src))
        root = store_root(dest.dataStore)
        volume = dest.volume or src.volume
        name = dest.path or snapshot_path(dest, volume.uuid if volume else None)
        final = contained(root, name)
        _distinct(source, final)
        parent_name = None if full else dest.parentSnapshotPath
        parent = contained(root, parent_name) if parent_name else None
        backing = None
        if parent is not None:
            _distinct(parent, final)
            backing = os.path.relpath(parent, final.parent)
        if self.tool.finished(final, "qcow2", backing=backing) is None:
            self.checked_source(source, src_root, "qcow2", "snapshot")
            if parent is None or backing is None:
                self.flatten(source, "qcow2", final, root)
            else:
                self.checked_source(parent, root, "qcow2", "parent snapshot")
                self.delta(source, parent, backing, final, root)
        if remove_after:
            _remove_with_dir(source, src_root)
        new = dest.replace(
            path=name,
            physicalSize=final.stat().st_size,
            parentSnapshotPath=parent_name,
        )
        return CopyCmdAnswer(commandId=cmd.commandId, result=True, newData=new)

    def revert_snapshot(self, cmd: RevertSnapshotCommand) -> Answer:
        """`LibvirtRevertSnapshotCommandWrapper`: the snapshot's data over the volume.

        The primary copy (`dataOnPrimaryStorage`) is read if its file is there, the
        image store's otherwise; either chain is flattened, so the volume is left
        standalone. Doing it again writes the same data: a repeat is harmless.
        """
        snapshot = cmd.data
        volume = snapshot.volume
        if volume is None:
            raise InvalidInput("snapshot", snapshot.uuid, "names no volume")
        fmt = _volume_format(volume)
        target = contained(pool_root(volume.dataStore), volume.path or volume.uuid)
        candidates = [snapshot]
        if cmd.dataOnPrimaryStorage is not None:
            candidates.insert(0, cmd.dataOnPrimaryStorage)
        found: list[tuple[Path, Path]] = []
        for candidate in candidates:
            root = store_root(candidate.dataStore)
            name = candidate.path or snapshot_path(candidate, volume.uuid)
            found.append((contained(root, name), root))
        source, root = next(((p, r) for p, r in found if p.is_file()), found[-1])
        _distinct(source, target)
        if not target.is_file():
            raise AgentFailure(
                f"volume file {target.name} not found in {target.parent}"
            )
        self.checked_source(source, root, "qcow2", "snapshot")
        with staged(target) as tmp:
            self.tool.qemu(qemu.convert_argv(source, tmp, "qcow2", fmt), progress=True)
            self.tool.info(tmp, fmt)
        return Answer(commandId=cmd.commandId, result=True)

    def delete_snapshot(self, cmd: DeleteCommand, snapshot: SnapshotObjectTO) -> Answer:
        """`deleteSnapshot`: the file and its emptied `snapshots/<volume>` directory.

        Whether a delta still hangs from this file is the ledger's business
        (CloudStack hides such a snapshot instead of deleting it).
        """
        root = store_root(snapshot.dataStore)
        target = contained(root, snapshot.path or snapshot_path(snapshot))
        if target.is_dir():
            raise AgentFailure(f"snapshot path {target} is a directory")
        _remove_with_dir(target, root)
        return Answer(commandId=cmd.commandId, result=True)

    # ------------------------------------------------------------ copies

    def volume_from_snapshot(
        self, cmd: CopyCommand, src: SnapshotObjectTO, dest: VolumeObjectTO
    ) -> Answer:
        """`createVolumeFromSnapshot`: the chain flattened into `<pool>/<uuid>`."""
        src_root = store_root(src.dataStore)
        source = contained(src_root, src.path or snapshot_path(src))
        root = pool_root(dest.dataStore)
        final = contained(root, dest.uuid)
        _distinct(source, final)
        info = self.tool.finished(final, "qcow2")
        if info is None:
            self.checked_source(source, src_root, "qcow2", "snapshot")
            info = self.flatten(source, "qcow2", final, root, size=dest.size)
        new = dest.replace(path=dest.uuid, size=info.virtual_size, format="QCOW2")
        return CopyCmdAnswer(commandId=cmd.commandId, result=True, newData=new)

    def create_template(
        self,
        cmd: CopyCommand,
        src: VolumeObjectTO | SnapshotObjectTO,
        dest: TemplateObjectTO,
    ) -> Answer:
        """`createTemplateFromVolume` / `...FromSnapshot`: a flattened qcow2."""
        if isinstance(src, VolumeObjectTO):
            src_root = pool_root(src.dataStore)
            source = contained(src_root, src.path or src.uuid)
            fmt, what = _volume_format(src), "volume"
        else:
            src_root = store_root(src.dataStore)
            source = contained(src_root, src.path or snapshot_path(src))
            fmt, what = "qcow2", "snapshot"
        root = store_root(dest.dataStore)
        name = template_path(dest)
        final = contained(root, name)
        _distinct(source, final)
        info = self.tool.finished(final, "qcow2")
        if info is None:
            self.checked_source(source, src_root, fmt, what)
            info = self.flatten(source, fmt, final, root)
        new = dest.replace(
            path=name,
            format="QCOW2",
            size=info.virtual_size,
            physicalSize=final.stat().st_size,
        )
        return CopyCmdAnswer(commandId=cmd.commandId, result=True, newData=new)

    def stage_volume(
        self, cmd: CopyCommand, src: VolumeObjectTO, dest: VolumeObjectTO
    ) -> Answer:
        """`copyVolumeFromPrimaryToSecondary`: park a flattened copy on the store."""
        src_root = pool_root(src.dataStore)
        source = contained(src_root, src.path or src.uuid)
        root = store_root(dest.dataStore)
        name = staged_volume_path(dest)
        final = contained(root, name)
        _distinct(source, final)
        info = self.tool.finished(final, "qcow2")
        if info is None:
            fmt = _volume_format(src)
            self.checked_source(source, src_root, fmt, "volume")
            info = self.flatten(source, fmt, final, root)
        new = dest.replace(path=name, size=info.virtual_size, format="QCOW2")
        return CopyCmdAnswer(commandId=cmd.commandId, result=True, newData=new)

    def unstage_volume(
        self, cmd: CopyCommand, src: VolumeObjectTO, dest: VolumeObjectTO
    ) -> Answer:
        """`copyVolumeFromImageCacheToPrimary`: the parked copy into `<pool>/<uuid>`."""
        src_root = store_root(src.dataStore)
        source = contained(src_root, src.path or staged_volume_path(src))
        root = pool_root(dest.dataStore)
        final = contained(root, dest.uuid)
        _distinct(source, final)
        info = self.tool.finished(final, "qcow2")
        if info is None:
            fmt = _volume_format(src)
            self.checked_source(source, src_root, fmt, "staged volume")
            info = self.flatten(source, fmt, final, root, size=dest.size)
        new = dest.replace(path=dest.uuid, size=info.virtual_size, format="QCOW2")
        return CopyCmdAnswer(commandId=cmd.commandId, result=True, newData=new)

    # ------------------------------------------------------------ helpers

    def flatten(
        self,
        source: Path,
        src_fmt: str,
        final: Path,
        root: Path,
        size: int | None = None,
    ) -> ImageInfo:
        """A standalone qcow2 of `source`'s whole chain at `final`, grown to `size`."""
        with parent_dirs(final, root), staged(final) as tmp:
            self.tool.qemu(
                qemu.convert_argv(source, tmp, src_fmt, "qcow2"), progress=True
            )
            info = self.tool.info(tmp, "qcow2")
            if size is not None and size > info.virtual_size:
                self.tool.qemu(qemu.resize_argv(tmp, "qcow2", size))
                info = self.tool.info(tmp, "qcow2")
            if info.backing_file is not None:
                raise AgentFailure(f"flattened copy kept backing {info.backing_file}")
            return info

    def delta(
        self, source: Path, parent: Path, backing: str, final: Path, root: Path
    ) -> ImageInfo:
        """Only the clusters where `source` differs from `parent`, backed by it.

        An empty overlay of `source` is rebased (safely, so with a comparison) onto
        `parent`: qemu writes into the overlay every cluster the two differ in.
        """
        with parent_dirs(final, root), staged(final) as tmp:
            self.tool.qemu(qemu.create_argv(tmp, "qcow2", None, source, "qcow2"))
            self.tool.qemu(
                qemu.rebase_argv(tmp, "qcow2", backing, "qcow2", progress=True),
                progress=True,
            )
            info = self.tool.info(tmp, "qcow2")
            if info.backing_file != backing:
                raise AgentFailure(
                    f"delta {final.name} has backing file {info.backing_file!r}, "
                    f"expected its parent {backing!r}"
                )
            return info

    def checked_source(self, path: Path, root: Path, fmt: str, what: str) -> ImageInfo:
        """`path`'s info, once it exists and its whole chain stays inside `root`."""
        if not path.is_file():
            raise AgentFailure(f"{what} file {path.name} not found in {path.parent}")
        top = info = self.tool.info(path, fmt)
        current = path
        base = root.resolve()
        for _ in range(_MAX_CHAIN):
            if info.backing_file is None:
                return top
            if info.backing_format not in ("qcow2", "raw"):
                raise AgentFailure(
                    f"{what} {path.name}: backing file {info.backing_file!r} "
                    "has no qcow2 or raw format recorded"
                )
            backing = current.parent / info.backing_file
            try:
                inside = backing.resolve().relative_to(base)
            except ValueError:
                raise AgentFailure(
                    f"{what} {path.name}: backing file {info.backing_file!r} "
                    f"is outside the store {base}"
                ) from None
            current = contained(base, str(inside))
            if not current.is_file():
                raise AgentFailure(
                    f"{what} {path.name}: backing file {info.backing_file!r} is missing"
                )
            info = self.tool.info(current, info.backing_format)
        raise AgentFailure(f"{what} {path.name}: backing chain over {_MAX_CHAIN} deep")


def _remove_with_dir(path: Path, root: Path) -> None:
    """Remove `path` (and a leftover temporary), then its directory if now empty."""
    remove(temp_for(path))
    remove(path)
    if path.parent != root.resolve():
        with contextlib.suppress(OSError):  # only if now empty
            path.parent.rmdir()


def _distinct(source: Path, final: Path) -> None:
    if source == final:
        raise AgentFailure(f"source and destination are the same file {final}")


def _flag(options: dict[str, str], key: str) -> bool:
    value = options.get(key, "false")
    if value.strip().lower() not in ("true", "false"):
        raise InvalidInput(f"option {key}", value, "expected true or false")
    return value.strip().lower() == "true"


def _volume_format(volume: VolumeObjectTO) -> str:
    """Only what a KVM pool holds (as `kvm._format`)."""
    if volume.format.upper() not in ("QCOW2", "RAW"):
        raise InvalidInput("image format", volume.format, "only QCOW2 and RAW")
    return qemu.qemu_format(volume.format)
