"""A create that failed before anything was made: the object goes, its name is free.

CloudStack leaves such an object behind for the operator to destroy (a data disk
back in Allocated, a VM in Error that its expunge thread removes later). storctl
settles it in the same save as the failed job instead: the never-created volume is
destroyed and expunged (no file on primary storage, so no host work), the VM
deployed on it is destroyed and expunged with its name claim released. The events
stay, so the failure is still in the journal, `history` and `job show`; what goes
is the live row that would make a retry's `volume create big-5` the second `big-5`.

A template whose download failed is not one of them: a download may fail having
made something (the parts of an S3 multipart upload the store could not abort
while it was down), so it stays until `template delete`, which removes them.

Only the object the failed job itself was creating goes: a volume created by an
operator earlier and placed by a failed `volume attach` stays Allocated, as in
CloudStack.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate

from ledger.aggregate import Ctx
from ledger.app import Ledger
from ledger.inventory import find_claim
from ledger.job import Job
from ledger.names import NameClaim
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
