"""Templates: register (download to every image store of the zone), delete, create
from a volume or a snapshot, and make sure one is cached on a pool.

CloudStack's `registerTemplate`, `deleteTemplate` and `createTemplate`, and
`createBaseImageAsync` (the template copied to a pool once, a `template_spool_ref`
row, cloned for every volume made from it).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from ledger import requests, transfer
from ledger.aggregate import Ctx
from ledger.app import Ledger
from ledger.copies import DataObjectInStore, copy_id
from ledger.errors import IllegalTransition, InvalidInput, NotFound
from ledger.image_store import ImageStore
from ledger.inventory import (
    find_claim,
    image_store_for,
    ready_image_copy,
    staging_for,
    template_copy,
)
from ledger.job import Job
from ledger.pool import StoragePool
from ledger.template import Template
from ledger.url_policy import ROOTS_KEY, SITES_KEY, check_template_url, split_list
from ledger.usecases.claims import job_in, save_new
from ledger.usecases.placement import limits
from ledger.usecases.snapshots import backed_up
from ledger.values import (
    DataObjectType,
    ImageFormat,
    ObjectInStoreState,
    StoreRole,
    VmState,
    VolumeState,
)
from ledger.vm import VirtualMachine
from ledger.volume import Volume


def register_template(
    ledger: Ledger,
    ctx: Ctx,
    *,
    name: str,
    url: str,
    fmt: ImageFormat,
    zone: str,
    checksum: str | None = None,
) -> Job:
    """Register, and ask every image store of the zone to download it. The URL
    must be one the cloud may read (`url_policy`: CloudStack's rules)."""
    settings = ledger.settings()
    allowed = (
        split_list(settings.get(ROOTS_KEY)),
        split_list(settings.get(SITES_KEY)),
    )
    check_template_url(url, *allowed)
    zone_agg = ledger.zone(zone)
    if zone_agg is None or not zone_agg.stores:
        raise NotFound("image store", f"in zone {zone}")
    template = Template.register(
        ctx, name=name, zone_id=zone, url=url, format=fmt, checksum=checksum
    )
    job = Job.submit(ctx, "template.register", "template", template.id)
    wait = ledger.wait("primary.storage.download.wait")
    copies: list[Aggregate] = []
    for sid in zone_agg.stores:
        store = ledger.load(ImageStore, UUID(sid))
        copy = DataObjectInStore.allocate(
            ctx, DataObjectType.TEMPLATE, template.id, store.id, StoreRole.Image
        )
        requests.download_template(ctx, wait, copy, template, store, allowed)
        copies.append(copy)
    save_new(ledger, ctx, "template", name, template, job, *copies)
    return job


def delete_template(ledger: Ledger, ctx: Ctx, ref: str) -> Job:
    """Remove the template and its image-store copies; pool copies stay until
    storage cleanup, since linked clones still read them."""

    def decide() -> list[Aggregate | None]:
        template = ledger.resolve(Template, ref)
        template.delete(ctx)
        job = Job.submit(ctx, "template.delete", "template", template.id)
        out: list[Aggregate | None] = [template, job]
        zone = ledger.zone(template.zone_id)
        pending = False
        for sid in zone.stores if zone else []:
            copy = ledger.find(DataObjectInStore, copy_id(template.id, UUID(sid)))
            if copy is None or copy.state is ObjectInStoreState.Destroyed:
                continue
            if copy.pending is not None:
                raise IllegalTransition(
                    "Template",
                    str(template.id),
                    copy.state.name,
                    "DeleteRequested",
                    why="a download is still running",
                    name=template.name,
                )
            store = ledger.load(ImageStore, UUID(sid))
            requests.delete_template_copy(
                ctx, ledger.wait("wait"), copy, template, transfer.image_to(store)
            )
            pending = pending or copy.pending is not None
            out.append(copy)
        if not pending:
            job.succeed(ctx)
        claim = find_claim(ledger, "template", template.name)
        if claim is not None:
            claim.release(ctx)
        out.append(claim)
        return out

    return job_in(ledger.atomic(decide, what=f"template delete {ref}"))


def create_template(
    ledger: Ledger,
    ctx: Ctx,
    *,
    name: str,
    volume_id: UUID | None = None,
    snapshot_ref: str | None = None,
) -> Job:
    """CloudStack's createTemplate from a volume (VM stopped) or a snapshot."""
    if (volume_id is None) == (snapshot_ref is None):
        raise InvalidInput("source", name, "give exactly one of a volume, a snapshot")
    source: Any
    if volume_id is not None:
        volume = ledger.load(Volume, volume_id)
        if volume.state is not VolumeState.Ready or volume.pool_id is None:
            raise IllegalTransition(
                "Volume",
                str(volume.id),
                volume.state.name,
                "CreateTemplate",
                why="the volume must be Ready",
                name=volume.name,
            )
        if volume.vm_id is not None:
            vm = ledger.load(VirtualMachine, volume.vm_id)
            if vm.state is VmState.Running:
                raise IllegalTransition(
                    "VirtualMachine",
                    str(vm.id),
                    vm.state.name,
                    "CreateTemplate",
                    name=vm.name,
                    then=f"stop it first (storctl vm stop {vm.name})",
                )
        pool = ledger.load(StoragePool, volume.pool_id)
        source = transfer.volume_to(volume, pool)
        zone, origin = volume.zone_id, f"volume:{volume.id}"
        wait_key = "create.private.template.from.volume.wait"
    else:
        assert snapshot_ref is not None
        snapshot, copy, store = backed_up(ledger, snapshot_ref)
        volume = ledger.load(Volume, snapshot.volume_id)
        pool_id = volume.pool_id or volume.last_pool_id
        assert pool_id is not None
        source = transfer.snapshot_to(
            snapshot,
            volume,
            ledger.load(StoragePool, pool_id),
            transfer.image_to(store),
            path=copy.install_path,
        )
        zone, origin = volume.zone_id, f"snapshot:{snapshot.id}"
        wait_key = "create.private.template.from.snapshot.wait"
    target = image_store_for(ledger, zone)
    template = Template.register(
        ctx,
        name=name,
        zone_id=zone,
        url=origin,
        format=ImageFormat.QCOW2,
        checksum=None,
        source_volume_id=str(volume_id) if volume_id else None,
        source_snapshot_id=None if volume_id else origin.split(":", 1)[1],
    )
    job = Job.submit(ctx, "template.create", "template", template.id)
    copy_out = DataObjectInStore.allocate(
        ctx, DataObjectType.TEMPLATE, template.id, target.id, StoreRole.Image
    )
    requests.template_from(
        ctx,
        ledger.wait(wait_key),
        copy_out,
        template,
        source,
        target,
        cache=staging_for(ledger, target),
    )
    save_new(ledger, ctx, "template", name, template, job, copy_out)
    return job


def ensure_template_on_pool(
    ledger: Ledger, ctx: Ctx, volume: Volume, pool: StoragePool, template: Template
) -> list[Aggregate]:
    """Copy the template to the pool once and clone it for the volume: at once
    when the copy is ready, else when its copy answers (the volume waits on it).
    A pool that cannot clone (managed storage: a LUN per volume) gets the
    template written into the volume itself instead, from the image store."""
    if not pool.can("linked_clones"):
        return _into_the_volume(ledger, ctx, volume, pool, template)
    generation, copy = template_copy(ledger, template.id, pool.id)
    if copy is not None and copy.is_ready:
        requests.clone_volume(
            ctx, ledger.wait("copy.volume.wait"), volume, pool, template, copy
        )
        copy.add_child(ctx, volume.id)  # storage cleanup keeps it while cloned
        return [copy]
    if copy is None:
        copy = DataObjectInStore.allocate(
            ctx,
            DataObjectType.TEMPLATE,
            template.id,
            pool.id,
            StoreRole.Primary,
            generation=generation,
        )
    out: list[Aggregate] = [copy]
    if copy.pending is None:
        source = ready_image_copy(ledger, template)
        if source is None:
            raise InvalidInput(
                "template", template.name, "not downloaded to an image store"
            )
        pool.reserve(ctx, copy, template.size, *limits(ledger))
        cache = staging_for(ledger, source[0])
        if cache is None:
            requests.cache_template(
                ctx,
                ledger.wait("primary.storage.download.wait"),
                copy,
                template,
                source,
                pool,
            )
        else:
            out += _through_cache(ledger, ctx, copy, template, source, cache, pool)
    copy.add_waiter(ctx, volume.id)
    copy.add_child(ctx, volume.id)
    return out


def _into_the_volume(
    ledger: Ledger, ctx: Ctx, volume: Volume, pool: StoragePool, template: Template
) -> list[Aggregate]:
    """CloudStack's managed storage (SolidFire, an iSCSI LUN per volume): no base
    image on the pool, the template copied whole into the volume's own target
    (through the staging cache from an S3 or Swift store)."""
    source = ready_image_copy(ledger, template)
    if source is None:
        raise InvalidInput(
            "template", template.name, "not downloaded to an image store"
        )
    requests.copy_template_to_volume(
        ctx,
        ledger.wait("copy.volume.wait"),
        volume,
        pool,
        template,
        source,
        cache=staging_for(ledger, source[0]),
    )
    return []


def _through_cache(
    ledger: Ledger,
    ctx: Ctx,
    copy: DataObjectInStore,
    template: Template,
    source: tuple[ImageStore, DataObjectInStore],
    cache: ImageStore,
    pool: StoragePool,
) -> list[Aggregate]:
    """The pool's copy from the zone's staging cache: at once when the template
    is cached there, else once it is (the pool's copy waits on the cache's,
    `workflows.templates.template_staged`)."""
    wait = ledger.wait("primary.storage.download.wait")
    generation, staged = template_copy(ledger, template.id, cache.id)
    if staged is not None and staged.is_ready:
        requests.cache_template(ctx, wait, copy, template, (cache, staged), pool)
        cache.serve(ctx, staged.id)
        staged.add_child(ctx, copy.id)  # not evicted while the pool reads it
        return [staged, cache]
    if staged is None:
        staged = DataObjectInStore.allocate(
            ctx,
            DataObjectType.TEMPLATE,
            template.id,
            cache.id,
            StoreRole.ImageCache,
            generation=generation,
        )
    if staged.pending is None:
        requests.stage_template(ctx, wait, staged, template, source, cache)
    staged.add_waiter(ctx, copy.id)
    return [staged]
