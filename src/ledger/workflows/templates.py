"""Steps of templates: downloaded to an image store, copied to a pool (clone for
every waiting volume), created from a volume or a snapshot.

CloudStack's `TemplateServiceImpl` callbacks and `createBaseImageCallback`.
"""

from __future__ import annotations

from typing import Any

from ledger import requests
from ledger.aggregate import Ctx
from ledger.app import Ledger
from ledger.copies import DataObjectInStore
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
    return out


def template_cached(ledger: Ledger, event: Any, ctx: Ctx) -> Decided:
    """The template's copy on a pool answered: clone for every waiting volume, or
    give their reservations back and fail their jobs."""
    copy = ledger.load(DataObjectInStore, event.originator_id)
    if copy.store_role is not StoreRole.Primary:
        return []
    pool = ledger.load(StoragePool, copy.store_id)
    template = ledger.load(Template, copy.object_id)
    out: Decided = [copy, pool]
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
