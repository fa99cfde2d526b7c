"""Copies of iSCSI volumes to and from directories: migration onto, off and
between iSCSI pools, and the two legs of a migration staged through the image
store (no host reaches both pools).

- `copyVolumeFromPrimaryToPrimary`: onto an iSCSI pool from a directory pool
  (its chain checked to stay inside it) or another iSCSI pool (LUN to LUN);
  off it, `qemu-img convert` of the LUN into a staged qcow2 on the directory
  pool. (To and from an RBD pool: `providers.block_copies`.)
- `copyVolumeFromPrimaryToSecondary`: the LUN parked as `volumes/<uuid>.qcow2`
  on the image store, written under a staged name and renamed.
- `copyVolumeFromImageCacheToPrimary`: the parked copy written into a new LUN.

Each keeps the volumes' rules: a LUN or a file at its final name is complete, a
repeat finds it, a failure leaves nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from executors.paths import contained, pool_root, store_root
from executors.providers.directory.images import Images, image_format
from executors.providers.directory.snapshots import staged_volume_path
from executors.providers.directory.staging import parent_dirs, staged
from executors.providers.iscsi import images
from executors.providers.iscsi.volumes import Source, Volumes, Write, is_iscsi
from executors.qemu import ImageInfo
from ledger.commands import Answer, CopyCmdAnswer, CopyCommand, VolumeObjectTO


@dataclass
class Copies:
    """The copy operations of one command's run, on its `Volumes`."""

    volumes: Volumes

    def copy_volume(
        self, cmd: CopyCommand, src: VolumeObjectTO, dest: VolumeObjectTO
    ) -> Answer:
        """`copyVolumeFromPrimaryToPrimary` (a migration) onto, off or between
        iSCSI pools, the other side a directory pool."""
        if is_iscsi(dest.dataStore):
            return self.volumes.copy_into(cmd, dest, self._source_of(src))
        root = pool_root(dest.dataStore)
        info = self._drain(src, contained(root, dest.uuid), root)
        new = dest.replace(path=dest.uuid, size=info.virtual_size, format="QCOW2")
        return CopyCmdAnswer(commandId=cmd.commandId, result=True, newData=new)

    def stage_volume(
        self, cmd: CopyCommand, src: VolumeObjectTO, dest: VolumeObjectTO
    ) -> Answer:
        """`copyVolumeFromPrimaryToSecondary`: the LUN parked on the store."""
        root = store_root(dest.dataStore)
        name = staged_volume_path(dest)
        info = self._drain(src, contained(root, name), root)
        new = dest.replace(path=name, size=info.virtual_size, format="QCOW2")
        return CopyCmdAnswer(commandId=cmd.commandId, result=True, newData=new)

    def unstage_volume(
        self, cmd: CopyCommand, src: VolumeObjectTO, dest: VolumeObjectTO
    ) -> Answer:
        """`copyVolumeFromImageCacheToPrimary`: the parked copy into a new LUN."""
        root = store_root(src.dataStore)
        path = contained(root, src.path or staged_volume_path(src))
        fmt = image_format(src.format)
        source = self.volumes.file_source(path, root, fmt, "staged volume")
        return self.volumes.copy_into(cmd, dest, source)

    def _drain(self, src: VolumeObjectTO, final: Path, root: Path) -> ImageInfo:
        """The LUN of `src` as a standalone qcow2 at `final` under `root` (made
        under a staged name, its new folders removed again on failure); a
        finished `final` is kept."""
        files = Images(self.volumes.run)
        info = files.finished(final, "qcow2")
        if info is not None:
            return info
        source = self.volumes.pool(src.dataStore)
        spec = source.spec(self.volumes.existing(source, src))
        with parent_dirs(final, root), staged(final) as tmp:
            self.volumes.run.qemu(images.drain_argv(spec, tmp), progress=True)
            return files.info(tmp, "qcow2")

    def _source_of(self, src: VolumeObjectTO) -> Source:
        """What fills a LUN from `src`: another iSCSI pool's LUN, or a file."""
        if not is_iscsi(src.dataStore):
            root = pool_root(src.dataStore)
            path = contained(root, src.path or src.uuid)
            return self.volumes.file_source(
                path, root, image_format(src.format), "volume"
            )
        volumes = self.volumes
        source = volumes.pool(src.dataStore)

        def from_lun() -> tuple[int, Write]:
            lun = volumes.existing(source, src)
            spec = source.spec(lun)
            return lun.file.stat().st_size, lambda dest: volumes.run.qemu(
                images.lun_to_lun_argv(spec, dest), progress=True
            )

        return from_lun
