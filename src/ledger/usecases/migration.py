"""StorageMotion: a volume moved from one pool to another.

CloudStack (`VolumeOrchestrator.migrateVolume` → `VolumeServiceImpl.copyVolume`)
reserves the destination, copies (`qemu-img convert`, which flattens a linked clone),
and on success points the volume at its new pool and deletes the source; between
pools no host reaches together the copy is staged through the image store. Here the
one Volume records `PoolChanged` (CloudStack makes a new row), and a failure leaves it
Ready on its source with both pools' capacity as before.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate

from ledger import requests
from ledger.aggregate import Ctx
from ledger.allocation.chain import allocate
from ledger.allocation.views import Decision, Request
from ledger.app import Ledger
from ledger.copies import DataObjectInStore, stage_id
from ledger.errors import IllegalTransition, InvalidInput
from ledger.inventory import common_host, parking_store, view_of
from ledger.job import Job
from ledger.pool import StoragePool
from ledger.usecases.claims import job_in
from ledger.usecases.placement import limits, no_pool_message
from ledger.values import DataObjectType, VmState
from ledger.vm import VirtualMachine
from ledger.volume import Volume


def migrate_volume(
    ledger: Ledger, ctx: Ctx, volume_id: UUID, pool_ref: str, *, live: bool = False
) -> Job:
    def decide() -> list[Aggregate | None]:
        volume = ledger.load(Volume, volume_id)
        target = ledger.resolve(StoragePool, pool_ref)
        volume.next("MigrationRequested")  # refuses unless Ready
        if volume.pool_id is None:
            raise IllegalTransition(
                "Volume",
                str(volume.id),
                volume.state.name,
                "MigrationRequested",
                why="it has no pool yet",
                name=volume.name,
            )
        if target.id == volume.pool_id:
            raise InvalidInput("pool", pool_ref, "the volume is already there")
        if target.zone_id != volume.zone_id:
            raise InvalidInput("pool", pool_ref, f"not in zone {volume.zone_id}")
        if volume.vm_id is not None:
            _refuse_running(ledger, volume, live=live)
        source = ledger.load(StoragePool, volume.pool_id)
        job = Job.submit(
            ctx,
            "volume.migrate",
            "volume",
            volume.id,
            {"from": str(source.id), "to": str(target.id)},
        )
        request = Request(
            size=volume.size,
            zone_id=volume.zone_id,
            tags=tuple(volume.tags),
            pool_id=str(target.id),
        )
        refused = _judge(ledger, ctx, volume, request, target)
        if refused is not None:
            job.fail(ctx, no_pool_message(refused))
            return [volume, job]
        target.reserve(ctx, volume, volume.size, *limits(ledger))
        out: list[Aggregate | None] = [volume, job, target]
        wait = ledger.wait("copy.volume.wait")
        if common_host(ledger, source, target):
            requests.migrate_volume(ctx, wait, volume, source, target)
            return out
        store = parking_store(ledger, volume.zone_id)
        stage = DataObjectInStore.create(
            DataObjectInStore.Allocated,
            ctx,
            id=stage_id(volume.id, ctx.job_id),
            object_type=DataObjectType.VOLUME,
            object_id=volume.id,
            store_id=store.id,
            store_role=store.role,
            parent_id=None,
        )
        volume.request_migration(ctx, None)
        requests.stage_volume(ctx, wait, stage, volume, source, store)
        return [*out, stage]

    return job_in(ledger.atomic(decide, what="volume migrate"))


def _refuse_running(ledger: Ledger, volume: Volume, *, live: bool) -> None:
    """A volume of a running VM moves only live, which the kvm agent here cannot."""
    assert volume.vm_id is not None
    vm = ledger.load(VirtualMachine, volume.vm_id)
    if vm.state is VmState.Running and not live:
        raise IllegalTransition(
            "Volume",
            str(volume.id),
            volume.state.name,
            "MigrationRequested",
            why=f"attached to running VM {vm.name}",
            name=volume.name,
            then=f"stop it first (storctl vm stop {vm.name}), or --live",
        )
    if vm.state is VmState.Running:
        raise IllegalTransition(
            "Volume",
            str(volume.id),
            volume.state.name,
            "MigrationRequested",
            why="live migration with storage is not supported by the "
            "kvm agent here (no libvirt): stop the VM",
            name=volume.name,
        )


def _judge(
    ledger: Ledger, ctx: Ctx, volume: Volume, request: Request, target: StoragePool
) -> Decision | None:
    """Record the allocator's verdict on the target; the refusal, if any."""
    threshold = limits(ledger)[0]
    decision = allocate(request, [view_of(ledger, target, None)], threshold)
    chosen = UUID(decision.chosen) if decision.chosen else None
    volume.record_decision(ctx, request.as_dict(), decision.verdict_dicts(), chosen)
    return None if chosen else decision
