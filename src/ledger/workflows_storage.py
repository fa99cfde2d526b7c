"""Workflow steps of snapshots, templates made from volumes, and migrations.

Kept apart from `workflows.py` (deploy, attach, expunge) so each file reads in one
sitting; `Workflows.decide` routes every answer here or there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

from ledger.aggregate import Ctx
from ledger.copies import DataObjectInStore
from ledger.job import Job
from ledger.migration import stage_id
from ledger.pool import StoragePool
from ledger.snapshot import Snapshot
from ledger.template import Template
from ledger.values import SnapshotState
from ledger.volume import Volume

if TYPE_CHECKING:
    from ledger.service import Ledger
    from ledger.workflows import Decided


class Steps:
    """What every workflow step reads of an answer event and of its job."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def _job(self, event: Any) -> Job | None:
        """The event's job, while it is still pending."""
        try:
            job = self.ledger.find(Job, UUID(event.job_id))
        except ValueError:
            return None
        return job if job is not None and not job.settled else None

    @staticmethod
    def _ok(event: Any) -> bool:
        return bool(event.answer["result"])

    @staticmethod
    def _details(event: Any) -> str:
        return str(event.answer.get("details") or "the agent answered result=false")


class StorageSteps(Steps):
    """Snapshots, templates from volumes and snapshots, migrations."""

    # ------------------------------------------------------------ snapshots

    def snapshot_taken(self, event: Any, ctx: Ctx) -> Decided:
        """On primary: back it up; failed: the volume back to Ready, the job failed."""
        snapshot = self.ledger.load(Snapshot, event.originator_id)
        if self._ok(event):
            return list(self.ledger.request_backup(ctx, snapshot))
        volume = self.ledger.load(Volume, snapshot.volume_id)
        volume.finish_snapshot(ctx, snapshot.id, ok=False, details=self._details(event))
        out: Decided = [volume]
        job = self._job(event)
        if job is not None:
            job.fail(ctx, f"snapshot on primary failed: {self._details(event)}")
            out.append(job)
        return out

    def snapshot_backed_up(
        self, event: Any, ctx: Ctx, copy: DataObjectInStore
    ) -> Decided:
        snapshot = self.ledger.load(Snapshot, copy.object_id)
        volume = self.ledger.load(Volume, snapshot.volume_id)
        ok = self._ok(event)
        depth = 0
        out: Decided = [snapshot, volume]
        if copy.parent_id is not None:
            parent = self.ledger.load(DataObjectInStore, copy.parent_id)
            if ok:
                depth = self.ledger.load(Snapshot, parent.object_id).depth + 1
            else:
                parent.remove_child(ctx, copy.id)
                out.append(parent)
        snapshot.finish_backup(
            ctx,
            ok=ok,
            details=self._details(event) if not ok else "",
            path=copy.install_path,
            physical_size=copy.physical_size,
            depth=depth,
        )
        volume.finish_snapshot(
            ctx, snapshot.id, ok=ok, details="" if ok else (self._details(event))
        )
        job = self._job(event)
        if job is not None:
            if ok:
                job.succeed(ctx, {"snapshotid": str(snapshot.id), "depth": depth})
            else:
                job.fail(ctx, f"backup to secondary failed: {self._details(event)}")
            out.append(job)
        return out

    def snapshot_backup_destroyed(
        self, event: Any, ctx: Ctx, copy: DataObjectInStore
    ) -> Decided:
        """A backup file went: its snapshot is Destroyed; a hidden parent that no
        delta needs any more goes too."""
        snapshot = self.ledger.load(Snapshot, copy.object_id)
        out: Decided = [snapshot]
        if snapshot.state is SnapshotState.Destroying:
            snapshot.finish_destroy(
                ctx,
                ok=self._ok(event),
                details=self._details(event) if not self._ok(event) else "",
            )
        if self._ok(event) and copy.parent_id is not None:
            parent = self.ledger.load(DataObjectInStore, copy.parent_id)
            parent.remove_child(ctx, copy.id)
            out.append(parent)
            if parent.hidden and not parent.children and parent.pending is None:
                parent_snapshot = self.ledger.load(Snapshot, parent.object_id)
                out += self.ledger.destroy_backup(ctx, parent, parent_snapshot)
        job = self._job(event)
        if job is not None:
            if self._ok(event):
                job.succeed(ctx)
            else:
                job.fail(ctx, self._details(event))
            out.append(job)
        return out

    def volume_reverted(self, event: Any, ctx: Ctx) -> Decided:
        job = self._job(event)
        if job is None:
            return []
        if self._ok(event):
            job.succeed(ctx, {"volumeid": str(event.originator_id)})
        else:
            job.fail(ctx, f"revert failed: {self._details(event)}")
        return [job]

    # ------------------------------------------------------------ templates

    def template_created(
        self, event: Any, ctx: Ctx, copy: DataObjectInStore
    ) -> Decided:
        template = self.ledger.load(Template, copy.object_id)
        out: Decided = []
        if self._ok(event) and copy.size:
            template.record_size(ctx, copy.size, copy.physical_size or 0)
            out.append(template)
        job = self._job(event)
        if job is not None:
            if self._ok(event):
                job.succeed(ctx, {"templateid": str(template.id)})
            else:
                job.fail(ctx, f"template creation failed: {self._details(event)}")
            out.append(job)
        return out

    # ------------------------------------------------------------ migration

    def stage_answered(self, event: Any, ctx: Ctx, stage: DataObjectInStore) -> Decided:
        """First leg of a staged migration done: send the second; failed: undo."""
        volume = self.ledger.load(Volume, stage.object_id)
        job = self.ledger.find(Job, UUID(event.job_id))
        if job is None or job.cmd != "volume.migrate":
            return []
        target = self.ledger.load(StoragePool, UUID(job.params["to"]))
        if self._ok(event):
            self.ledger.request_second_leg(ctx, volume, stage, target)
            return [volume]
        volume.fail_migration(ctx, self._details(event))
        target.release(ctx, volume)
        out: Decided = [volume, target]
        if not job.settled:
            job.fail(
                ctx, f"staging through the image store failed: {self._details(event)}"
            )
            out.append(job)
        return out

    def migration_answered(self, event: Any, ctx: Ctx, job: Job) -> Decided:
        volume = self.ledger.load(Volume, event.originator_id)
        source = self.ledger.load(StoragePool, UUID(job.params["from"]))
        target = self.ledger.load(StoragePool, UUID(job.params["to"]))
        stage = self.ledger.find(DataObjectInStore, stage_id(volume.id, str(job.id)))
        out: Decided = [source, target, volume]
        if stage is not None and stage.install_path and stage.pending is None:
            self.ledger.remove_stage(ctx, stage)
            out.append(stage)
        if self._ok(event):
            source.release(ctx, volume)
            # the copy on the target is full: the source pool's template copy is
            # no longer read by it
            out += self.ledger.release_template_copy(ctx, volume, source.id)
            out.append(self.ledger.remove_leftover(ctx, volume, source, None))
            return out  # the job settles when the source file is gone
        target.release(ctx, volume)
        if not job.settled:
            job.fail(ctx, f"migration failed: {self._details(event)}")
            out.append(job)
        return out

    def leftover_destroyed(self, event: Any, ctx: Ctx) -> Decided:
        job = self._job(event)
        if job is None or job.cmd != "volume.migrate":
            return []
        note = (
            ""
            if self._ok(event)
            else f"source file not deleted: {self._details(event)}"
        )
        job.succeed(ctx, {"volumeid": str(job.object_id), "note": note})
        return [job]
