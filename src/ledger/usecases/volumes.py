"""Volumes: create, attach, detach, delete, recover, expunge, resize.

CloudStack's `createVolume` (a data disk stays Allocated until it is attached, or
is created at once on an operator's `--pool`), `attachVolume`, `detachVolume`,
`deleteVolume` (destroy, recoverable), `recoverVolume`, `expungeVolume` and
`resizeVolume`, each guarded by the Volume state machine.
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
from ledger.errors import IllegalTransition, InvalidInput, NotFound
from ledger.host import Host
from ledger.inventory import pool_of
from ledger.job import Job
from ledger.pool import StoragePool
from ledger.usecases.claims import job_in
from ledger.usecases.placement import candidates_of, limits, no_pool_message, place
from ledger.values import VmState, VolumeState, VolumeType
from ledger.vm import VirtualMachine
from ledger.volume import Volume
from ledger.zone import Zone, zone_id_for


def create_volume(
    ledger: Ledger,
    ctx: Ctx,
    *,
    name: str,
    zone: str,
    size: int,
    pool_ref: str | None = None,
    tags: list[str] | None = None,
) -> Job:
    """CloudStack's createVolume: without a pool the volume stays Allocated
    until it is attached; with `--pool` it is created there at once."""
    with ledger.one_settings_read():
        return _create_volume(ledger, ctx, name, zone, size, pool_ref, tags)


def _create_volume(
    ledger: Ledger,
    ctx: Ctx,
    name: str,
    zone: str,
    size: int,
    pool_ref: str | None,
    tags: list[str] | None,
) -> Job:
    if not name or len(name) > 255 or any(c in name for c in "\0\n\r"):
        raise InvalidInput("volume name", name, "1-255 printable characters")
    minimum = int(ledger.settings().get("custom.diskoffering.size.min"))
    if size < minimum:
        raise InvalidInput(
            "size", str(size), f"below custom.diskoffering.size.min {minimum}"
        )
    try:
        ledger.peek(Zone, zone_id_for(zone))  # read only: not copied
    except NotFound:
        raise NotFound("zone", zone) from None
    pool_id = ledger.resolve(StoragePool, pool_ref).id if pool_ref else None
    volume_id = uuid.uuid4()

    def decide() -> list[Aggregate | None]:
        volume = Volume.allocate(
            ctx,
            id=volume_id,
            name=name,
            volume_type=VolumeType.DATADISK,
            size=size,
            zone_id=zone,
            template_id=None,
            snapshot_id=None,
            vm_id=None,
            device_id=None,
            tags=list(tags or []),
        )
        job = Job.submit(ctx, "volume.create", "volume", volume_id)
        if pool_id is None:
            job.succeed(ctx, {"state": volume.state.name})
            return [volume, job]
        request = Request(
            size=size, zone_id=zone, tags=tuple(tags or ()), pool_id=str(pool_id)
        )
        decision, pool, cleaned = place(ledger, ctx, volume, request)
        if pool is None:
            job.fail(ctx, no_pool_message(decision))
            return [volume, job, *abandon_volume(ledger, ctx, job, volume)]
        requests.create_volume(ctx, ledger.wait("wait"), volume, pool)
        return [volume, job, pool, *cleaned]

    return job_in(ledger.atomic(decide, what=f"volume create {name}"))


def attach_volume(ledger: Ledger, ctx: Ctx, volume_id: UUID, vm_ref: str) -> Job:
    """Attach a data disk; one never created is placed near the VM's host first
    and attached once it is created (the workflows' step). Only that placement
    needs the candidates caught up."""
    if ledger.peek(Volume, volume_id).pool_id is None:
        candidates_of(ledger).refresh()
    with ledger.one_settings_read():
        return _attach_volume(ledger, ctx, volume_id, vm_ref)


def _attach_volume(ledger: Ledger, ctx: Ctx, volume_id: UUID, vm_ref: str) -> Job:
    def decide() -> list[Aggregate | None]:
        volume = ledger.load(Volume, volume_id)
        vm = ledger.resolve(VirtualMachine, vm_ref)
        if volume.volume_type is not VolumeType.DATADISK:
            raise IllegalTransition(
                "Volume",
                str(volume.id),
                volume.state.name,
                "AttachRequested",
                why="only data disks attach",
                name=volume.name,
            )
        if vm.state in (VmState.Destroyed, VmState.Expunging):
            raise IllegalTransition(
                "VirtualMachine",
                str(vm.id),
                vm.state.name,
                "AttachRequested",
                name=vm.name,
            )
        if volume.zone_id != vm.zone_id:
            raise InvalidInput(
                "vm", vm_ref, f"not in the volume's zone {volume.zone_id}"
            )
        if volume.vm_id is not None:
            raise IllegalTransition(
                "Volume",
                str(volume.id),
                volume.state.name,
                "AttachRequested",
                why=f"attached to VM {ledger.peek(VirtualMachine, volume.vm_id).name}",
                name=volume.name,
                then=f"detach it first (storctl volume detach {volume.name})",
            )
        job = Job.submit(
            ctx, "volume.attach", "volume", volume.id, {"vm_id": str(vm.id)}
        )
        if volume.state is VolumeState.Allocated and volume.pool_id is None:
            host = ledger.load(Host, vm.host_id)
            request = Request(
                size=volume.size,
                zone_id=volume.zone_id,
                cluster_id=host.cluster_id,
                host_id=str(host.id),
                tags=tuple(volume.tags),
            )
            decision, pool, cleaned = place(ledger, ctx, volume, request)
            if pool is None:
                job.fail(ctx, no_pool_message(decision))
                return [volume, job]
            requests.create_volume(ctx, ledger.wait("wait"), volume, pool)
            return [volume, job, pool, *cleaned]
        if volume.state is not VolumeState.Ready:
            volume.next("AttachRequested")  # raises IllegalTransition with the state
        assert volume.pool_id is not None
        disk_pool = ledger.peek(StoragePool, volume.pool_id)  # read only: the path
        requests.attach_volume(ctx, ledger.wait("wait"), volume, disk_pool, vm)
        return [volume, job, vm]

    return job_in(ledger.atomic(decide, what="volume attach"))


def detach_volume(ledger: Ledger, ctx: Ctx, volume_id: UUID) -> Job:
    def decide() -> list[Aggregate | None]:
        volume = ledger.load(Volume, volume_id)
        if volume.vm_id is None or volume.pool_id is None:
            raise IllegalTransition(
                "Volume",
                str(volume.id),
                volume.state.name,
                "DetachRequested",
                why="not attached",
                name=volume.name,
            )
        # read only: the command names them (the answer's workflow frees the device)
        vm = ledger.peek(VirtualMachine, volume.vm_id)
        pool = ledger.peek(StoragePool, volume.pool_id)
        job = Job.submit(
            ctx, "volume.detach", "volume", volume.id, {"vm_id": str(vm.id)}
        )
        requests.detach_volume(ctx, ledger.wait("wait"), volume, pool, vm)
        return [volume, job]

    return job_in(ledger.atomic(decide, what="volume detach"))


def delete_volume(ledger: Ledger, ctx: Ctx, volume_id: UUID) -> Job:
    """Destroy (recoverable) a created volume; a never-created one is expunged,
    since there is no file to keep (CloudStack's rule)."""

    def decide() -> list[Aggregate | None]:
        volume = ledger.load(Volume, volume_id)
        job = Job.submit(ctx, "volume.delete", "volume", volume.id)
        pool = pool_of(ledger, volume)
        volume.destroy(ctx)
        if volume.path is None:
            volume.request_expunge(ctx, None)  # nothing on primary to keep
        if pool is not None:
            pool.release(ctx, volume)
        job.succeed(ctx, {"state": volume.state.name})
        return [volume, job, pool]

    return job_in(ledger.atomic(decide, what="volume delete"))


def recover_volume(ledger: Ledger, ctx: Ctx, volume_id: UUID) -> Job:
    def decide() -> list[Aggregate | None]:
        volume = ledger.load(Volume, volume_id)
        volume.recover(ctx)
        job = Job.submit(ctx, "volume.recover", "volume", volume.id)
        pool = pool_of(ledger, volume)
        if pool is not None:
            pool.reserve(ctx, volume, volume.size, *limits(ledger))
        job.succeed(ctx, {"state": volume.state.name})
        return [volume, job, pool]

    return job_in(ledger.atomic(decide, what="volume recover"))


def expunge_volume(ledger: Ledger, ctx: Ctx, volume_id: UUID) -> Job:
    def decide() -> list[Aggregate | None]:
        volume = ledger.load(Volume, volume_id)
        job = Job.submit(ctx, "volume.expunge", "volume", volume.id)
        pool = pool_of(ledger, volume)
        if volume.state is VolumeState.Allocated:
            volume.destroy(ctx)
            if pool is not None:
                pool.release(ctx, volume)
        if not requests.expunge_volume(ctx, ledger.wait("wait"), volume, pool):
            job.succeed(ctx, {"state": volume.state.name})
        return [volume, job, pool]

    return job_in(ledger.atomic(decide, what="volume expunge"))


def resize_volume(ledger: Ledger, ctx: Ctx, volume_id: UUID, new_size: int) -> Job:
    """CloudStack's resizeVolume: Ready -> Resizing -> Ready. Growing reserves
    the difference first; shrinking is refused (data would be cut)."""

    def decide() -> list[Aggregate | None]:
        volume = ledger.load(Volume, volume_id)
        if new_size < volume.size:
            raise InvalidInput(
                "size", str(new_size), f"smaller than the volume ({volume.size})"
            )
        if new_size == volume.size:
            raise InvalidInput("size", str(new_size), "the volume is that size")
        volume.next("ResizeRequested")  # refuses unless Ready
        job = Job.submit(ctx, "volume.resize", "volume", volume.id,
                         {"size": new_size, "previous": volume.size})  # fmt: skip
        if volume.pool_id is None:
            raise IllegalTransition(
                "Volume",
                str(volume.id),
                volume.state.name,
                "ResizeRequested",
                why="not created yet",
                name=volume.name,
            )
        pool = ledger.load(StoragePool, volume.pool_id)
        pool.grow(ctx, volume, new_size, *limits(ledger))
        requests.resize_volume(ctx, ledger.wait("wait"), volume, pool, new_size)
        return [volume, job, pool]

    return job_in(ledger.atomic(decide, what="volume resize"))
