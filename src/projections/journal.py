"""The audit side: `event_journal` (every event, one row) and `async_job`.

`event_journal` has no CloudStack twin (its `event` table is the nearest): one row
per notification, `position` being the notification id, with who (`actor`), in
which job (`job_id`), because of what (`causation_id`), the state move where the
event has one (`from_state`/`to_state`; a created event's `to_state` is the initial
state) and the rest of the event as JSON `details` (the command, the answer, the
fields), passwords redacted. `async_job` is CloudStack's: `job_status` 0 pending,
1 succeeded, 2 failed; `job_result` is JSON (the result, or `{"errortext": ...}`).
"""

from __future__ import annotations

from typing import Any

from ledger.copies import DataObjectInStore
from ledger.host import Host
from ledger.job import Job
from ledger.pool import StoragePool
from ledger.snapshot import Snapshot
from ledger.template import Template
from ledger.values import JobStatus
from ledger.vm import VirtualMachine
from ledger.volume import Volume
from projections.db import Db, iso, text, to_json
from projections.dispatch import aggregate_name, project

JOURNAL_COLUMNS = (
    "position",
    "timestamp",
    "object_type",
    "object_id",
    "event",
    "from_state",
    "to_state",
    "actor",
    "job_id",
    "causation_id",
    "details",
)
INSERT_JOURNAL = (
    f"INSERT INTO event_journal ({', '.join(JOURNAL_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in JOURNAL_COLUMNS)})"
)

#: fields that have their own column (or are the library's), never in `details`
_COLUMN_FIELDS = frozenset(
    {
        "originator_id",
        "originator_version",
        "originator_topic",
        "timestamp",
        "actor",
        "job_id",
        "causation_id",
        "from_state",
        "to_state",
        "from_status",
        "to_status",
    }
)

#: created events and job settlements: the state they lead to
_INITIAL: dict[type[Any], str] = {
    Host.Registered: "Up",
    StoragePool.Registered: "Up",
    Template.Registered: "Active",
    DataObjectInStore.Allocated: "Allocated",
    Volume.Allocated: "Allocated",
    Snapshot.Allocated: "Allocated",
    VirtualMachine.Deployed: "Stopped",
    Job.Submitted: JobStatus.pending.value,
}
_SETTLED: dict[type[Any], str] = {
    Job.Succeeded: JobStatus.succeeded.value,
    Job.Failed: JobStatus.failed.value,
}


def states(event: object) -> tuple[str | None, str | None]:
    """(from, to) of the event: its own fields, or what its class implies."""
    kind = type(event)
    if kind in _INITIAL:
        return None, _INITIAL[kind]
    if kind in _SETTLED:
        return JobStatus.pending.value, _SETTLED[kind]
    before = getattr(event, "from_state", getattr(event, "from_status", None))
    after = getattr(event, "to_state", getattr(event, "to_status", None))
    return text(before), text(after)


def details(event: object) -> str:
    fields = {k: v for k, v in vars(event).items() if k not in _COLUMN_FIELDS}
    return to_json(fields)


def journal_row(position: int, event: Any) -> tuple[Any, ...]:
    before, after = states(event)
    return (
        position,
        iso(event.timestamp),
        aggregate_name(event),
        str(event.originator_id),
        type(event).__name__,
        before,
        after,
        getattr(event, "actor", None),
        getattr(event, "job_id", None),
        getattr(event, "causation_id", None),
        details(event),
    )


def append(db: Db, rows: list[tuple[Any, ...]]) -> None:
    db.executemany(INSERT_JOURNAL, rows)


# ---------------------------------------------------------------- async_job

STATUS_CODES = {
    JobStatus.pending: 0,
    JobStatus.succeeded: 1,
    JobStatus.failed: 2,
}


@project.register
def _job_submitted(event: Job.Submitted, db: Db) -> None:
    now = iso(event.timestamp)
    db.insert(
        "async_job",
        {
            "id": str(event.originator_id),
            "job_cmd": event.cmd,
            "job_cmd_info": to_json(event.params),
            "job_status": STATUS_CODES[JobStatus.pending],
            "job_result": None,
            "instance_type": event.object_type,
            "instance_id": str(event.object_id),
            "created": now,
            "last_updated": now,
            "actor": event.actor,
        },
        key="id",
    )


@project.register
def _job_succeeded(event: Job.Succeeded, db: Db) -> None:
    db.update(
        "async_job",
        "id",
        str(event.originator_id),
        job_status=STATUS_CODES[JobStatus.succeeded],
        job_result=to_json(event.result),
        last_updated=iso(event.timestamp),
    )


@project.register
def _job_failed(event: Job.Failed, db: Db) -> None:
    db.update(
        "async_job",
        "id",
        str(event.originator_id),
        job_status=STATUS_CODES[JobStatus.failed],
        job_result=to_json({"errortext": event.error}),
        last_updated=iso(event.timestamp),
    )
