"""Snapshots: take, delete (chains kept restorable), revert, and volumes made from
snapshots.

CloudStack's `DefaultSnapshotStrategy`: the snapshot is taken on primary
(`CreateObjectCommand` with a snapshot object), then backed up to the image store
(`CopyCommand` primary → secondary, the workflows' step), full or as a delta of the
previous snapshot until `snapshot.delta.max` deltas follow a full one. A snapshot
that a later delta still needs is deleted for the user but its file stays, hidden,
until the last dependent goes (`DefaultSnapshotStrategy.deleteSnapshotChain`).
"""

from __future__ import annotations

import uuid
from uuid import UUID

from eventsourcing.domain import Aggregate

from ledger import requests
from ledger.abandoned import abandon_volume
from ledger.aggregate import Ctx
from ledger.allocation.views import Request
from ledger.app import Ledger
from ledger.copies import DataObjectInStore
from ledger.errors import IllegalTransition, InvalidInput
from ledger.image_store import ImageStore
from ledger.inventory import backup_of, staging_for
from ledger.job import Job
from ledger.pool import StoragePool
from ledger.snapshot import Snapshot
from ledger.usecases.claims import job_in
from ledger.usecases.placement import candidates_of, no_pool_message, place
from ledger.values import SnapshotState, VmState, VolumeState, VolumeType
from ledger.vm import VirtualMachine
from ledger.volume import Volume


def backed_up(
    ledger: Ledger, ref: str
) -> tuple[Snapshot, DataObjectInStore, ImageStore]:
    """A snapshot to restore from, with its backup and the store that holds it;
    refused unless it is BackedUp."""
    snapshot = ledger.resolve(Snapshot, ref)
    copy = backup_of(ledger, snapshot)
    if snapshot.state is not SnapshotState.BackedUp or copy is None:
        raise IllegalTransition(
            "Snapshot",
            str(snapshot.id),
            snapshot.state.name,
            "use",
            why="only a BackedUp snapshot can be restored from",
            name=snapshot.name,
        )
    return snapshot, copy, ledger.load(ImageStore, copy.store_id)


def backup_site(
    ledger: Ledger, copy: DataObjectInStore, snapshot: Snapshot
) -> tuple[Volume, StoragePool, ImageStore]:
    """What deleting a backup's file names: its volume, the pool the volume is
    (or was) on, the image store."""
    volume = ledger.load(Volume, snapshot.volume_id)
    store = ledger.load(ImageStore, copy.store_id)
    pool_id = volume.pool_id or volume.last_pool_id
    if pool_id is None:
        raise InvalidInput("snapshot", str(snapshot.id), "its volume has no pool")
    return volume, ledger.load(StoragePool, pool_id), store


def primary_site(ledger: Ledger, snapshot: Snapshot) -> tuple[Volume, StoragePool]:
    """The snapshot's volume and the pool its primary copy is on (the pool it
    was taken on: the volume may have moved since)."""
    volume = ledger.load(Volume, snapshot.volume_id)
    pool_id = snapshot.primary_pool_id or volume.pool_id or volume.last_pool_id
    if pool_id is None:
        raise InvalidInput("snapshot", str(snapshot.id), "its volume has no pool")
    return volume, ledger.load(StoragePool, UUID(str(pool_id)))


def snapshot_volume(
    ledger: Ledger, ctx: Ctx, volume_id: UUID, name: str | None = None
) -> Job:
    snapshot_id = uuid.uuid4()

    def decide() -> list[Aggregate | None]:
        volume = ledger.load(Volume, volume_id)
        if volume.pool_id is None or volume.state is not VolumeState.Ready:
            volume.next("SnapshotRequested")  # refuses with the volume's state
        assert volume.pool_id is not None
        pool = ledger.peek(StoragePool, volume.pool_id)  # read only: paths
        if not pool.can("snapshots"):
            raise IllegalTransition(
                "Volume",
                str(volume.id),
                volume.state.name,
                "SnapshotRequested",
                why=f"pool {pool.name}'s provider takes no snapshots",
                name=volume.name,
            )
        snapshot = Snapshot.create(
            Snapshot.Allocated,
            ctx,
            id=snapshot_id,
            name=name or f"{volume.name}-{snapshot_id.hex[:8]}",
            volume_id=volume.id,
            prev_snapshot_id=volume.snapshot_head,
            size=volume.size,
        )
        volume.request_snapshot(ctx, snapshot.id)
        requests.take_snapshot(
            ctx, ledger.wait("backup.snapshot.wait"), snapshot, volume, pool
        )
        job = Job.submit(
            ctx,
            "snapshot.create",
            "snapshot",
            snapshot.id,
            {"volume_id": str(volume.id)},
        )
        return [volume, snapshot, job]

    return job_in(ledger.atomic(decide, what="snapshot create"))


def delete_plan(snapshot: Snapshot, copy: DataObjectInStore | None) -> str:
    """What deleting `snapshot` sends (CloudStack's `DefaultSnapshotStrategy.
    deleteSnapshot`): `backup`, the `DeleteCommand` on the image store (whose
    driver also removes a native snapshot the volume's pool keeps); `hidden`,
    nothing, the backup kept for a later delta; `primary`, with no backup, the
    `DeleteCommand` on the pool the snapshot is kept on (an RBD snapshot not
    backed up would else stay on Ceph, an orphan); `none`, nothing anywhere."""
    if copy is None or copy.install_path is None:
        return "none" if snapshot.primary_path is None else "primary"
    return "hidden" if copy.children else "backup"


def delete_snapshot(ledger: Ledger, ctx: Ctx, ref: str) -> Job:
    def decide() -> list[Aggregate | None]:
        snapshot = ledger.resolve(Snapshot, ref)
        job = Job.submit(ctx, "snapshot.delete", "snapshot", snapshot.id)
        copy = backup_of(ledger, snapshot)
        plan = delete_plan(snapshot, copy)
        out: list[Aggregate | None] = [snapshot, job, copy]
        if plan == "primary":
            volume, pool = primary_site(ledger, snapshot)
            requests.delete_on_primary(ctx, ledger.wait("wait"), snapshot, volume, pool)
            return out
        snapshot.request_destroy(ctx, None)
        if plan == "none":
            snapshot.finish_destroy(ctx, ok=True)
            job.succeed(ctx)
        elif plan == "hidden":
            assert copy is not None
            # A later delta needs this file: gone for the user, kept on disk.
            copy.hide(ctx)
            snapshot.finish_destroy(ctx, ok=True, details="kept hidden for a delta")
            job.succeed(ctx, {"hidden": True})
        else:
            assert copy is not None
            volume, pool, store = backup_site(ledger, copy, snapshot)
            requests.delete_backup(
                ctx, ledger.wait("wait"), copy, snapshot, volume, pool, store
            )
        return out

    return job_in(ledger.atomic(decide, what="snapshot delete"))


def revert_snapshot(ledger: Ledger, ctx: Ctx, ref: str) -> Job:
    def decide() -> list[Aggregate | None]:
        backup = backed_up(ledger, ref)
        snapshot = backup[0]
        volume = ledger.load(Volume, snapshot.volume_id)
        if volume.vm_id is not None:
            vm = ledger.load(VirtualMachine, volume.vm_id)
            if vm.state is VmState.Running:
                raise IllegalTransition(
                    "VirtualMachine",
                    str(vm.id),
                    vm.state.name,
                    "RevertSnapshotRequested",
                    name=vm.name,
                    # on KVM a snapshot is reverted with the VM stopped
                    then=f"stop it first (storctl vm stop {vm.name})",
                )
        if volume.pool_id is None:
            volume.next("RevertSnapshotRequested")
        assert volume.pool_id is not None
        pool = ledger.load(StoragePool, volume.pool_id)
        job = Job.submit(
            ctx,
            "snapshot.revert",
            "volume",
            volume.id,
            {"snapshot_id": str(snapshot.id)},
        )
        requests.revert_snapshot(
            ctx, ledger.wait("copy.volume.wait"), volume, pool, backup
        )
        return [volume, job]

    return job_in(ledger.atomic(decide, what="snapshot revert"))


def create_volume_from_snapshot(
    ledger: Ledger,
    ctx: Ctx,
    *,
    name: str,
    snapshot_ref: str,
    zone: str | None = None,
    pool_ref: str | None = None,
) -> Job:
    """CloudStack's createVolume from a snapshot: placed like a new disk, then
    the backup copied onto the chosen pool."""
    backup = backed_up(ledger, snapshot_ref)
    snapshot = backup[0]
    source = ledger.load(Volume, snapshot.volume_id)
    zone = zone or source.zone_id
    if zone != source.zone_id:
        raise InvalidInput("zone", zone, f"the snapshot is in zone {source.zone_id}")
    pool_id = ledger.resolve(StoragePool, pool_ref).id if pool_ref else None
    volume_id = uuid.uuid4()
    placed_in = zone

    def decide() -> list[Aggregate | None]:
        volume = Volume.allocate(
            ctx,
            id=volume_id,
            name=name,
            volume_type=VolumeType.DATADISK,
            size=snapshot.size,
            zone_id=placed_in,
            snapshot_id=snapshot.id,
            tags=list(source.tags),
        )
        job = Job.submit(
            ctx,
            "volume.create",
            "volume",
            volume_id,
            {"snapshot_id": str(snapshot.id)},
        )
        request = Request(
            size=snapshot.size,
            zone_id=placed_in,
            tags=tuple(source.tags),
            pool_id=str(pool_id) if pool_id else None,
        )
        decision, pool, cleaned = place(ledger, ctx, volume, request)
        if pool is None:
            job.fail(ctx, no_pool_message(decision))
            return [volume, job, *abandon_volume(ledger, ctx, job, volume)]
        requests.restore_volume(
            ctx,
            ledger.wait("copy.volume.wait"),
            volume,
            pool,
            source,
            backup,
            cache=staging_for(ledger, backup[2]),
        )
        return [volume, job, pool, *cleaned]

    if pool_id is None:  # an operator's --pool needs no candidates
        candidates_of(ledger).refresh()
    return job_in(ledger.atomic(decide, what=f"volume create {name}"))
