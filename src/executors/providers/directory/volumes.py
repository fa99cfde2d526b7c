"""Volumes on directory pools: CloudStack's `KVMStorageProcessor` volume methods.

A primary pool is a directory (CloudStack mounts it at `/mnt/<pool uuid>`); a volume
is the file `<pool>/<volume uuid>`, either standalone or a qcow2 overlay of the
template copy cached in the same pool (a linked clone).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from executors import qemu
from executors.paths import contained, pool_root, store_root
from executors.providers.directory.images import Images, image_format
from executors.providers.directory.staging import remove, staged, temp_for
from executors.providers.driver import AgentFailure
from ledger.commands import (
    Answer,
    AttachAnswer,
    AttachCommand,
    CopyCmdAnswer,
    CopyCommand,
    CreateObjectAnswer,
    CreateObjectCommand,
    DeleteCommand,
    DettachAnswer,
    DettachCommand,
    ResizeVolumeAnswer,
    ResizeVolumeCommand,
    TemplateObjectTO,
    VolumeObjectTO,
)
from ledger.errors import InvalidInput

_PREALLOCATION = {"THIN": "off", "SPARSE": "metadata", "FAT": "full"}


@dataclass
class Volumes:
    """The volume operations of one command's run."""

    images: Images

    def clone_from_base_template(
        self, cmd: CopyCommand, src: TemplateObjectTO, dest: VolumeObjectTO
    ) -> Answer:
        """`cloneVolumeFromBaseTemplate`: a qcow2 overlay on the cached template."""
        name = src.path or src.uuid
        base = contained(pool_root(src.dataStore), name)
        final = contained(pool_root(dest.dataStore), dest.uuid)
        if not base.is_file():
            raise AgentFailure(f"base template {name} not found in {base.parent}")
        size = max(dest.size, self.images.info(base, "qcow2").virtual_size)
        info = self.images.finished(final, "qcow2", backing=str(base))
        if info is None:
            with staged(final) as tmp:
                self.images.qemu(qemu.create_argv(tmp, "qcow2", size, base, "qcow2"))
                info = self.images.info(tmp, "qcow2")
        new = dest.replace(path=dest.uuid, size=info.virtual_size, format="QCOW2")
        return CopyCmdAnswer(commandId=cmd.commandId, result=True, newData=new)

    def copy_volume_to_primary(
        self, cmd: CopyCommand, src: VolumeObjectTO, dest: VolumeObjectTO
    ) -> Answer:
        """`copyVolumeFromPrimaryToPrimary`: a full, flattened copy (migration)."""
        source, src_info = self.images.volume_file(src)
        final = contained(pool_root(dest.dataStore), dest.uuid)
        if final == source:
            raise AgentFailure(f"source and destination are the same file {final}")
        info = self.images.finished(final, "qcow2")
        if info is None:
            info = self.images.standalone_copy(
                source, image_format(src.format), src_info, final
            )
        new = dest.replace(path=dest.uuid, size=info.virtual_size, format="QCOW2")
        return CopyCmdAnswer(commandId=cmd.commandId, result=True, newData=new)

    def create_volume(self, cmd: CreateObjectCommand, volume: VolumeObjectTO) -> Answer:
        """`createVolume`: an empty disk of the requested virtual size."""
        fmt = image_format(volume.format)
        prealloc = _PREALLOCATION.get(volume.provisioningType)
        if prealloc is None:
            raise InvalidInput("provisioning type", volume.provisioningType, "unknown")
        final = contained(pool_root(volume.dataStore), volume.uuid)
        info = self.images.finished(final, fmt)
        if info is not None and info.virtual_size < volume.size:
            raise AgentFailure(
                f"{final} exists with {info.virtual_size} bytes, not {volume.size}"
            )
        if info is None:
            with staged(final) as tmp:
                self.images.qemu(
                    qemu.create_argv(tmp, fmt, volume.size, preallocation=prealloc)
                )
                info = self.images.info(tmp, fmt)
        data = volume.replace(path=volume.uuid, size=info.virtual_size)
        return CreateObjectAnswer(commandId=cmd.commandId, result=True, data=data)

    def delete(
        self, cmd: DeleteCommand, data: VolumeObjectTO | TemplateObjectTO
    ) -> Answer:
        """`deleteVolume` and template deletion: already gone counts as done."""
        root = store_root(data.dataStore).resolve()
        target = contained(root, data.path or data.uuid)
        if target.is_dir() and isinstance(data, TemplateObjectTO):
            for child in target.iterdir():  # a template directory holds files only
                child.unlink()
            target.rmdir()
        else:
            remove(temp_for(target))
            remove(target)
            if isinstance(data, TemplateObjectTO) and target.parent != root:
                with contextlib.suppress(OSError):  # only if now empty
                    target.parent.rmdir()
        return Answer(commandId=cmd.commandId, result=True)

    def check_disk(self, cmd: AttachCommand | DettachCommand) -> Answer:
        """Attach/detach without libvirt: only the disk's readability is checked."""
        self.images.existing_volume(cmd.disk.data)
        answer = AttachAnswer if isinstance(cmd, AttachCommand) else DettachAnswer
        return answer(commandId=cmd.commandId, result=True, disk=cmd.disk)

    def resize(self, cmd: ResizeVolumeCommand) -> Answer:
        """`ResizeVolumeCommand`: `qemu-img resize`; a repeat finds it done."""
        path = self.images.existing_volume(cmd.volume)
        fmt = image_format(cmd.volume.format)
        if self.images.info(path, fmt).virtual_size != cmd.newSize:
            self.images.qemu(
                qemu.resize_argv(path, fmt, cmd.newSize, shrink=cmd.shrinkOk)
            )
        size = self.images.info(path, fmt).virtual_size
        return ResizeVolumeAnswer(commandId=cmd.commandId, result=True, newSize=size)
