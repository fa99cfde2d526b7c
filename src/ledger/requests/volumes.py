"""Commands on a volume's own file: create, clone, attach, detach, expunge,
resize, and the copies that move it between pools (StorageMotion)."""

from __future__ import annotations

from ledger import transfer
from ledger.aggregate import Ctx
from ledger.commands import (
    AttachCommand,
    CopyCommand,
    CreateObjectCommand,
    DeleteCommand,
    DettachCommand,
    ResizeVolumeCommand,
    VolumeObjectTO,
)
from ledger.copies import DataObjectInStore, leftover_id
from ledger.image_store import ImageStore
from ledger.pool import StoragePool
from ledger.template import Template
from ledger.values import DataObjectType, StoreRole
from ledger.vm import VirtualMachine
from ledger.volume import Volume


def create_volume(ctx: Ctx, wait: int, volume: Volume, pool: StoragePool) -> None:
    """`createVolume`: an empty disk on the pool the allocator chose."""
    volume.request_create(
        ctx,
        CreateObjectCommand(
            commandId=transfer.command_id(ctx.causation_id, volume.id, "create"),
            data=transfer.volume_to(volume, pool),
            wait=wait,
        ),
    )


def clone_volume(
    ctx: Ctx,
    wait: int,
    volume: Volume,
    pool: StoragePool,
    template: Template,
    copy: DataObjectInStore,
) -> None:
    """`cloneVolumeFromBaseTemplate`: a linked clone of the template cached on
    the pool."""
    volume.request_copy(
        ctx,
        CopyCommand(
            commandId=transfer.command_id(ctx.causation_id, volume.id, "clone"),
            srcTO=transfer.template_to(
                template, transfer.primary_to(pool), copy.install_path
            ),
            destTO=transfer.volume_to(volume, pool),
            wait=wait,
        ),
        "CreateRequested",
    )


def copy_template_to_volume(
    ctx: Ctx,
    wait: int,
    volume: Volume,
    pool: StoragePool,
    template: Template,
    source: tuple[ImageStore, DataObjectInStore],
    cache: ImageStore | None = None,
) -> None:
    """The template written whole into the volume (a managed pool's LUN), from
    the image store (through `cache` when that store is S3 or Swift)."""
    store, image_copy = source
    volume.request_copy(
        ctx,
        CopyCommand(
            commandId=transfer.command_id(ctx.causation_id, volume.id, "fill"),
            srcTO=transfer.template_to(
                template, transfer.image_to(store), image_copy.install_path
            ),
            destTO=transfer.volume_to(volume, pool),
            wait=wait,
            cacheTO=transfer.image_to(cache) if cache else None,
        ),
        "CreateRequested",
    )


def attach_volume(
    ctx: Ctx, wait: int, volume: Volume, pool: StoragePool, vm: VirtualMachine
) -> None:
    """`AttachCommand`, on the VM's next free device."""
    device = vm.reserve_device(ctx, volume.id)
    volume.request_attach(
        ctx,
        AttachCommand(
            commandId=transfer.command_id(ctx.causation_id, volume.id, "attach"),
            disk=transfer.disk_to(volume, pool, device, vm.name),
            vmName=vm.name,
            vmId=str(vm.id),
            wait=wait,
        ),
    )


def detach_volume(
    ctx: Ctx, wait: int, volume: Volume, pool: StoragePool, vm: VirtualMachine
) -> None:
    """`DettachCommand` (CloudStack's spelling); the answer's workflow frees the
    device."""
    volume.request_detach(
        ctx,
        DettachCommand(
            commandId=transfer.command_id(ctx.causation_id, volume.id, "detach"),
            disk=transfer.disk_to(volume, pool, volume.device_id, vm.name),
            vmName=vm.name,
            wait=wait,
        ),
    )


def expunge_volume(
    ctx: Ctx, wait: int, volume: Volume, pool: StoragePool | None
) -> bool:
    """Expunge a destroyed volume: a DeleteCommand for its file, or nothing to
    send when it never had one. True when a command is on its way."""
    if volume.path is None or pool is None:
        volume.request_expunge(ctx, None)
        return False
    volume.request_expunge(
        ctx,
        DeleteCommand(
            commandId=transfer.command_id(ctx.causation_id, volume.id, "delete"),
            data=transfer.volume_to(volume, pool),
            wait=wait,
        ),
    )
    return True


def resize_volume(
    ctx: Ctx, wait: int, volume: Volume, pool: StoragePool, new_size: int
) -> None:
    volume.request_resize(
        ctx,
        ResizeVolumeCommand(
            commandId=transfer.command_id(ctx.causation_id, volume.id, "resize"),
            volume=transfer.volume_to(volume, pool),
            currentSize=volume.size,
            newSize=new_size,
            wait=wait,
        ),
        new_size,
    )


def migrate_volume(
    ctx: Ctx, wait: int, volume: Volume, source: StoragePool, target: StoragePool
) -> None:
    """`copyVolumeFromPrimaryToPrimary`: a host reaches both pools."""
    volume.request_migration(
        ctx,
        CopyCommand(
            commandId=transfer.command_id(ctx.causation_id, volume.id, "move"),
            srcTO=transfer.volume_to(volume, source),
            destTO=transfer.volume_to(volume, target).replace(path=None),
            wait=wait,
        ),
    )


def stage_volume(
    ctx: Ctx,
    wait: int,
    stage: DataObjectInStore,
    volume: Volume,
    source: StoragePool,
    store: ImageStore,
) -> None:
    """First leg of a migration no host reaches both ends of: the volume to the
    image store (`copyVolumeFromPrimaryToSecondary`)."""
    stage.request_copy(
        ctx,
        CopyCommand(
            commandId=transfer.command_id(ctx.causation_id, stage.id, "stage"),
            srcTO=transfer.volume_to(volume, source),
            destTO=VolumeObjectTO(
                uuid=str(volume.id),
                name=volume.name,
                volumeType=volume.volume_type.value,
                size=volume.size,
                dataStore=transfer.image_to(store),
            ),
            wait=wait,
        ),
    )


def unstage_volume(
    ctx: Ctx,
    wait: int,
    volume: Volume,
    stage: DataObjectInStore,
    store: ImageStore,
    target: StoragePool,
) -> None:
    """Second leg: from the image store to the target pool
    (`copyVolumeFromImageCacheToPrimary`)."""
    volume.request_staged_copy(
        ctx,
        CopyCommand(
            commandId=transfer.command_id(ctx.causation_id, volume.id, "unstage"),
            srcTO=VolumeObjectTO(
                uuid=str(volume.id),
                name=volume.name,
                volumeType=volume.volume_type.value,
                size=volume.size,
                dataStore=transfer.image_to(store),
                path=stage.install_path,
            ),
            destTO=transfer.volume_to(volume, target).replace(path=None),
            wait=wait,
        ),
    )


def remove_leftover(
    ctx: Ctx, wait: int, volume: Volume, pool: StoragePool, path: str | None
) -> DataObjectInStore:
    """Delete the migrated volume's file on its old pool (a copy that only goes)."""
    leftover = DataObjectInStore.create(
        DataObjectInStore.Allocated,
        ctx,
        id=leftover_id(volume.id, pool.id, ctx.job_id),
        object_type=DataObjectType.VOLUME,
        object_id=volume.id,
        store_id=pool.id,
        store_role=StoreRole.Primary,
        parent_id=None,
    )
    leftover.request_destroy(
        ctx,
        DeleteCommand(
            commandId=transfer.command_id(ctx.causation_id, leftover.id, "delete"),
            data=transfer.volume_to(volume, pool).replace(path=path or str(volume.id)),
            wait=wait,
        ),
    )
    return leftover


def remove_stage(
    ctx: Ctx, wait: int, stage: DataObjectInStore, store: ImageStore
) -> None:
    """Delete the staged copy on the image store once the migration settled."""
    stage.request_destroy(
        ctx,
        DeleteCommand(
            commandId=transfer.command_id(ctx.causation_id, stage.id, "delete"),
            data=VolumeObjectTO(
                uuid=str(stage.object_id),
                name="stage",
                volumeType="DATADISK",
                size=stage.size or 0,
                dataStore=transfer.image_to(store),
                path=stage.install_path,
            ),
            wait=wait,
        ),
    )
