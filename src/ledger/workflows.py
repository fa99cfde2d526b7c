"""Workflows: the policy that decides the next step of an operation from each answer.

CloudStack chains callbacks (`createVolumeFromBaseImageCallback`, ...); here each
`...Answered` event is followed by a decision: the next request, the compensation of a
failure (release the reservation, put the volume back where CloudStack's table says),
or the settling of the job. The decisions are pure over the event and the aggregates
they load; the follower (`executors.engine`) saves what they return, with its tracking
record, in one transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from ledger.aggregate import Ctx
from ledger.copies import DataObjectInStore
from ledger.errors import StorctlError
from ledger.job import Job
from ledger.pool import StoragePool
from ledger.snapshot import Snapshot
from ledger.template import Template
from ledger.values import DataObjectType, StoreRole, VmState
from ledger.vm import VirtualMachine
from ledger.volume import Volume
from ledger.workflows_storage import Steps, StorageSteps

if TYPE_CHECKING:
    from ledger.service import Ledger

Decided = list[Aggregate | None]


def context_of(event: Any) -> Ctx:
    """The follow-up keeps the actor and job, and names the event that caused it."""
    return Ctx(
        actor=event.actor,
        job_id=event.job_id,
        causation_id=f"{event.originator_id}/{event.originator_version}",
    )


class Workflows(Steps):
    """Decides what follows each answer. Returns the aggregates to save (maybe none)."""

    def __init__(self, ledger: Ledger) -> None:
        super().__init__(ledger)
        self.storage = StorageSteps(ledger)

    def decide(self, event: Any) -> Decided:
        handler = {
            DataObjectInStore.DownloadAnswered: self.template_downloaded,
            DataObjectInStore.CopyAnswered: self.copy_answered,
            DataObjectInStore.DestroyAnswered: self.copy_destroyed,
            Snapshot.CreateAnswered: self.storage.snapshot_taken,
            Volume.RevertAnswered: self.storage.volume_reverted,
            Volume.ResizeAnswered: self.volume_resized,
            Volume.CreateAnswered: self.volume_created,
            Volume.CopyAnswered: self.volume_copied,
            Volume.AttachAnswered: self.volume_attached,
            Volume.DetachAnswered: self.volume_detached,
            Volume.ExpungeAnswered: self.volume_expunged,
        }.get(type(event))
        if handler is None:
            return []
        return handler(event, context_of(event))

    # ------------------------------------------------------------ templates

    def template_downloaded(self, event: Any, ctx: Ctx) -> Decided:
        copy = self.ledger.load(DataObjectInStore, event.originator_id)
        template = self.ledger.load(Template, copy.object_id)
        job = self._job(event)
        out: Decided = []
        if self._ok(event) and copy.size and template.size != copy.size:
            template.record_size(ctx, copy.size, copy.physical_size or 0)
            out.append(template)
        if job is not None and job.cmd == "template.register":
            if self._ok(event):
                job.succeed(ctx, {"templateid": str(template.id), "size": copy.size})
            else:
                job.fail(ctx, f"download failed: {self._details(event)}")
            out.append(job)
        return out

    def copy_answered(self, event: Any, ctx: Ctx) -> Decided:
        """A copy in a store answered: which workflow goes on depends on what it is
        a copy of, and where."""
        copy = self.ledger.load(DataObjectInStore, event.originator_id)
        if copy.object_type is DataObjectType.SNAPSHOT:
            return self.storage.snapshot_backed_up(event, ctx, copy)
        if copy.object_type is DataObjectType.VOLUME:
            return self.storage.stage_answered(event, ctx, copy)
        if copy.store_role is StoreRole.Image:
            return self.storage.template_created(event, ctx, copy)
        return self.template_cached(event, ctx)

    def template_cached(self, event: Any, ctx: Ctx) -> Decided:
        """The template's copy on a pool answered: clone for every waiting volume, or
        give their reservations back and fail their jobs."""
        copy = self.ledger.load(DataObjectInStore, event.originator_id)
        if copy.store_role is not StoreRole.Primary:
            return []
        pool = self.ledger.load(StoragePool, copy.store_id)
        template = self.ledger.load(Template, copy.object_id)
        out: Decided = [copy, pool]
        if not self._ok(event):
            pool.release(ctx, copy)
        for volume_id, job_id in copy.serve_waiters(ctx):
            volume = self.ledger.load(Volume, volume_id)
            vctx = Ctx(ctx.actor, job_id, ctx.causation_id)
            if self._ok(event):
                self.ledger.request_clone(vctx, volume, pool, template, copy)
                out.append(volume)
            else:
                copy.remove_child(vctx, volume_id)
                out += self._undo_placement(
                    vctx,
                    volume,
                    pool,
                    f"copying the template to pool {pool.name} failed: "
                    f"{self._details(event)}",
                )
        return out

    def copy_destroyed(self, event: Any, ctx: Ctx) -> Decided:
        copy = self.ledger.load(DataObjectInStore, event.originator_id)
        if not self._ok(event) and copy.retry_destroy(ctx):
            return [copy]
        if copy.object_type is DataObjectType.SNAPSHOT:
            return self.storage.snapshot_backup_destroyed(event, ctx, copy)
        if copy.object_type is DataObjectType.VOLUME:
            return self.storage.leftover_destroyed(event, ctx)
        if copy.store_role is StoreRole.Primary:
            return []  # storage cleanup: its reservation went back when it was chosen
        job = self._job(event)
        if job is None:
            return []
        if self._ok(event):
            job.succeed(ctx)
        else:
            job.fail(ctx, self._details(event))
        return [job]

    # ------------------------------------------------------------ volumes

    def _undo_placement(
        self, ctx: Ctx, volume: Volume, pool: StoragePool, error: str
    ) -> Decided:
        """CloudStack's failed create: the volume back to Allocated without a pool,
        its reservation released, the job failed with the agent's words."""
        pool.release(ctx, volume)
        volume.change_pool(ctx, None)
        out: Decided = [volume, pool]
        job = self.ledger.find(Job, UUID(ctx.job_id))
        if job is not None and not job.settled:
            job.fail(ctx, error)
            out.append(job)
        return out

    def volume_copied(self, event: Any, ctx: Ctx) -> Decided:
        job = self._job(event)
        if job is not None and job.cmd == "volume.migrate":
            return self.storage.migration_answered(event, ctx, job)
        return self.volume_created(event, ctx)

    def volume_created(self, event: Any, ctx: Ctx) -> Decided:
        volume = self.ledger.load(Volume, event.originator_id)
        job = self._job(event)
        if not self._ok(event):
            if volume.pool_id is None or event.trigger != "OperationFailed":
                return []
            pool = self.ledger.load(StoragePool, volume.pool_id)
            released = self.ledger.release_template_copy(ctx, volume)
            return released + self._undo_placement(
                ctx, volume, pool, self._details(event)
            )
        if job is None:
            return []
        if job.cmd == "volume.attach":
            vm = self.ledger.load(VirtualMachine, UUID(job.params["vm_id"]))
            try:
                self.ledger.request_attach(ctx, volume, vm)
            except StorctlError as exc:
                job.fail(ctx, str(exc))
                return [job]
            return [volume, vm]
        if job.cmd == "vm.deploy":
            vm = self.ledger.load(VirtualMachine, job.object_id)
            if vm.state is VmState.Stopped:
                vm.change_state(ctx, "StartRequested")
            job.succeed(ctx, {"vmid": str(vm.id), "volumeid": str(volume.id)})
            return [vm, job]
        job.succeed(ctx, {"volumeid": str(volume.id), "state": volume.state.name})
        return [job]

    def volume_resized(self, event: Any, ctx: Ctx) -> Decided:
        """A failed resize gives back what was reserved for the new size."""
        job = self._job(event)
        if job is None or job.cmd != "volume.resize":
            return []
        out: Decided = [job]
        if self._ok(event):
            job.succeed(ctx, {"size": job.params["size"]})
            return out
        volume = self.ledger.load(Volume, event.originator_id)
        if volume.pool_id is not None:
            pool = self.ledger.load(StoragePool, volume.pool_id)
            pool.shrink(ctx, volume, int(job.params["previous"]))
            out += [pool, volume]
        job.fail(ctx, f"resize failed: {self._details(event)}")
        return out

    def volume_attached(self, event: Any, ctx: Ctx) -> Decided:
        job = self._job(event)
        out: Decided = []
        if not self._ok(event) and job is not None and "vm_id" in job.params:
            vm = self.ledger.load(VirtualMachine, UUID(job.params["vm_id"]))
            vm.free_device(ctx, event.originator_id)
            out.append(vm)
        if job is not None:
            if self._ok(event):
                job.succeed(ctx, {"volumeid": str(event.originator_id)})
            else:
                job.fail(ctx, self._details(event))
            out.append(job)
        return out

    def volume_detached(self, event: Any, ctx: Ctx) -> Decided:
        job = self._job(event)
        out: Decided = []
        if self._ok(event) and job is not None and "vm_id" in job.params:
            vm = self.ledger.load(VirtualMachine, UUID(job.params["vm_id"]))
            vm.free_device(ctx, event.originator_id)
            out.append(vm)
        if job is not None:
            if self._ok(event):
                job.succeed(ctx)
            else:
                job.fail(ctx, self._details(event))
            out.append(job)
        return out

    def volume_expunged(self, event: Any, ctx: Ctx) -> Decided:
        out: Decided = []
        if self._ok(event):
            # its file is gone, and with it the last read of the template copy
            volume = self.ledger.load(Volume, event.originator_id)
            out += self.ledger.release_template_copy(ctx, volume)
        job = self._job(event)
        if job is None:
            return out
        if self._ok(event):
            job.succeed(ctx, {"state": event.to_state.name})
        else:
            job.fail(ctx, self._details(event))
        return [*out, job]
