"""The Snapshot aggregate (`snapshots`): a point-in-time copy of a volume.

CloudStack's Snapshot machine: `Allocated → Creating → CreatedOnPrimary → BackingUp →
BackedUp → Destroying → Destroyed`, `Error` on failure. The chain lives in
`prev_snapshot_id` here and in the parent link of each store copy (`copies.py`).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from ledger.aggregate import Answered, Commandable, Ctx, Requested, StorctlAggregate
from ledger.fsm import SNAPSHOT
from ledger.values import SnapshotState


class Snapshot(Commandable):
    TOPIC = "storctl.Snapshot"
    SPEC = SNAPSHOT
    KIND = "Snapshot"
    #: where the snapshot is on its volume's pool (`vol@snap` on RBD, a file on a
    #: directory pool) while it is there; None once a backup removed it. A class
    #: default too, so an aggregate snapshot taken before it existed loads.
    primary_path: str | None = None
    #: the pool `primary_path` is on (the take command's store): the volume may
    #: have moved to another pool since
    primary_pool_id: str | None = None

    class Event(StorctlAggregate.Event):
        TOPIC = "storctl.Snapshot.Event"

    class Allocated(StorctlAggregate.Created, Event):
        TOPIC = "storctl.Snapshot.Allocated"
        name: str
        volume_id: UUID
        prev_snapshot_id: UUID | None
        size: int

    class CreateRequested(Requested, Event):
        TOPIC = "storctl.Snapshot.CreateRequested"

    class BackupRequested(Requested, Event):
        TOPIC = "storctl.Snapshot.BackupRequested"

    class DestroyRequested(Requested, Event):
        TOPIC = "storctl.Snapshot.DestroyRequested"

    class CreateAnswered(Answered, Event):
        """The snapshot taken on primary answered; its path there is kept apart
        (`primary_path`), since a backup's answer replaces `path`."""

        TOPIC = "storctl.Snapshot.CreateAnswered"
        ON_PRIMARY = True  # a class attribute, not a field: which answer this is
        path: str | None
        physical_size: int | None

        def apply(self, aggregate: Any) -> None:
            super().apply(aggregate)
            if self.path is not None:
                aggregate.path = self.path
                if self.ON_PRIMARY and self.answer.get("result"):
                    aggregate.primary_path = self.path
                    aggregate.primary_pool_id = _store_of(aggregate.last_command)
            if self.physical_size is not None:
                aggregate.physical_size = self.physical_size

    class BackupAnswered(CreateAnswered):
        TOPIC = "storctl.Snapshot.BackupAnswered"
        ON_PRIMARY = False

    class BackupSettled(CreateAnswered):
        """The backup's copy answered (the copy carried the command).

        `kept_on_primary`: the pool keeps the snapshot after a backup (a native
        RBD snapshot, as CloudStack keeps it); otherwise a successful backup
        removed it from primary (`removeAfterCopy`), and `primary_path` goes.
        Events recorded before the field existed read False: the directory
        pools' case, the only one there was."""

        TOPIC = "storctl.Snapshot.BackupSettled"
        ON_PRIMARY = False
        depth: int  # 0: a full backup; n: the n-th delta after one
        kept_on_primary: bool = False

        def apply(self, aggregate: Any) -> None:
            super().apply(aggregate)
            aggregate.depth = self.depth
            if self.answer.get("result") and not self.kept_on_primary:
                aggregate.primary_path = None

    class DestroySettled(Answered, Event):
        TOPIC = "storctl.Snapshot.DestroySettled"

    class DestroyAnswered(Answered, Event):
        """The pool's driver answered the delete of a snapshot kept on primary
        only (`DeleteCommand` with the snapshot on the pool): done, it is no
        longer there."""

        TOPIC = "storctl.Snapshot.DestroyAnswered"

        def apply(self, aggregate: Any) -> None:
            super().apply(aggregate)
            if self.answer.get("result"):
                aggregate.primary_path = None

    class BackupSkipped(Answered, Event):
        """No backup was asked (`snapshot.backup.to.secondary` false, on a pool
        that snapshots natively): the snapshot is BackedUp on primary only, as
        CloudStack's `OperationNotPerformed` from CreatedOnPrimary."""

        TOPIC = "storctl.Snapshot.BackupSkipped"

    def __init__(
        self,
        *,
        name: str,
        volume_id: UUID,
        prev_snapshot_id: UUID | None,
        size: int,
        actor: str,
        job_id: str,
        causation_id: str,
    ) -> None:
        self.name = name
        self.volume_id = volume_id
        self.prev_snapshot_id = prev_snapshot_id
        self.size = size
        self.state = SnapshotState.Allocated
        self.pending: dict[str, Any] | None = None
        self.pending_trigger: str | None = None
        self.last_command: dict[str, Any] | None = None
        self.last_answer: dict[str, Any] | None = None
        self.path: str | None = None
        self.physical_size = 0
        self.depth = 0

    @classmethod
    def allocate(
        cls,
        ctx: Ctx,
        name: str,
        volume_id: UUID,
        prev_snapshot_id: UUID | None,
        size: int,
    ) -> Snapshot:
        return cls.create(
            cls.Allocated,
            ctx,
            name=name,
            volume_id=volume_id,
            prev_snapshot_id=prev_snapshot_id,
            size=size,
        )

    def request_create(self, ctx: Ctx, command: Any) -> None:
        self.request(self.CreateRequested, ctx, "CreateRequested", command)

    def request_backup(self, ctx: Ctx, command: Any) -> None:
        self.request(self.BackupRequested, ctx, "BackupToSecondary", command)

    def request_destroy(self, ctx: Ctx, command: Any | None) -> None:
        self.request(self.DestroyRequested, ctx, "DestroyRequested", command)

    def finish_backup(
        self,
        ctx: Ctx,
        *,
        ok: bool,
        details: str = "",
        path: str | None = None,
        physical_size: int | None = None,
        depth: int = 0,
        kept_on_primary: bool = False,
    ) -> None:
        self.settle(
            self.BackupSettled,
            ctx,
            ok=ok,
            details=details,
            path=path,
            physical_size=physical_size,
            depth=depth,
            kept_on_primary=kept_on_primary,
        )

    def skip_backup(self, ctx: Ctx, details: str) -> None:
        trigger = "OperationNotPerformed"
        self.emit(
            self.BackupSkipped,
            ctx,
            answer={
                "kind": "Answer",
                "commandId": None,
                "result": True,
                "details": details,
            },
            trigger=trigger,
            from_state=self.state,
            to_state=self.next(trigger),
        )

    def finish_destroy(self, ctx: Ctx, *, ok: bool, details: str = "") -> None:
        self.settle(self.DestroySettled, ctx, ok=ok, details=details)

    def fold_answer(self, ctx: Ctx, answer: Any) -> None:
        self.answer_step(ctx, answer)

    def answer_step(self, ctx: Ctx, answer: Any) -> None:
        data = (
            (getattr(answer, "data", None) or getattr(answer, "newData", None))
            if (answer.result)
            else None
        )
        kind = self.pending["kind"] if self.pending else ""
        if kind == "DeleteCommand":
            self.answer(self.DestroyAnswered, ctx, answer)
            return
        event = self.BackupAnswered if kind == "CopyCommand" else self.CreateAnswered
        self.answer(
            event,
            ctx,
            answer,
            path=data.path if data else None,
            physical_size=getattr(data, "physicalSize", None) if data else None,
        )


def _store_of(command: dict[str, Any] | None) -> str | None:
    """The uuid of the store a command's object is on (its `data.dataStore`)."""
    data = (command or {}).get("data")
    store = data.get("dataStore") if isinstance(data, dict) else None
    uuid = store.get("uuid") if isinstance(store, dict) else None
    return str(uuid) if uuid else None
