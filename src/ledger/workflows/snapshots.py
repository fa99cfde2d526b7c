"""Steps of snapshots: taken on primary (back it up), backed up (settle the chain's
depth), a backup's file deleted (and a hidden parent no delta needs any more),
reverted.

CloudStack's `DefaultSnapshotStrategy` (`takeSnapshot`, `backupSnapshot`,
`deleteSnapshotChain`) and `revertSnapshot`.
"""

from __future__ import annotations

from typing import Any

from ledger import requests
from ledger.aggregate import Ctx
from ledger.app import Ledger
from ledger.copies import DataObjectInStore
from ledger.inventory import delta_parent, image_store_for, staging_for
from ledger.pool import StoragePool
from ledger.snapshot import Snapshot
from ledger.usecases.snapshots import backup_site
from ledger.values import SnapshotState
from ledger.volume import Volume
from ledger.workflows.answers import Decided, details, ok, pending_job, settle


def snapshot_taken(ledger: Ledger, event: Any, ctx: Ctx) -> Decided:
    """On primary: back it up; failed: the volume back to Ready, the job failed."""
    snapshot = ledger.load(Snapshot, event.originator_id)
    if ok(event):
        volume = ledger.load(Volume, snapshot.volume_id)
        assert volume.pool_id is not None
        pool = ledger.load(StoragePool, volume.pool_id)
        if pool.can("native_snapshots") and not ledger.settings().get(
            "snapshot.backup.to.secondary"
        ):
            return _kept_on_primary_only(ledger, event, ctx, snapshot, volume)
        store = image_store_for(ledger, volume.zone_id)
        parent = delta_parent(ledger, snapshot)
        return list(
            requests.back_up_snapshot(
                ctx,
                ledger.wait("backup.snapshot.wait"),
                snapshot,
                volume,
                pool,
                store,
                parent,
                cache=staging_for(ledger, store),
            )
        )
    volume = ledger.load(Volume, snapshot.volume_id)
    volume.finish_snapshot(ctx, snapshot.id, ok=False, details=details(event))
    out: Decided = [volume]
    job = pending_job(ledger, event)
    if job is not None:
        job.fail(ctx, f"snapshot on primary failed: {details(event)}")
        out.append(job)
    return out


def _kept_on_primary_only(
    ledger: Ledger, event: Any, ctx: Ctx, snapshot: Snapshot, volume: Volume
) -> Decided:
    """`snapshot.backup.to.secondary` false on a pool that snapshots natively:
    no backup, the snapshot BackedUp where it is (CloudStack's
    OperationNotPerformed); deleting it deletes it there."""
    why = "kept on primary only (snapshot.backup.to.secondary is false)"
    snapshot.skip_backup(ctx, why)
    volume.finish_snapshot(ctx, snapshot.id, ok=True)
    result = {"snapshotid": str(snapshot.id), "depth": 0, "backup": False}
    return [
        snapshot,
        volume,
        *settle(pending_job(ledger, event), ctx, event, result, ""),
    ]


def snapshot_destroyed(ledger: Ledger, event: Any, ctx: Ctx) -> Decided:
    """The pool's driver answered the delete of a snapshot kept on primary
    only: the job settles (the answer moved the snapshot already)."""
    failed = "delete on primary failed: "
    return settle(pending_job(ledger, event), ctx, event, {}, failed)


def snapshot_backed_up(
    ledger: Ledger, event: Any, ctx: Ctx, copy: DataObjectInStore
) -> Decided:
    snapshot = ledger.load(Snapshot, copy.object_id)
    volume = ledger.load(Volume, snapshot.volume_id)
    done = ok(event)
    depth = 0
    out: Decided = [snapshot, volume]
    if copy.parent_id is not None:
        parent = ledger.load(DataObjectInStore, copy.parent_id)
        if done:
            depth = ledger.load(Snapshot, parent.object_id).depth + 1
        else:
            parent.remove_child(ctx, copy.id)
            out.append(parent)
    snapshot.finish_backup(
        ctx,
        ok=done,
        details=details(event) if not done else "",
        path=copy.install_path,
        physical_size=copy.physical_size,
        depth=depth,
        kept_on_primary=_kept_on_primary(ledger, volume),
    )
    volume.finish_snapshot(
        ctx, snapshot.id, ok=done, details="" if done else details(event)
    )
    result = {"snapshotid": str(snapshot.id), "depth": depth}
    failed = "backup to secondary failed: "
    return out + settle(pending_job(ledger, event), ctx, event, result, failed)


def _kept_on_primary(ledger: Ledger, volume: Volume) -> bool:
    """Whether the volume's pool keeps a snapshot on primary after its backup:
    one that snapshots natively does (the RBD driver keeps it whatever
    `removeAfterCopy` says, as CloudStack does); the agent's copies do not."""
    if volume.pool_id is None:
        return False
    return ledger.peek(StoragePool, volume.pool_id).can("native_snapshots")


def snapshot_backup_destroyed(
    ledger: Ledger, event: Any, ctx: Ctx, copy: DataObjectInStore
) -> Decided:
    """A backup file went: its snapshot is Destroyed; a hidden parent that no
    delta needs any more goes too."""
    snapshot = ledger.load(Snapshot, copy.object_id)
    out: Decided = [snapshot]
    if snapshot.state is SnapshotState.Destroying:
        snapshot.finish_destroy(
            ctx, ok=ok(event), details=details(event) if not ok(event) else ""
        )
    if ok(event) and copy.parent_id is not None:
        parent = ledger.load(DataObjectInStore, copy.parent_id)
        parent.remove_child(ctx, copy.id)
        out.append(parent)
        if parent.hidden and not parent.children and parent.pending is None:
            parent_snapshot = ledger.load(Snapshot, parent.object_id)
            volume, pool, store = backup_site(ledger, parent, parent_snapshot)
            requests.delete_backup(
                ctx, ledger.wait("wait"), parent, parent_snapshot, volume, pool, store
            )
            out.append(parent)
    return out + settle(pending_job(ledger, event), ctx, event, {}, "")


def volume_reverted(ledger: Ledger, event: Any, ctx: Ctx) -> Decided:
    result = {"volumeid": str(event.originator_id)}
    return settle(pending_job(ledger, event), ctx, event, result, "revert failed: ")
