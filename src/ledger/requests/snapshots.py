"""Commands on snapshots: take on primary, back up (full or delta), delete a
backup, revert a volume, restore a new volume from a backup."""

from __future__ import annotations

from eventsourcing.domain import Aggregate

from ledger import transfer
from ledger.aggregate import Ctx
from ledger.commands import (
    CopyCommand,
    CreateObjectCommand,
    DeleteCommand,
    RevertSnapshotCommand,
)
from ledger.copies import DataObjectInStore
from ledger.image_store import ImageStore
from ledger.pool import StoragePool
from ledger.snapshot import Snapshot
from ledger.values import DataObjectType, StoreRole
from ledger.volume import Volume


def take_snapshot(
    ctx: Ctx, wait: int, snapshot: Snapshot, volume: Volume, pool: StoragePool
) -> None:
    """`takeSnapshot` on primary: a `CreateObjectCommand` of a snapshot object."""
    snapshot.request_create(
        ctx,
        CreateObjectCommand(
            commandId=transfer.command_id(ctx.causation_id, snapshot.id, "take"),
            data=transfer.snapshot_to(
                snapshot, volume, pool, transfer.primary_to(pool)
            ),
            wait=wait,
        ),
    )


def back_up_snapshot(
    ctx: Ctx,
    wait: int,
    snapshot: Snapshot,
    volume: Volume,
    pool: StoragePool,
    store: ImageStore,
    parent: DataObjectInStore | None,
    cache: ImageStore | None = None,
) -> list[Aggregate]:
    """`backupSnapshot`: primary to the image store, full or as a delta of
    `parent`; the new `snapshot_store_ref` copy and what changed. To an S3 or
    Swift store the agent writes to `cache` first, then uploads (`cacheTO`)."""
    copy = DataObjectInStore.allocate(
        ctx,
        DataObjectType.SNAPSHOT,
        snapshot.id,
        store.id,
        StoreRole.Image,
        parent_id=parent.id if parent else None,
    )
    copy.request_copy(
        ctx,
        CopyCommand(
            commandId=transfer.command_id(ctx.causation_id, copy.id, "backup"),
            srcTO=transfer.snapshot_to(
                snapshot, volume, pool, transfer.primary_to(pool), path=snapshot.path
            ),
            destTO=transfer.snapshot_to(
                snapshot,
                volume,
                pool,
                transfer.image_to(store),
                parent_path=parent.install_path if parent else None,
            ),
            wait=wait,
            options={
                "removeAfterCopy": "true",
                "full": "false" if parent else "true",
            },
            cacheTO=transfer.image_to(cache) if cache else None,
        ),
    )
    snapshot.request_backup(ctx, None)
    out: list[Aggregate] = [copy, snapshot]
    if parent is not None:
        parent.add_child(ctx, copy.id)
        out.append(parent)
    return out


def delete_backup(
    ctx: Ctx,
    wait: int,
    copy: DataObjectInStore,
    snapshot: Snapshot,
    volume: Volume,
    pool: StoragePool,
    store: ImageStore,
) -> None:
    """`deleteSnapshot` on the image store."""
    copy.request_destroy(
        ctx,
        DeleteCommand(
            commandId=transfer.command_id(ctx.causation_id, copy.id, "delete"),
            data=transfer.snapshot_to(
                snapshot, volume, pool, transfer.image_to(store), path=copy.install_path
            ),
            wait=wait,
        ),
    )


def delete_on_primary(
    ctx: Ctx, wait: int, snapshot: Snapshot, volume: Volume, pool: StoragePool
) -> None:
    """`deleteSnapshot` of a snapshot kept on primary only: the `DeleteCommand`
    with the snapshot object on the pool it was taken on, at its path there
    (`primary_path`), for the pool's driver (`rbd snap rm`)."""
    snapshot.request_destroy(
        ctx,
        DeleteCommand(
            commandId=transfer.command_id(ctx.causation_id, snapshot.id, "delete"),
            data=transfer.snapshot_to(
                snapshot,
                volume,
                pool,
                transfer.primary_to(pool),
                path=snapshot.primary_path,
            ),
            wait=wait,
        ),
    )


def revert_snapshot(
    ctx: Ctx,
    wait: int,
    volume: Volume,
    pool: StoragePool,
    backup: tuple[Snapshot, DataObjectInStore, ImageStore],
) -> None:
    """`RevertSnapshotCommand`: the backed-up snapshot over the volume's file."""
    snapshot, copy, store = backup
    volume.request_revert(
        ctx,
        RevertSnapshotCommand(
            commandId=transfer.command_id(ctx.causation_id, volume.id, "revert"),
            data=transfer.snapshot_to(
                snapshot, volume, pool, transfer.image_to(store), path=copy.install_path
            ),
            wait=wait,
        ),
        snapshot.id,
    )


def restore_volume(
    ctx: Ctx,
    wait: int,
    volume: Volume,
    pool: StoragePool,
    source: Volume,
    backup: tuple[Snapshot, DataObjectInStore, ImageStore],
    cache: ImageStore | None = None,
) -> None:
    """`createVolumeFromSnapshot`: the backup copied onto the chosen pool (from
    an S3 or Swift store through `cache`)."""
    snapshot, copy, store = backup
    volume.request_copy(
        ctx,
        CopyCommand(
            commandId=transfer.command_id(ctx.causation_id, volume.id, "restore"),
            srcTO=transfer.snapshot_to(
                snapshot, source, pool, transfer.image_to(store), path=copy.install_path
            ),
            destTO=transfer.volume_to(volume, pool),
            wait=wait,
            cacheTO=transfer.image_to(cache) if cache else None,
        ),
        "CreateRequested",
    )
