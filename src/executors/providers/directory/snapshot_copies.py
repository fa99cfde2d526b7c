"""Copies made from snapshots, or through an image store, on directories.

CloudStack's `createVolumeFromSnapshot`, `createTemplateFromVolume`,
`createTemplateFromSnapshot`, and the two halves of a migration staged through
secondary storage when no host reaches both pools (`copyVolumeFromPrimaryToSecondary`,
`copyVolumeFromImageCacheToPrimary`). Each output is a flattened, standalone qcow2
(`Images.flatten`), and each source's backing chain is checked to stay inside its
store first (`Images.checked_source`).
"""

from __future__ import annotations

from dataclasses import dataclass

from executors.paths import contained, pool_root, store_root
from executors.providers.directory.images import Images, distinct, image_format
from executors.providers.directory.snapshots import (
    snapshot_path,
    staged_volume_path,
    template_path,
)
from ledger.commands import (
    Answer,
    CopyCmdAnswer,
    CopyCommand,
    SnapshotObjectTO,
    TemplateObjectTO,
    VolumeObjectTO,
)


@dataclass
class SnapshotCopies:
    """The copy operations of one command's run."""

    images: Images

    def volume_from_snapshot(
        self, cmd: CopyCommand, src: SnapshotObjectTO, dest: VolumeObjectTO
    ) -> Answer:
        """`createVolumeFromSnapshot`: the chain flattened into `<pool>/<uuid>`."""
        src_root = store_root(src.dataStore)
        source = contained(src_root, src.path or snapshot_path(src))
        root = pool_root(dest.dataStore)
        final = contained(root, dest.uuid)
        distinct(source, final)
        info = self.images.finished(final, "qcow2")
        if info is None:
            self.images.checked_source(source, src_root, "qcow2", "snapshot")
            info = self.images.flatten(source, "qcow2", final, root, size=dest.size)
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
            fmt, what = image_format(src.format), "volume"
        else:
            src_root = store_root(src.dataStore)
            source = contained(src_root, src.path or snapshot_path(src))
            fmt, what = "qcow2", "snapshot"
        root = store_root(dest.dataStore)
        name = template_path(dest)
        final = contained(root, name)
        distinct(source, final)
        info = self.images.finished(final, "qcow2")
        if info is None:
            self.images.checked_source(source, src_root, fmt, what)
            info = self.images.flatten(source, fmt, final, root)
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
        distinct(source, final)
        info = self.images.finished(final, "qcow2")
        if info is None:
            fmt = image_format(src.format)
            self.images.checked_source(source, src_root, fmt, "volume")
            info = self.images.flatten(source, fmt, final, root)
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
        distinct(source, final)
        info = self.images.finished(final, "qcow2")
        if info is None:
            fmt = image_format(src.format)
            self.images.checked_source(source, src_root, fmt, "staged volume")
            info = self.images.flatten(source, fmt, final, root, size=dest.size)
        new = dest.replace(path=dest.uuid, size=info.virtual_size, format="QCOW2")
        return CopyCmdAnswer(commandId=cmd.commandId, result=True, newData=new)
