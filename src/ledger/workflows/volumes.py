"""Steps after a volume's own command answered: created (or cloned, or restored),
attached, detached, resized, expunged.

CloudStack's `createVolumeCallback`, `createVolumeFromBaseImageCallback` and the
attach, detach, resize and expunge completions; a copy that is a migration goes to
`migration.migration_answered`.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from ledger import requests
from ledger.aggregate import Ctx
from ledger.app import Ledger
from ledger.errors import StorctlError
from ledger.pool import StoragePool
from ledger.values import VmState
from ledger.vm import VirtualMachine
from ledger.volume import Volume
from ledger.workflows.answers import Decided, details, ok, pending_job, settle
from ledger.workflows.compensation import release_template_copy, undo_placement
from ledger.workflows.migration import migration_answered


def volume_copied(ledger: Ledger, event: Any, ctx: Ctx) -> Decided:
    job = pending_job(ledger, event)
    if job is not None and job.cmd == "volume.migrate":
        return migration_answered(ledger, event, ctx, job)
    return volume_created(ledger, event, ctx)


def volume_created(ledger: Ledger, event: Any, ctx: Ctx) -> Decided:
    volume = ledger.load(Volume, event.originator_id)
    job = pending_job(ledger, event)
    if not ok(event):
        if volume.pool_id is None or event.trigger != "OperationFailed":
            return []
        pool = ledger.load(StoragePool, volume.pool_id)
        released = release_template_copy(ledger, ctx, volume)
        return [
            *released,
            *undo_placement(ledger, ctx, volume, pool, details(event)),
        ]
    if job is None:
        return []
    if job.cmd == "volume.attach":
        vm = ledger.load(VirtualMachine, UUID(job.params["vm_id"]))
        assert volume.pool_id is not None
        try:
            pool = ledger.peek(StoragePool, volume.pool_id)  # read only: its path
            requests.attach_volume(ctx, ledger.wait("wait"), volume, pool, vm)
        except StorctlError as exc:
            job.fail(ctx, str(exc))
            return [job]
        return [volume, vm]
    if job.cmd == "vm.deploy":
        vm = ledger.load(VirtualMachine, job.object_id)
        if vm.state is VmState.Stopped:
            vm.change_state(ctx, "StartRequested")
        job.succeed(ctx, {"vmid": str(vm.id), "volumeid": str(volume.id)})
        return [vm, job]
    job.succeed(ctx, {"volumeid": str(volume.id), "state": volume.state.name})
    return [job]


def volume_resized(ledger: Ledger, event: Any, ctx: Ctx) -> Decided:
    """A failed resize gives back what was reserved for the new size."""
    job = pending_job(ledger, event)
    if job is None or job.cmd != "volume.resize":
        return []
    out: Decided = [job]
    if ok(event):
        job.succeed(ctx, {"size": job.params["size"]})
        return out
    volume = ledger.load(Volume, event.originator_id)
    if volume.pool_id is not None:
        pool = ledger.load(StoragePool, volume.pool_id)
        pool.shrink(ctx, volume, int(job.params["previous"]))
        out += [pool, volume]
    job.fail(ctx, f"resize failed: {details(event)}")
    return out


def volume_attached(ledger: Ledger, event: Any, ctx: Ctx) -> Decided:
    job = pending_job(ledger, event)
    out: Decided = []
    if not ok(event) and job is not None and "vm_id" in job.params:
        vm = ledger.load(VirtualMachine, UUID(job.params["vm_id"]))
        vm.free_device(ctx, event.originator_id)
        out.append(vm)
    return out + settle(job, ctx, event, {"volumeid": str(event.originator_id)}, "")


def volume_detached(ledger: Ledger, event: Any, ctx: Ctx) -> Decided:
    job = pending_job(ledger, event)
    out: Decided = []
    if ok(event) and job is not None and "vm_id" in job.params:
        vm = ledger.load(VirtualMachine, UUID(job.params["vm_id"]))
        vm.free_device(ctx, event.originator_id)
        out.append(vm)
    return out + settle(job, ctx, event, {}, "")


def volume_expunged(ledger: Ledger, event: Any, ctx: Ctx) -> Decided:
    out: Decided = []
    if ok(event):
        # its file is gone, and with it the last read of the template copy
        volume = ledger.load(Volume, event.originator_id)
        out += release_template_copy(ledger, ctx, volume)
    return out + settle(
        pending_job(ledger, event), ctx, event, {"state": event.to_state.name}, ""
    )
