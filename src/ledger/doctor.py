"""`storctl doctor`'s diagnosis: which objects wait for an answer that is not coming.

An object is stuck when its command (`Commandable.pending`) has had no answer past its
wait (the request event's time + the command's `wait`), or when it waits and no worker
is alive to send it. A pending job is stuck when nothing of it is in flight and no
worker is alive (its workflows have not run), or when it has not moved for longer
than the global `wait`.

This module is pure: it reads aggregates through the ledger, is told the time and
whether a worker lives, and proposes a fix for each finding; it changes nothing. Where
the candidates come from (the projected tables, in the CLI) and how a fix is applied
(the engine) are its callers' business.

The fixes it proposes:
- `redispatch`: the command is still pending and idempotent; send it again (a worker
  does that when it follows the request; `storctl doctor --fix` does it at once).
- `fail`: record `result=false` for it ("failed by storctl doctor: ...") through
  `usecases.answers.record_answer`, so the workflows compensate as for any failed
  command.
- `drive`: nothing is in flight, the job only waits for its workflows: run a worker.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from ledger.aggregate import Requested
from ledger.app import Ledger
from ledger.commands import DEFAULT_WAIT, Answer, failure_for, from_dict
from ledger.job import Job

FAIL_DETAILS = "failed by storctl doctor: no answer past its wait"
PAST_WAIT = "past its wait"
NO_WORKER = "no worker"
FIXES = ("redispatch", "fail", "drive")
COLUMNS = [
    "kind",
    "id",
    "name",
    "state",
    "command",
    "jobid",
    "requested",
    "wait",
    "overdue",
    "reasons",
    "fix",
]


@dataclass(frozen=True)
class Finding:
    """One stuck object (or job) and the fix proposed for it."""

    kind: str  # volume, snapshot, copy, job
    object_id: UUID
    name: str
    state: str
    job_id: str | None
    requested: datetime | None
    wait: int | None
    overdue: float | None  # seconds past the wait (negative: still within it)
    reasons: tuple[str, ...]
    fix: str
    advice: str
    command: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def command_kind(self) -> str | None:
        return str(self.command["kind"]) if self.command else None

    def failure(self) -> Answer:
        """The answer `--fix --fail` records: the command's own class, result=false."""
        assert self.command is not None, "only a pending command can be failed"
        return failure_for(from_dict(self.command), FAIL_DETAILS)

    def row(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": str(self.object_id),
            "name": self.name,
            "state": self.state,
            "command": self.command_kind,
            "commandid": self.command["commandId"] if self.command else None,
            "jobid": self.job_id,
            "requested": self.requested.isoformat() if self.requested else None,
            "wait": self.wait,
            "overdue": round(self.overdue, 1) if self.overdue is not None else None,
            "reasons": list(self.reasons),
            "fix": self.fix,
            "advice": self.advice,
        }


def wait_of(command: dict[str, Any]) -> int:
    """CloudStack's rule: a command of wait 0 gets the global default."""
    return int(command.get("wait") or DEFAULT_WAIT)


def request_of(ledger: Ledger, obj: Any) -> Requested | None:
    """The event that asked for `obj`'s pending command (the latest with its id)."""
    command_id = obj.pending["commandId"] if obj.pending else None
    for event in ledger.events.get(obj.id, desc=True):
        if (
            isinstance(event, Requested)
            and event.command
            and event.command.get("commandId") == command_id
        ):
            return event
    return None


def _name(obj: Any) -> str:
    name = getattr(obj, "name", None)
    if name:
        return str(name)
    kind = getattr(obj, "object_type", None)
    return f"{kind.name.lower()} {obj.object_id}" if kind is not None else ""


def _kind_of(obj: Any) -> str:
    return {
        "Volume": "volume",
        "Snapshot": "snapshot",
        "DataObjectInStore": "copy",
    }.get(type(obj).__name__, type(obj).__name__.lower())


def examine(
    ledger: Ledger,
    obj: Any,
    now: datetime,
    *,
    worker_alive: bool,
    request: Requested | None = None,
) -> Finding | None:
    """A finding for `obj` if its pending command is stuck; None if it is not."""
    pending = getattr(obj, "pending", None)
    if not pending:
        return None
    request = request or request_of(ledger, obj)
    requested = request.timestamp if request is not None else obj.modified_on
    wait = wait_of(pending)
    overdue = (now - requested).total_seconds() - wait
    reasons: list[str] = []
    if overdue > 0:
        reasons.append(PAST_WAIT)
    if not worker_alive:
        reasons.append(NO_WORKER)
    if not reasons:
        return None
    job_id = request.job_id if request is not None else None
    if worker_alive:
        fix = "fail"
        advice = (
            f"a worker holds {pending['kind']} past its wait: "
            "`storctl doctor --fix --fail` records it as failed"
        )
    else:
        fix = "redispatch"
        advice = (
            f"no worker sends {pending['kind']}: start `storctl executor run`, "
            + (f"or `storctl job wait {job_id}`, " if job_id else "")
            + "or `storctl doctor --fix`"
        )
    return Finding(
        kind=_kind_of(obj),
        object_id=obj.id,
        name=_name(obj),
        state=obj.state.name,
        job_id=job_id,
        requested=requested,
        wait=wait,
        overdue=overdue,
        reasons=tuple(reasons),
        fix=fix,
        advice=advice,
        command=dict(pending),
    )


def _job_objects(job: Job) -> list[UUID]:
    ids = [job.object_id]
    for key in ("volume_id", "snapshot_id"):
        value = job.params.get(key)
        if value:
            try:
                ids.append(UUID(str(value)))
            except ValueError:
                continue
    return ids


def diagnose(
    ledger: Ledger,
    candidates: Iterable[UUID],
    jobs: Iterable[UUID],
    *,
    now: datetime | None = None,
    worker_alive: bool,
    job_grace: float | None = None,
) -> list[Finding]:
    """Every stuck object among `candidates` (ids of objects in a transitional state)
    and among the objects of the pending `jobs`; then every pending job that has
    nothing in flight and no worker (or has not moved for `job_grace` seconds,
    default the global `wait`)."""
    now = now or datetime.now(UTC)
    grace = (
        float(job_grace)
        if job_grace is not None
        else float(ledger.settings().get("wait") or DEFAULT_WAIT)
    )
    pending_jobs: list[Job] = []
    for job_id in dict.fromkeys(jobs):
        job = ledger.find(Job, job_id)
        if job is not None and not job.settled:
            pending_jobs.append(job)
    ids = list(
        dict.fromkeys(
            [*candidates, *(i for j in pending_jobs for i in _job_objects(j))]
        )
    )
    findings: list[Finding] = []
    in_flight: set[str] = set()  # jobs with a command on its way
    for obj_id in ids:
        try:
            obj: Any = ledger.repository.get(obj_id)
        except AggregateNotFoundError:  # a candidate that is gone is not stuck
            continue
        if not getattr(obj, "pending", None):
            continue
        request = request_of(ledger, obj)
        finding = examine(ledger, obj, now, worker_alive=worker_alive, request=request)
        if request is not None:
            in_flight.add(request.job_id)
        in_flight.update(str(j) for j in (getattr(obj, "waiters", None) or {}).values())
        if finding is not None:
            findings.append(finding)
    for job in pending_jobs:
        if str(job.id) in in_flight:
            continue
        idle = (now - job.modified_on).total_seconds()
        if worker_alive and idle <= grace:
            continue
        reasons = (NO_WORKER,) if not worker_alive else (PAST_WAIT,)
        findings.append(
            Finding(
                kind="job",
                object_id=job.id,
                name=job.cmd,
                state=job.status.name,
                job_id=str(job.id),
                requested=job.modified_on,
                wait=int(grace),
                overdue=idle - grace,
                reasons=reasons,
                fix="drive",
                advice=(
                    "nothing is in flight: its workflows have not run; "
                    f"`storctl job wait {job.id}` or `storctl doctor --fix`"
                ),
            )
        )
    return findings
