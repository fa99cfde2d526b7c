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

import json
from typing import Any
from uuid import UUID

from ledger.copies import DataObjectInStore
from ledger.host import Host
from ledger.job import Job
from ledger.pool import StoragePool
from ledger.snapshot import Snapshot
from ledger.template import Template
from ledger.values import JobStatus
from ledger.vm import VirtualMachine
from ledger.volume import Volume
from projections.db import Db, iso, redact, secret_key, text, to_json, uuid_text
from projections.routing import aggregate_name, project

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
COPY_JOURNAL = f"COPY event_journal ({', '.join(JOURNAL_COLUMNS)}) FROM STDIN"

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
    """The `event_journal` row of `event`: what `_slow_row` computes, faster."""
    kind = type(event)
    shape = _SHAPES.get(kind)
    if shape is None:
        shape = _SHAPES[kind] = _Shape(event)
    fields = event.__dict__
    if fields.keys() != shape.names:  # stored before a field was added, say
        return _slow_row(position, event)
    parts = []
    for prefix, name, secret in shape.details:
        value = fields[name]
        kind = type(value)
        if secret:
            parts.append(prefix + '"***"')
        elif kind is str:
            parts.append(prefix + _encode_str(redact(value) if "@" in value else value))
        elif kind is int:
            parts.append(prefix + int.__repr__(value))
        elif value is None:
            parts.append(prefix + "null")
        elif kind is bool:
            parts.append(prefix + ("true" if value else "false"))
        elif kind is UUID:
            parts.append(prefix + '"' + uuid_text(value) + '"')
        else:
            parts.append(prefix + _encode(redact(value)))
    before, after = states(event) if shape.states is None else shape.states
    return (
        position,
        iso(event.timestamp),
        shape.object_type,
        uuid_text(event.originator_id),
        shape.event,
        before,
        after,
        fields["actor"] if shape.actor else getattr(event, "actor", None),
        fields["job_id"] if shape.job_id else getattr(event, "job_id", None),
        fields["causation_id"]
        if shape.causation_id
        else getattr(event, "causation_id", None),
        "{" + ",".join(parts) + "}",
    )


def _slow_row(position: int, event: Any) -> tuple[Any, ...]:
    """The journal row by definition: `journal_row` must equal it for every event
    (tests compare the two)."""
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


_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode
_encode_str = json.encoder.encode_basestring_ascii  # what `_encode` does to a str


class _Shape:
    """What a journal row of one event class needs that the class alone decides,
    worked out once: about a third of a rebuild went into doing it per event.

    `details` is the JSON `to_json` writes, key by key in sorted order, each with
    its `"key":` prefix and whether `redact` hides it by its name; the value is
    encoded per event (the common types inline, exactly as `json.dumps` writes
    them; any other through `redact` and `json` as before).
    """

    def __init__(self, event: object) -> None:
        kind = type(event)
        fields = vars(event)
        self.names = frozenset(fields)
        self.object_type = aggregate_name(event)
        self.event = kind.__name__
        self.states: tuple[str | None, str | None] | None = None
        moves = ("from_state", "from_status", "to_state", "to_status")
        if kind in _INITIAL or kind in _SETTLED:
            self.states = states(event)
        elif not any(n in fields or hasattr(kind, n) for n in moves):
            self.states = (None, None)
        self.actor = "actor" in fields
        self.job_id = "job_id" in fields
        self.causation_id = "causation_id" in fields
        self.details = tuple(
            (_encode_str(name) + ":", name, secret_key(name))
            for name in sorted(str(k) for k in fields if k not in _COLUMN_FIELDS)
        )


_SHAPES: dict[type[Any], _Shape] = {}


def append(db: Db, rows: list[tuple[Any, ...]]) -> None:
    """Insert journal rows: one statement per row on SQLite (in-process, cheap);
    on PostgreSQL one COPY for all (psycopg's executemany costs a pipelined
    statement per row, on both sides)."""
    if db.dialect == "postgres":
        if rows:
            db.copy_rows(COPY_JOURNAL, rows)
        return
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
