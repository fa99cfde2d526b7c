"""Snapshots on directories: CloudStack's `KVMStorageProcessor` snapshot methods.

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
  (`copyVolumeFromPrimaryToSecondary`, `copyVolumeFromImageCacheToPrimary`) are in
  `snapshot_copies`.
- `deleteSnapshot` (`DeleteCommand` of a `SnapshotObjectTO`), on either kind of store.

The delta is not `qemu-img convert -B`: convert writes every cluster allocated in the
source's top layer, and a flattened snapshot has all of them allocated, so its "delta"
would be as large as a full copy. Instead an empty overlay of the snapshot is made
and safely rebased onto the parent, which writes only the clusters that differ.

Every name passes through `paths.contained`, and every image read from a store has
its backing chain checked to stay inside that store (a crafted qcow2 on an image
store must not make the agent read a host file). The rules of `images` hold: `-f`
always given, argv lists only, staged temporary name then rename, a repeat finds
the finished file and answers success, a failure leaves no partial file behind.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from executors import qemu
from executors.paths import contained, pool_root, store_root
from executors.providers.directory.images import (
    Images,
    distinct,
    image_format,
    remove_with_dir,
)
from executors.providers.directory.staging import staged
from executors.providers.driver import AgentFailure
from ledger.commands import (
    Answer,
    CopyCmdAnswer,
    CopyCommand,
    CreateObjectAnswer,
    CreateObjectCommand,
    DeleteCommand,
    RevertSnapshotCommand,
    SnapshotObjectTO,
    TemplateObjectTO,
    VolumeObjectTO,
)
from ledger.errors import InvalidInput


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


@dataclass
class Snapshots:
    """The snapshot operations of one command's run."""

    images: Images

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
        distinct(source, final)
        if self.images.finished(final, "qcow2") is None:
            fmt = image_format(volume.format)
            self.images.checked_source(source, vol_root, fmt, "volume")
            self.images.flatten(source, fmt, final, root)
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
        distinct(source, final)
        parent_name = None if full else dest.parentSnapshotPath
        parent = contained(root, parent_name) if parent_name else None
        backing = None
        if parent is not None:
            distinct(parent, final)
            backing = os.path.relpath(parent, final.parent)
        if self.images.finished(final, "qcow2", backing=backing) is None:
            self.images.checked_source(source, src_root, "qcow2", "snapshot")
            if parent is None or backing is None:
                self.images.flatten(source, "qcow2", final, root)
            else:
                self.images.checked_source(parent, root, "qcow2", "parent snapshot")
                self.images.delta(source, parent, backing, final, root)
        if remove_after:
            remove_with_dir(source, src_root)
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
        fmt = image_format(volume.format)
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
        distinct(source, target)
        if not target.is_file():
            raise AgentFailure(
                f"volume file {target.name} not found in {target.parent}"
            )
        self.images.checked_source(source, root, "qcow2", "snapshot")
        with staged(target) as tmp:
            self.images.qemu(
                qemu.convert_argv(source, tmp, "qcow2", fmt), progress=True
            )
            self.images.info(tmp, fmt)
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
        remove_with_dir(target, root)
        return Answer(commandId=cmd.commandId, result=True)


def _flag(options: dict[str, str], key: str) -> bool:
    value = options.get(key, "false")
    if value.strip().lower() not in ("true", "false"):
        raise InvalidInput(f"option {key}", value, "expected true or false")
    return value.strip().lower() == "true"
