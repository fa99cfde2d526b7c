"""The Job aggregate: CloudStack's async job (`async_job`), one per operation.

The job is the correlation id every event of an operation carries. It holds the
operator's intent (the command and its parameters) so the workflows know what the
operation still has to do, and it settles once: succeeded or failed with the reason,
as `fsm.JOB_TABLE` allows.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from ledger.aggregate import Ctx, StorctlAggregate
from ledger.fsm import JOB
from ledger.values import JobStatus


class Job(StorctlAggregate):
    TOPIC = "storctl.Job"
    SPEC = JOB

    class Event(StorctlAggregate.Event):
        TOPIC = "storctl.Job.Event"

    class Submitted(StorctlAggregate.Created, Event):
        TOPIC = "storctl.Job.Submitted"
        cmd: str
        object_type: str
        object_id: UUID
        params: dict[str, Any]

    class Succeeded(Event):
        """`pending -Succeeded-> succeeded`. The trigger and the state are the
        class's constants, not stored fields: every settlement of a class makes the
        same move, and the state it leaves is the job's own. `replay verify` reads
        them here and takes the from-state from the job it replays."""

        TOPIC = "storctl.Job.Succeeded"
        trigger = "Succeeded"
        to_state = JobStatus.succeeded
        result: dict[str, Any]

        def apply(self, aggregate: Any) -> None:
            aggregate.status = self.to_state
            aggregate.result = self.result

    class Failed(Event):
        """`pending -Failed-> failed`, recorded as `Succeeded` is."""

        TOPIC = "storctl.Job.Failed"
        trigger = "Failed"
        to_state = JobStatus.failed
        error: str

        def apply(self, aggregate: Any) -> None:
            aggregate.status = self.to_state
            aggregate.error = self.error

    def __init__(
        self,
        *,
        cmd: str,
        object_type: str,
        object_id: UUID,
        params: dict[str, Any],
        actor: str,
        job_id: str,
        causation_id: str,
    ) -> None:
        self.cmd = cmd
        self.object_type = object_type
        self.object_id = object_id
        self.params = dict(params)
        self.status = JobStatus.pending
        self.result: dict[str, Any] = {}
        self.error: str | None = None

    @classmethod
    def submit(
        cls,
        ctx: Ctx,
        cmd: str,
        object_type: str,
        object_id: UUID,
        params: dict[str, Any] | None = None,
    ) -> Job:
        return cls.create(
            cls.Submitted,
            ctx,
            id=UUID(ctx.job_id),
            cmd=cmd,
            object_type=object_type,
            object_id=object_id,
            params=params or {},
        )

    def succeed(self, ctx: Ctx, result: dict[str, Any] | None = None) -> None:
        # the table's answer is the event's `to_state` (test_fsm holds them equal)
        self.SPEC.next_state(self.id, self.status, self.Succeeded.trigger)
        self.emit(self.Succeeded, ctx, result=result or {})

    def fail(self, ctx: Ctx, error: str) -> None:
        self.SPEC.next_state(self.id, self.status, self.Failed.trigger)
        self.emit(self.Failed, ctx, error=error)

    @property
    def settled(self) -> bool:
        return self.status is not JobStatus.pending
