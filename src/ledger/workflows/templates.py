"""Steps of templates: downloaded to an image store, copied to a pool (clone for
every waiting volume), created from a volume or a snapshot.

CloudStack's `TemplateServiceImpl` callbacks and `createBaseImageCallback`.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from ledger import copies as store_copies
from ledger import requests
from ledger.aggregate import Ctx
from ledger.app import Ledger
from ledger.copies import DataObjectInStore
from ledger.image_store import ImageStore
from ledger.inventory import template_copy
from ledger.pool import StoragePool
from ledger.template import Template
from ledger.values import StoreRole
from ledger.volume import Volume
from ledger.workflows.answers import Decided, details, ok, pending_job, settle
from ledger.workflows.compensation import undo_placement


def template_downloaded(ledger: Ledger, event: Any, ctx: Ctx) -> Decided:
    copy = ledger.load(DataObjectInStore, event.originator_id)
    template = ledger.load(Template, copy.object_id)
    job = pending_job(ledger, event)
    out: Decided = []
    if ok(event) and copy.size and template.size != copy.size:
        template.record_size(ctx, copy.size, copy.physical_size or 0)
        out.append(template)
    if job is not None and job.cmd == "template.register":
        result = {"templateid": str(template.id), "size": copy.size}
        out += settle(job, ctx, event, result, "download failed: ")
    # A failed download is not abandoned like a failed volume create: it may
    # have left parts on the store (an S3 multipart upload the store could not
    # abort while it was down), which only a delete once the store is back
    # removes; the template stays, named, until the operator deletes it.
    return out


def _store_copies(
    ledger: Ledger, template: Template, answered: DataObjectInStore
) -> list[DataObjectInStore]:
    """The template's copies on its zone's image stores, `answered` as loaded."""
    zone = ledger.zone(template.zone_id)
    copies = [answered]
    for sid in zone.stores if zone else []:
        cid = store_copies.copy_id(template.id, UUID(sid))
        if cid != answered.id:
            other = ledger.find(DataObjectInStore, cid)
            copies += [other] if other is not None else []
    return copies


def template_cached(ledger: Ledger, event: Any, ctx: Ctx) -> Decided:
    """The template's copy on a pool answered: clone for every waiting volume, or
    give their reservations back and fail their jobs."""
    copy = ledger.load(DataObjectInStore, event.originator_id)
    if copy.store_role is not StoreRole.Primary:
        return []
    pool = ledger.load(StoragePool, copy.store_id)
    template = ledger.load(Template, copy.object_id)
    out: Decided = [copy, pool, *_done_reading_cache(ledger, ctx, copy, template)]
    if not ok(event):
        pool.release(ctx, copy)
    wait = ledger.wait("copy.volume.wait")
    for volume_id, job_id in copy.serve_waiters(ctx):
        volume = ledger.load(Volume, volume_id)
        vctx = Ctx(ctx.actor, job_id, ctx.causation_id)
        if ok(event):
            requests.clone_volume(vctx, wait, volume, pool, template, copy)
            out.append(volume)
        else:
            copy.remove_child(vctx, volume_id)
            out += undo_placement(
                ledger,
                vctx,
                volume,
                pool,
                f"copying the template to pool {pool.name} failed: {details(event)}",
            )
    return out


def template_created(
    ledger: Ledger, event: Any, ctx: Ctx, copy: DataObjectInStore
) -> Decided:
    template = ledger.load(Template, copy.object_id)
    out: Decided = []
    if ok(event) and copy.size:
        template.record_size(ctx, copy.size, copy.physical_size or 0)
        out.append(template)
    result = {"templateid": str(template.id)}
    failed = "template creation failed: "
    return out + settle(pending_job(ledger, event), ctx, event, result, failed)


def template_staged(
    ledger: Ledger, event: Any, ctx: Ctx, staged: DataObjectInStore
) -> Decided:
    """The template reached the zone's staging cache: each pool copy waiting on
    it is copied from there, and the cache's least recently used copies past
    `storage.cache.size` go; failed: the waiting pool copies give their
    reservations back and their volumes' jobs fail."""
    cache = ledger.load(ImageStore, staged.store_id)
    template = ledger.load(Template, staged.object_id)
    out: Decided = [staged, cache]
    if ok(event):
        cache.cache(ctx, staged.id, staged.physical_size or staged.size or 0)
    wait = ledger.wait("primary.storage.download.wait")
    for copy_id, job_id in staged.serve_waiters(ctx):
        copy = ledger.load(DataObjectInStore, copy_id)
        pool = ledger.load(StoragePool, copy.store_id)
        cctx = Ctx(ctx.actor, job_id, ctx.causation_id)
        out += [copy, pool]
        if ok(event):
            requests.cache_template(cctx, wait, copy, template, (cache, staged), pool)
            cache.serve(cctx, staged.id)
            staged.add_child(cctx, copy.id)
            continue
        pool.release(cctx, copy)
        why = f"staging the template through cache {cache.name} failed: "
        for volume_id, volume_job in copy.serve_waiters(cctx):
            volume = ledger.load(Volume, volume_id)
            vctx = Ctx(ctx.actor, volume_job, ctx.causation_id)
            copy.remove_child(vctx, volume_id)
            out += undo_placement(ledger, vctx, volume, pool, why + details(event))
    if ok(event):
        out += _evict(ledger, ctx, cache)
    return out


def _evict(ledger: Ledger, ctx: Ctx, cache: ImageStore) -> Decided:
    """The cache's least recently used copies, until it holds no more than
    `storage.cache.size`; never one being read or waited for."""
    limit = int(ledger.settings().get("storage.cache.size"))
    if cache.cached_bytes <= limit:
        return []
    copies = ledger.peek_many(UUID(i) for i in cache.cached)
    busy = {
        str(i)
        for i, c in copies.items()
        if not isinstance(c, DataObjectInStore) or not c.unused
    }
    out: Decided = []
    wait = ledger.wait("wait")
    for copy_id in cache.eviction(limit, busy):
        staged = ledger.load(DataObjectInStore, copy_id)
        template = ledger.load(Template, staged.object_id)
        requests.evict_template(ctx, wait, staged, template, cache)
        out.append(staged)
    return out


def _done_reading_cache(
    ledger: Ledger, ctx: Ctx, copy: DataObjectInStore, template: Template
) -> Decided:
    """A pool copy made from the staging cache no longer reads the cache's copy,
    which may then be evicted."""
    source = (copy.last_command or {}).get("srcTO", {}).get("dataStore", {})
    if source.get("role") != StoreRole.ImageCache.value:
        return []
    _, staged = template_copy(ledger, template.id, UUID(source["uuid"]))
    if staged is None or str(copy.id) not in staged.children:
        return []
    staged.remove_child(ctx, copy.id)
    return [staged]
