"""The Job aggregate: CloudStack's async job (`async_job`), one per operation.

The job is the correlation id every event of an operation carries. It holds the
operator's intent (the command and its parameters) so the workflows know what the
operation still has to do, and it settles once: succeeded or failed with the reason.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from ledger.aggregate import Ctx, StorctlAggregate
from ledger.errors import IllegalTransition
from ledger.values import JobStatus


class Job(StorctlAggregate):
    TOPIC = "storctl.Job"

    class Event(StorctlAggregate.Event):
        TOPIC = "storctl.Job.Event"

    class Submitted(StorctlAggregate.Created, Event):
        TOPIC = "storctl.Job.Submitted"
        cmd: str
        object_type: str
        object_id: UUID
        params: dict[str, Any]

    class Succeeded(Event):
        TOPIC = "storctl.Job.Succeeded"
        result: dict[str, Any]

        def apply(self, aggregate: Any) -> None:
            aggregate.status = JobStatus.succeeded
            aggregate.result = self.result

    class Failed(Event):
        TOPIC = "storctl.Job.Failed"
        error: str

        def apply(self, aggregate: Any) -> None:
            aggregate.status = JobStatus.failed
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
        self._require_pending("Succeeded")
        self.emit(self.Succeeded, ctx, result=result or {})

    def fail(self, ctx: Ctx, error: str) -> None:
        self._require_pending("Failed")
        self.emit(self.Failed, ctx, error=error)

    def _require_pending(self, trigger: str) -> None:
        if self.status is not JobStatus.pending:
            raise IllegalTransition("Job", str(self.id), self.status.name, trigger)

    @property
    def settled(self) -> bool:
        return self.status is not JobStatus.pending
