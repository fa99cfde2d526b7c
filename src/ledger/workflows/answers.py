"""What every workflow step reads of an answer event: its result, its details, the
job it belongs to, and the context its follow-up carries."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from ledger.aggregate import Ctx
from ledger.app import Ledger
from ledger.job import Job

#: What a step decided: the aggregates to save (None entries are skipped).
Decided = list[Aggregate | None]


def context_of(event: Any) -> Ctx:
    """The follow-up keeps the actor (the name it was appended on behalf of, if
    any) and job, and names the event that caused it."""
    return Ctx(
        actor=getattr(event, "onbehalfof", None) or event.actor,
        job_id=event.job_id,
        causation_id=f"{event.originator_id}/{event.originator_version}",
    )


def pending_job(ledger: Ledger, event: Any) -> Job | None:
    """The event's job, while it is still pending."""
    try:
        job = ledger.find(Job, UUID(event.job_id))
    except ValueError:
        return None
    return job if job is not None and not job.settled else None


def ok(event: Any) -> bool:
    return bool(event.answer["result"])


def details(event: Any) -> str:
    return str(event.answer.get("details") or "the agent answered result=false")


def settle(job: Job | None, ctx: Ctx, event: Any, result: dict[str, Any],
           failed: str) -> Decided:  # fmt: skip
    """Succeed the job with `result` or fail it with `failed` (a prefix for the
    agent's words, or "" for its words alone), as the answer says."""
    if job is None:
        return []
    if ok(event):
        job.succeed(ctx, result)
    else:
        job.fail(ctx, f"{failed}{details(event)}")
    return [job]
