"""What a failed or finished step gives back: a pool's reservation, a template
copy's read.

CloudStack's failed create puts the volume back to Allocated without a pool and
releases what was reserved; Cinder calls this the revert of a flow. Kept apart so
the volume, template and migration steps share one version of each.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate

from ledger.abandoned import abandon_volume
from ledger.aggregate import Ctx
from ledger.app import Ledger
from ledger.inventory import template_copy
from ledger.job import Job
from ledger.pool import StoragePool
from ledger.volume import Volume
from ledger.workflows.answers import Decided


def undo_placement(
    ledger: Ledger, ctx: Ctx, volume: Volume, pool: StoragePool, error: str
) -> Decided:
    """CloudStack's failed create: the volume back to Allocated without a pool,
    its reservation released, the job failed with the agent's words; when that
    job was creating the volume, the volume goes and its name is free again
    (`ledger.abandoned`)."""
    pool.release(ctx, volume)
    volume.change_pool(ctx, None)
    out: Decided = [volume, pool]
    job = ledger.find(Job, UUID(ctx.job_id))
    if job is not None and not job.settled:
        job.fail(ctx, error)
        out.append(job)
        out += abandon_volume(ledger, ctx, job, volume)
    return out


def release_template_copy(
    ledger: Ledger, ctx: Ctx, volume: Volume, pool_id: UUID | None = None
) -> list[Aggregate]:
    """The volume no longer reads the template copy on its pool (or on `pool_id`,
    the pool it left): expunged, moved away, or never created, so storage
    cleanup may take the copy again."""
    pool_id = pool_id or volume.pool_id
    if volume.template_id is None or pool_id is None:
        return []
    _, copy = template_copy(ledger, volume.template_id, pool_id)
    if copy is None or str(volume.id) not in copy.children:
        return []
    copy.remove_child(ctx, volume.id)
    return [copy]
