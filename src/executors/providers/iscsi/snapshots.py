"""Snapshots of iSCSI volumes: CloudStack's managed storage on KVM, where the
snapshot is the LUN's content copied through the host to the image store.

tgtd has no snapshots of its own, so, as on CloudStack's "classic path" for
managed storage (`Creating -> CreatedOnPrimary -BackupToSecondary-> BackingUp`,
a `CopyCommand`; ../shared/reference/cloudstack-source-notes.md, the snapshot
state machine), the data is read from the LUN by `qemu-img convert` over
libiscsi, logged in with the volume's CHAP secret:

- `createSnapshot`: the LUN found whole (its target made again if tgtd lost
  it); nothing is copied yet, the answer names the LUN (`<iqn>@<snapshot>`).
  The backup follows at once in the same job, with the volume `Snapshotting`,
  so nothing changes the LUN in between.
- `backupSnapshot`: the LUN straight to `snapshots/<volume>/<snapshot>.qcow2`
  on the image store (staged, renamed). A delta (the ledger asks one while
  the chain is shorter than `snapshot.delta.max`) is the full copy rebased on
  its parent by the directory driver's `Images.delta`, the full copy removed.
- `revertSnapshot`: the backup written into a new sparse LUN file through the
  volume's own target, renamed over the LUN file once flushed; a failure puts
  the target back on the untouched old file.
- `createVolumeFromSnapshot` onto an iSCSI pool: the backup written into the
  new volume's LUN; `createTemplateFromVolume`: the LUN as a template qcow2.
- `deleteSnapshot`: nothing on the pool; the backup file as the directory
  driver deletes it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from executors.paths import contained, store_root
from executors.providers.directory.images import Images, distinct
from executors.providers.directory.snapshots import snapshot_path, template_path
from executors.providers.directory.staging import parent_dirs, remove, staged
from executors.providers.iscsi import images
from executors.providers.iscsi.volumes import Volumes, is_iscsi
from executors.qemu import ImageInfo
from ledger.commands import (
    Answer,
    CopyCmdAnswer,
    CopyCommand,
    CreateObjectAnswer,
    CreateObjectCommand,
    RevertSnapshotCommand,
    SnapshotObjectTO,
    TemplateObjectTO,
    VolumeObjectTO,
)
from ledger.errors import InvalidInput


def volume_of(snapshot: SnapshotObjectTO) -> VolumeObjectTO:
    if snapshot.volume is None:
        raise InvalidInput("snapshot", snapshot.uuid, "names no volume")
    return snapshot.volume


@dataclass
class Snapshots:
    """The snapshot operations of one command's run, on its `Volumes`."""

    volumes: Volumes

    @property
    def files(self) -> Images:
        return Images(self.volumes.run)

    def create_snapshot(
        self, cmd: CreateObjectCommand, snapshot: SnapshotObjectTO
    ) -> Answer:
        """`createSnapshot`: the LUN is there and reachable; its backup follows."""
        volume = volume_of(snapshot)
        pool = self.volumes.pool(volume.dataStore)
        lun = self.volumes.existing(pool, volume)
        data = snapshot.replace(
            path=f"{lun.iqn}@{snapshot.uuid}", physicalSize=lun.file.stat().st_size
        )
        return CreateObjectAnswer(commandId=cmd.commandId, result=True, data=data)

    def backup_snapshot(
        self, cmd: CopyCommand, src: SnapshotObjectTO, dest: SnapshotObjectTO
    ) -> Answer:
        """`backupSnapshot`: the LUN as a full qcow2, or a delta of its parent."""
        full = cmd.options.get("full", "false").strip().lower() == "true"
        volume = dest.volume or volume_of(src)
        root = store_root(dest.dataStore)
        name = dest.path or snapshot_path(dest, volume.uuid)
        final = contained(root, name)
        parent_name = None if full else dest.parentSnapshotPath
        parent = contained(root, parent_name) if parent_name else None
        backing = os.path.relpath(parent, final.parent) if parent else None
        if parent is not None:
            distinct(parent, final)
        if self.files.finished(final, "qcow2", backing=backing) is None:
            if parent is None or backing is None:
                self._drain(volume, final, root)
            else:
                self.files.checked_source(parent, root, "qcow2", "parent snapshot")
                whole = contained(root, str(Path(name).parent), f".{final.name}.full")
                try:
                    with parent_dirs(final, root):
                        self._drain(volume, whole, root)
                        self.files.delta(whole, parent, backing, final, root)
                finally:
                    remove(whole)
        new = dest.replace(
            path=name,
            physicalSize=final.stat().st_size,
            parentSnapshotPath=parent_name,
        )
        return CopyCmdAnswer(commandId=cmd.commandId, result=True, newData=new)

    def revert_snapshot(self, cmd: RevertSnapshotCommand) -> Answer:
        """`revertSnapshot`: the backup over the volume's LUN, all or nothing."""
        snapshot = cmd.data
        volume = volume_of(snapshot)
        pool = self.volumes.pool(volume.dataStore)
        lun = self.volumes.existing(pool, volume)
        root = store_root(snapshot.dataStore)
        backup = contained(root, snapshot.path or snapshot_path(snapshot, volume.uuid))
        info = self.files.checked_source(backup, root, "qcow2", "snapshot")
        self.volumes.replace(
            pool,
            lun,
            info.virtual_size,
            lambda spec: self.volumes.run.qemu(
                images.fill_argv(backup, "qcow2", spec), progress=True
            ),
        )
        return Answer(commandId=cmd.commandId, result=True, details="from the backup")

    def volume_from_snapshot(
        self, cmd: CopyCommand, src: SnapshotObjectTO, dest: VolumeObjectTO
    ) -> Answer:
        """`createVolumeFromSnapshot` onto an iSCSI pool: the backup in a new LUN."""
        root = store_root(src.dataStore)
        path = contained(root, src.path or snapshot_path(src))
        source = self.volumes.file_source(path, root, "qcow2", "snapshot")
        return self.volumes.copy_into(cmd, dest, source)

    def template_from_volume(
        self,
        cmd: CopyCommand,
        src: VolumeObjectTO | SnapshotObjectTO,
        dest: TemplateObjectTO,
    ) -> Answer:
        """`createTemplateFromVolume` (or from a snapshot named on the pool, which
        is the LUN): the LUN as a standalone template qcow2."""
        volume = src if isinstance(src, VolumeObjectTO) else volume_of(src)
        root = store_root(dest.dataStore)
        name = template_path(dest)
        final = contained(root, name)
        info = self.files.finished(final, "qcow2") or self._drain(volume, final, root)
        new = dest.replace(
            path=name,
            format="QCOW2",
            size=info.virtual_size,
            physicalSize=final.stat().st_size,
        )
        return CopyCmdAnswer(commandId=cmd.commandId, result=True, newData=new)

    def _drain(self, volume: VolumeObjectTO, final: Path, root: Path) -> ImageInfo:
        """The volume's LUN as a qcow2 at `final` (staged, renamed; its new
        folders removed again if it fails)."""
        if not is_iscsi(volume.dataStore):
            raise InvalidInput("volume", volume.uuid, "not on an iSCSI pool")
        pool = self.volumes.pool(volume.dataStore)
        spec = pool.spec(self.volumes.existing(pool, volume))
        with parent_dirs(final, root), staged(final) as tmp:
            self.volumes.run.qemu(images.drain_argv(spec, tmp), progress=True)
            return self.files.info(tmp, "qcow2")
