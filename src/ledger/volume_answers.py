"""How a Volume folds an agent's answer: which `...Answered` event, with what.

Mixed into `ledger.volume.Volume` (whose events it names): the answer's event is
chosen by the command it answers (`pending["kind"]`) or by the trigger that sent it
(a migration's copy moves the volume to the copy's pool on success), and what the
agent reported (the file's path, its size) goes into the event.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from ledger.aggregate import Ctx


class FoldsVolumeAnswers:
    """The answer half of a Volume's commands. `volume` in each method is `self`
    as the Volume it is mixed into (typed `Any`: the events it names are the
    Volume's)."""

    def fold_answer(self, ctx: Ctx, answer: Any) -> None:
        """Record any answer to the pending command, by the command it answers;
        a stale one is refused before a migration's `PoolChanged` is decided."""
        volume: Any = self
        volume.require_pending(answer)
        kind = volume.pending["kind"] if volume.pending else ""
        if kind == "RevertSnapshotCommand":
            volume.answer(volume.RevertAnswered, ctx, answer)
        elif kind == "ResizeVolumeCommand":
            new_size = int(volume.pending["newSize"]) if answer.result else None
            volume.answer(volume.ResizeAnswered, ctx, answer, size=new_size)
        elif volume.pending_trigger in ("MigrationRequested", "StagedCopyRequested"):
            if answer.result:
                dest = UUID(volume.pending["destTO"]["dataStore"]["uuid"])
                volume.emit(
                    volume.PoolChanged, ctx, from_pool_id=volume.pool_id, pool_id=dest
                )
            self._answer_copy(ctx, answer)
        elif kind == "AttachCommand":
            disk = volume.pending["disk"]
            vm_id = UUID(volume.pending["vmId"]) if volume.pending.get("vmId") else None
            volume.answer(
                volume.AttachAnswered,
                ctx,
                answer,
                vm_id=vm_id,
                device_id=disk["diskSeq"],
            )
        elif kind == "DettachCommand":
            volume.answer(volume.DetachAnswered, ctx, answer)
        elif kind == "DeleteCommand":
            volume.answer(volume.ExpungeAnswered, ctx, answer)
        else:
            self._answer_copy(ctx, answer)

    def answer_state(self, trigger: str) -> Any:
        volume: Any = self
        if volume.pending and volume.pending["kind"] == "DettachCommand":
            return volume.state  # detach moves no state, success or not
        return super().answer_state(trigger)  # type: ignore[misc]

    def _answer_copy(self, ctx: Ctx, answer: Any) -> None:
        """A create or a copy to this volume: the file it made, and its size."""
        volume: Any = self
        data = getattr(answer, "data", None) or getattr(answer, "newData", None)
        event = (
            volume.CreateAnswered
            if volume.pending and volume.pending["kind"] == "CreateObjectCommand"
            else volume.CopyAnswered
        )
        volume.answer(
            event,
            ctx,
            answer,
            path=data.path if answer.result and data else None,
            size=data.size if answer.result and data and data.size else None,
        )
