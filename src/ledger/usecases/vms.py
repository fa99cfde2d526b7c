"""Virtual machines, as far as storage needs them: deploy, start/stop, destroy.

`deploy_vm` is CloudStack's seed chain (`deployVirtualMachine` → allocate the ROOT
volume → choose a pool → copy the template to primary once → clone); this function
takes the first step, the workflows the rest.
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
from ledger.inventory import find_claim, pool_of, ready_image_copy
from ledger.job import Job
from ledger.template import Template
from ledger.usecases.claims import claim_name, job_in
from ledger.usecases.placement import candidates_of, no_pool_message, place
from ledger.usecases.templates import ensure_template_on_pool
from ledger.values import HostState, VmState, VolumeState, VolumeType
from ledger.vm import VirtualMachine
from ledger.volume import Volume


def pick_host(ledger: Ledger, zone: str, ref: str | None) -> Host:
    """The operator's `--host`, checked; else the zone's first Up host by name."""
    if ref is not None:
        host = ledger.resolve(Host, ref)
        if host.zone_id != zone:
            raise InvalidInput("host", ref, f"not in zone {zone}")
        if host.state is not HostState.Up:
            raise InvalidInput("host", ref, f"is {host.state.name}")
        return host
    zone_agg = ledger.zone(zone)
    hosts = [ledger.load(Host, UUID(h)) for h in (zone_agg.hosts if zone_agg else {})]
    up = sorted((h for h in hosts if h.state is HostState.Up), key=lambda h: h.name)
    if not up:
        raise NotFound("Up host", f"in zone {zone}")
    return up[0]


def deploy_vm(
    ledger: Ledger,
    ctx: Ctx,
    *,
    name: str,
    template_ref: str,
    zone: str,
    host_ref: str | None = None,
    root_size: int | None = None,
    tags: list[str] | None = None,
) -> Job:
    template = ledger.resolve(Template, template_ref)
    if template.removed:
        raise NotFound("template", template_ref)
    if template.zone_id != zone:
        raise InvalidInput("template", template_ref, f"not in zone {zone}")
    if ready_image_copy(ledger, template) is None:
        raise InvalidInput(
            "template", template.name, "is not ready (still downloading?)"
        )
    if root_size is not None and root_size < template.size:
        raise InvalidInput(
            "root size", str(root_size), f"smaller than the template ({template.size})"
        )
    host = pick_host(ledger, zone, host_ref)
    vm_id, volume_id = uuid.uuid4(), uuid.uuid4()

    def decide() -> list[Aggregate | None]:
        volume = Volume.allocate(
            ctx,
            id=volume_id,
            name=f"ROOT-{name}",
            volume_type=VolumeType.ROOT,
            size=root_size or template.size,
            zone_id=zone,
            template_id=template.id,
            snapshot_id=None,
            vm_id=vm_id,
            device_id=0,
            tags=list(tags or []),
        )
        vm = VirtualMachine.deploy(
            ctx,
            id=vm_id,
            name=name,
            zone_id=zone,
            host_id=host.id,
            template_id=template.id,
            root_volume_id=volume_id,
        )
        claim = claim_name(ledger, ctx, "vm", name, vm_id)
        job = Job.submit(ctx, "vm.deploy", "vm", vm_id, {"volume_id": str(volume_id)})
        request = Request(
            size=volume.size,
            zone_id=zone,
            cluster_id=host.cluster_id,
            host_id=str(host.id),
            tags=tuple(tags or ()),
            template_size=template.size,
        )
        decision, pool, cleaned = place(ledger, ctx, volume, request, template)
        out: list[Aggregate | None] = [volume, vm, claim, job, pool, *cleaned]
        if pool is None:
            job.fail(ctx, no_pool_message(decision))
            return out + abandon_volume(ledger, ctx, job, volume, (vm, claim))
        out += ensure_template_on_pool(ledger, ctx, volume, pool, template)
        return out

    candidates_of(ledger).refresh()
    with ledger.one_settings_read():
        return job_in(ledger.atomic(decide, what=f"vm deploy {name}"))


def vm_power(ledger: Ledger, ctx: Ctx, ref: str, trigger: str) -> VirtualMachine:
    """Start or stop (`StartRequested`, `StopRequested`)."""

    def decide() -> list[Aggregate | None]:
        vm = ledger.resolve(VirtualMachine, ref)
        vm.change_state(ctx, trigger)
        return [vm]

    return ledger.atomic(decide, what=f"vm {ref}")[0]  # type: ignore[return-value]


def destroy_vm(ledger: Ledger, ctx: Ctx, ref: str, *, expunge: bool = False) -> Job:
    """CloudStack's destroyVirtualMachine: the VM and its ROOT volume go to
    Destroy (capacity released); with expunge, the ROOT file is deleted too."""

    def decide() -> list[Aggregate | None]:
        vm = ledger.resolve(VirtualMachine, ref)
        data = [v for v in vm.devices if v != str(vm.root_volume_id)]
        if data:
            raise IllegalTransition(
                "VirtualMachine",
                str(vm.id),
                vm.state.name,
                "DestroyRequested",
                why=f"{len(data)} data volumes attached",
                name=vm.name,
                then="detach them first ("
                + "; ".join(
                    f"storctl volume detach {ledger.peek(Volume, UUID(v)).name}"
                    for v in data
                )
                + ")",
            )
        job = Job.submit(ctx, "vm.destroy", "vm", vm.id, {"expunge": expunge})
        out: list[Aggregate | None] = [vm, job]
        if vm.state is not VmState.Destroyed:
            vm.change_state(ctx, "DestroyRequested")
        root = ledger.load(Volume, vm.root_volume_id)
        pool = pool_of(ledger, root)
        out += [root, pool]
        if root.state is not VolumeState.Destroy:
            root.destroy(ctx, with_vm=True)
            if pool is not None:
                pool.release(ctx, root)
        if not expunge:
            job.succeed(ctx, {"state": vm.state.name})
            return out
        vm.change_state(ctx, "ExpungeRequested")
        claim = find_claim(ledger, "vm", vm.name)
        if claim is not None:
            claim.release(ctx)
            out.append(claim)
        if not requests.expunge_volume(ctx, ledger.wait("wait"), root, pool):
            job.succeed(ctx, {"state": vm.state.name})
        return out

    return job_in(ledger.atomic(decide, what=f"vm destroy {ref}"))
