"""Steps after a copy in a store answered (`DataObjectInStore`): which workflow goes
on depends on what it is a copy of, and where.

A snapshot's backup, a migration's staged volume or leftover file, a template on an
image store, a template cached on a pool: CloudStack's ObjectInDataStore rows of
`snapshot_store_ref`, `volume_store_ref`, `template_store_ref`, `template_spool_ref`.
"""

from __future__ import annotations

from typing import Any

from ledger.aggregate import Ctx
from ledger.app import Ledger
from ledger.copies import DataObjectInStore
from ledger.values import DataObjectType, StoreRole
from ledger.workflows.answers import Decided, ok, pending_job, settle
from ledger.workflows.migration import leftover_destroyed, stage_answered
from ledger.workflows.snapshots import snapshot_backed_up, snapshot_backup_destroyed
from ledger.workflows.templates import (
    template_cached,
    template_created,
    template_staged,
)


def copy_answered(ledger: Ledger, event: Any, ctx: Ctx) -> Decided:
    copy = ledger.load(DataObjectInStore, event.originator_id)
    if copy.object_type is DataObjectType.SNAPSHOT:
        return snapshot_backed_up(ledger, event, ctx, copy)
    if copy.object_type is DataObjectType.VOLUME:
        return stage_answered(ledger, event, ctx, copy)
    if copy.store_role is StoreRole.Image:
        return template_created(ledger, event, ctx, copy)
    if copy.store_role is StoreRole.ImageCache:
        return template_staged(ledger, event, ctx, copy)
    return template_cached(ledger, event, ctx)


def copy_destroyed(ledger: Ledger, event: Any, ctx: Ctx) -> Decided:
    """A delete answered: a failed one is tried again (a bounded number of times),
    else the step of what the copy was."""
    copy = ledger.load(DataObjectInStore, event.originator_id)
    if not ok(event) and copy.retry_destroy(ctx):
        return [copy]
    if copy.object_type is DataObjectType.SNAPSHOT:
        return snapshot_backup_destroyed(ledger, event, ctx, copy)
    if copy.object_type is DataObjectType.VOLUME:
        return leftover_destroyed(ledger, event, ctx)
    if copy.store_role in (StoreRole.Primary, StoreRole.ImageCache):
        # storage cleanup (its reservation went back when it was chosen), or a
        # staging cache's eviction: no job waits on either
        return []
    return settle(pending_job(ledger, event), ctx, event, {}, "")
