"""The requests that change a created volume's data or its place: snapshot, revert to
a snapshot, resize, migrate (StorageMotion).

Mixed into `ledger.volume.Volume` (whose events they record): each asks the Volume
machine through `Commandable.request` and records the command it sends (none for a
snapshot, whose commands the Snapshot and its copy send; the volume waits on both).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from ledger.aggregate import Ctx
from ledger.commands import CopyCommand


class ChangesVolumeData:
    """Snapshot, revert, resize and migration requests of a Volume. `volume` in
    each method is `self` as the Volume it is mixed into (typed `Any`: the events
    it names are the Volume's)."""

    # ------------------------------------------------------------ snapshots

    def request_snapshot(self, ctx: Ctx, snapshot_id: UUID) -> None:
        volume: Any = self
        volume.request(
            volume.SnapshotRequested,
            ctx,
            "SnapshotRequested",
            None,
            snapshot_id=snapshot_id,
        )

    def finish_snapshot(
        self, ctx: Ctx, snapshot_id: UUID, *, ok: bool, details: str = ""
    ) -> None:
        volume: Any = self
        volume.settle(
            volume.SnapshotCompleted,
            ctx,
            ok=ok,
            details=details,
            snapshot_id=snapshot_id,
        )

    def request_revert(self, ctx: Ctx, command: Any, snapshot_id: UUID) -> None:
        volume: Any = self
        volume.request(
            volume.RevertRequested,
            ctx,
            "RevertSnapshotRequested",
            command,
            snapshot_id=snapshot_id,
        )

    def request_resize(self, ctx: Ctx, command: Any, new_size: int) -> None:
        volume: Any = self
        volume.request(
            volume.ResizeRequested, ctx, "ResizeRequested", command, new_size=new_size
        )

    # ------------------------------------------------------------ migration

    def request_migration(self, ctx: Ctx, command: CopyCommand | None) -> None:
        """StorageMotion: Ready -> Migrating, with the copy to the new pool, or with
        none when the copy is staged through the image store first."""
        volume: Any = self
        volume._require_pool("MigrationRequested")
        volume.request(volume.CopyRequested, ctx, "MigrationRequested", command)

    def request_staged_copy(self, ctx: Ctx, command: CopyCommand) -> None:
        volume: Any = self
        volume.request(
            volume.StagedCopyRequested,
            ctx,
            "StagedCopyRequested",
            command,
            to_state=volume.state,
        )

    def fail_migration(self, ctx: Ctx, details: str) -> None:
        volume: Any = self
        volume.settle(volume.MigrationSettled, ctx, ok=False, details=details)
