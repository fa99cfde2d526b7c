"""Steps of a migration (StorageMotion): the staged copy's first leg answered, the
volume's copy to the target answered, the source file deleted.

On success the source pool gives back its reservation and the old file is deleted
(the job settles when it is gone); on failure the target gives back its own and the
volume stays Ready on its source.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from ledger import requests
from ledger.aggregate import Ctx
from ledger.app import Ledger
from ledger.copies import DataObjectInStore, stage_id
from ledger.image_store import ImageStore
from ledger.job import Job
from ledger.pool import StoragePool
from ledger.volume import Volume
from ledger.workflows.answers import Decided, details, ok, pending_job
from ledger.workflows.compensation import release_template_copy


def stage_answered(
    ledger: Ledger, event: Any, ctx: Ctx, stage: DataObjectInStore
) -> Decided:
    """First leg of a staged migration done: send the second; failed: undo."""
    volume = ledger.load(Volume, stage.object_id)
    job = ledger.find(Job, UUID(event.job_id))
    if job is None or job.cmd != "volume.migrate":
        return []
    target = ledger.load(StoragePool, UUID(job.params["to"]))
    if ok(event):
        store = ledger.load(ImageStore, stage.store_id)
        requests.unstage_volume(
            ctx, ledger.wait("copy.volume.wait"), volume, stage, store, target
        )
        return [volume]
    volume.fail_migration(ctx, details(event))
    target.release(ctx, volume)
    out: Decided = [volume, target]
    if not job.settled:
        job.fail(ctx, f"staging through the image store failed: {details(event)}")
        out.append(job)
    return out


def migration_answered(ledger: Ledger, event: Any, ctx: Ctx, job: Job) -> Decided:
    volume = ledger.load(Volume, event.originator_id)
    source = ledger.load(StoragePool, UUID(job.params["from"]))
    target = ledger.load(StoragePool, UUID(job.params["to"]))
    stage = ledger.find(DataObjectInStore, stage_id(volume.id, str(job.id)))
    out: Decided = [source, target, volume]
    wait = ledger.wait("wait")
    if stage is not None and stage.install_path and stage.pending is None:
        store = ledger.load(ImageStore, stage.store_id)
        requests.remove_stage(ctx, wait, stage, store)
        out.append(stage)
    if ok(event):
        source.release(ctx, volume)
        # the copy on the target is full: the source pool's template copy is
        # no longer read by it
        out += release_template_copy(ledger, ctx, volume, source.id)
        out.append(requests.remove_leftover(ctx, wait, volume, source, None))
        return out  # the job settles when the source file is gone
    target.release(ctx, volume)
    if not job.settled:
        job.fail(ctx, f"migration failed: {details(event)}")
        out.append(job)
    return out


def leftover_destroyed(ledger: Ledger, event: Any, ctx: Ctx) -> Decided:
    job = pending_job(ledger, event)
    if job is None or job.cmd != "volume.migrate":
        return []
    note = "" if ok(event) else f"source file not deleted: {details(event)}"
    job.succeed(ctx, {"volumeid": str(job.object_id), "note": note})
    return [job]
