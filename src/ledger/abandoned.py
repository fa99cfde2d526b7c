"""A create that failed before anything was made: the object goes, its name is free.

CloudStack leaves such an object behind for the operator to destroy (a data disk
back in Allocated, a VM in Error that its expunge thread removes later). storctl
settles it in the same save as the failed job instead: the never-created volume is
destroyed and expunged (no file on primary storage, so no host work), the VM
deployed on it is destroyed and expunged with its name claim released, a template
whose every download failed is deleted with its claim. The events stay, so the
failure is still in the journal, `history` and `job show`; what goes is the live
row that would make a retry's `volume create big-5` the second `big-5`.

Only the object the failed job itself was creating goes: a volume created by an
operator earlier and placed by a failed `volume attach` stays Allocated, as in
CloudStack.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate

from ledger import requests, transfer
from ledger.aggregate import Ctx
from ledger.app import Ledger
from ledger.copies import GONE, DataObjectInStore
from ledger.image_store import ImageStore
from ledger.inventory import find_claim
from ledger.job import Job
from ledger.names import NameClaim
from ledger.template import Template
from ledger.values import VmState, VolumeState
from ledger.vm import VirtualMachine
from ledger.volume import Volume

#: the jobs whose failure before the volume was made leaves nothing behind
CREATING_JOBS = ("volume.create", "vm.deploy")


def created_by(job: Job | None, volume: Volume) -> bool:
    """Whether `job` was the one creating `volume` (not an attach of an old one)."""
    if job is None or job.cmd not in CREATING_JOBS:
        return False
    if job.cmd == "volume.create":
        return job.object_id == volume.id
    return str(job.params.get("volume_id")) == str(volume.id)


def abandon_volume(
    ledger: Ledger,
    ctx: Ctx,
    job: Job | None,
    volume: Volume,
    deployed: tuple[VirtualMachine, NameClaim] | None = None,
) -> list[Aggregate]:
    """The never-created volume of a failed create (and its VM, for a deploy)
    destroyed and expunged; nothing when `job` was not creating it or it was
    made after all. `deployed` is the VM and its claim when they are not saved
    yet (a deploy refused in the decision that made them)."""
    if job is None or not job.settled or not created_by(job, volume):
        return []
    if volume.state is not VolumeState.Allocated or volume.pool_id is not None:
        return []
    if volume.path is not None:
        return []
    out: list[Aggregate] = [volume]
    volume.destroy(ctx, with_vm=True)
    volume.request_expunge(ctx, None)  # nothing on primary to delete
    if job.cmd == "vm.deploy":
        vm, claim = deployed or _deployed(ledger, job.object_id)
        out += abandon_vm(ctx, vm, claim)
    return out


def _deployed(ledger: Ledger, vm_id: UUID) -> tuple[VirtualMachine, NameClaim | None]:
    vm = ledger.load(VirtualMachine, vm_id)
    return vm, find_claim(ledger, "vm", vm.name)


def abandon_vm(
    ctx: Ctx, vm: VirtualMachine, claim: NameClaim | None
) -> list[Aggregate]:
    """A VM whose deploy failed: CloudStack's Error then expunge, in one step
    (storctl's VM table has no Error: Destroyed then Expunging, where a VM ends)."""
    out: list[Aggregate] = [vm]
    if vm.state in (VmState.Stopped, VmState.Running):
        vm.change_state(ctx, "DestroyRequested")
    if vm.state is VmState.Destroyed:
        vm.change_state(ctx, "ExpungeRequested")
    if claim is not None and not claim.released and claim.object_id == vm.id:
        claim.release(ctx)
        out.append(claim)
    return out


def abandon_template(
    ledger: Ledger, ctx: Ctx, template: Template, copies: list[DataObjectInStore]
) -> list[Aggregate]:
    """A template none of whose image-store downloads succeeded or is still
    running: deleted, its name claim released, and each copy's delete sent to
    where the download would have landed (a failed download may leave parts
    there, as `template delete` would clean them)."""
    if template.removed or not copies:
        return []
    if any(c.pending is not None or c.is_ready for c in copies):
        return []
    template.delete(ctx)
    out: list[Aggregate] = [template, *copies]
    for copy in copies:
        if copy.state in GONE:
            continue
        store = ledger.peek(ImageStore, copy.store_id)  # read only: its address
        to = transfer.image_to(store)
        requests.delete_template_copy(ctx, ledger.wait("wait"), copy, template, to)
    claim = find_claim(ledger, "template", template.name)
    if claim is not None and not claim.released and claim.object_id == template.id:
        claim.release(ctx)
        out.append(claim)
    return out
