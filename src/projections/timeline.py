"""History, audit and incident timelines, read from `event_journal`.

CloudStack's nearest is its `event` table and `listEvents`; here every event is a
row (`journal.py`), and this module shapes rows for `storctl history` and `audit`
(CLI.md's `position, timestamp, objecttype, objectid, event, fromstate, tostate,
actor, jobid, details`, plus `duration` on an answer: answer time minus the time
of the request it answers). `incident.py` draws them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from ledger.errors import Ambiguous, NotFound
from ledger.moments import Bound, parse_bound
from projections.db import iso
from projections.queries import KINDS, find
from projections.reader import Reader

Row = dict[str, Any]

COLUMNS = [
    "position",
    "timestamp",
    "objecttype",
    "objectid",
    "event",
    "fromstate",
    "tostate",
    "actor",
    "jobid",
    "details",
]


def time_bound(text: str | None, what: str) -> str | None:
    """A time bound as the journal writes its times (text order is time order),
    for filters over rows already read (`incident.scoped`); a position bound has
    no time and bounds nothing here (`rows` applies it). Refused (exit 2) before
    any database is read."""
    if text is None:
        return None
    at = bound(text, what)
    return iso(at.moment) if at.moment is not None else None


def bound(text: str, what: str) -> Bound:
    """`--since`/`--until` as given (a position, `2h`, `yesterday`, an ISO time),
    against the clock now; refused (exit 2) before any database is read."""
    return parse_bound(text, what, datetime.now(UTC))


def bound_clause(text: str | None, what: str, op: str) -> tuple[str, Any] | None:
    """The journal filter for one end: a position, or a time as the journal
    writes it (so text comparison is time order)."""
    if text is None:
        return None
    at = bound(text, what)
    if at.position is not None:
        return f"position {op} ?", at.position
    assert at.moment is not None
    return f"timestamp {op} ?", iso(at.moment)


def _shape(row: Row) -> Row:
    return {
        "position": row["position"],
        "timestamp": row["timestamp"],
        "objecttype": row["object_type"],
        "objectid": row["object_id"],
        "event": row["event"],
        "fromstate": row["from_state"],
        "tostate": row["to_state"],
        "actor": row["actor"],
        "jobid": row["job_id"],
        "details": json.loads(row["details"]) if row["details"] else {},
    }


def _seconds(start: str, end: str) -> float:
    def parse(t: str) -> datetime:
        return datetime.fromisoformat(t.replace("Z", "+00:00"))

    return round((parse(end) - parse(start)).total_seconds(), 6)


def _request_of(r: Reader, causation: str | None) -> Row | None:
    """The journal row named by a causation id `object/version`."""
    if not causation or "/" not in causation:
        return None
    oid, _, version = causation.rpartition("/")
    if not version.isdigit() or int(version) < 1:
        return None
    return r.one(
        "SELECT position, timestamp, event FROM event_journal WHERE object_id = ?"
        " ORDER BY position LIMIT 1 OFFSET ?",
        [oid, int(version) - 1],
    )


def rows(
    r: Reader,
    *,
    object_id: str | None = None,
    job: str | None = None,
    event: str | None = None,
    actor: str | None = None,
    since: str | None = None,
    until: str | None = None,
    jobs: list[str] | None = None,
    after: int | None = None,
    last: int | None = None,
) -> list[Row]:
    """Journal rows in log order, filtered; an answer row gets `duration` (s).
    `after` a position (what `--follow` has shown), `last` the newest N only."""
    filters: list[tuple[str, Any]] = [
        ("object_id = ?", object_id),
        ("job_id = ?", job),
        ("LOWER(event) = LOWER(?)", event),
        ("position > ?", after),
    ]
    for clause in (
        bound_clause(since, "--since", ">="),
        bound_clause(until, "--until", "<="),
    ):
        if clause is not None:
            filters.append(clause)
    where = [clause for clause, value in filters if value is not None]
    params = [value for _, value in filters if value is not None]
    if actor is not None:
        # who appended, or the name it was appended on behalf of (`--actor`)
        where.append("(actor = ? OR details LIKE ?)")
        params += [actor, f'%"onbehalfof":{json.dumps(actor)}%']
    if jobs is not None:
        if not jobs:
            return []
        where.append(f"job_id IN ({', '.join('?' for _ in jobs)})")
        params += jobs
    sql = "SELECT * FROM event_journal"
    if where:
        sql += " WHERE " + " AND ".join(where)
    out = []
    found = r.all(sql + " ORDER BY position", params)
    if last is not None:
        found = found[-last:] if last else []
    for raw in found:
        row = _shape(raw)
        row["causation"] = raw["causation_id"]
        if row["event"].endswith("Answered"):
            request = _request_of(r, raw["causation_id"])
            if request is not None:
                row["duration"] = _seconds(request["timestamp"], row["timestamp"])
        out.append(row)
    return out


def public(row: Row) -> Row:
    """The row as the CLI shows it (no internal keys)."""
    return {k: v for k, v in row.items() if k != "causation"}


def resolve_object(r: Reader, ref: str) -> str:
    """An object id from an id (any object, even one with no table) or a name."""
    if r.scalar("SELECT 1 FROM event_journal WHERE object_id = ? LIMIT 1", [ref]):
        return ref
    found: list[str] = []
    for name, kind in KINDS.items():
        if not kind.named or name == "imagestore":
            continue
        try:
            found.append(find(r, name, ref)["id"])
        except NotFound:
            continue
    if not found:
        raise NotFound("object", ref)
    if len(found) > 1:
        raise Ambiguous("object", ref, found)
    return found[0]


def resolve_job(r: Reader, ref: str) -> str:
    """A job id from its full id (kept as given) or a unique prefix of it."""
    if len(ref) == 36:
        return ref
    return str(find(r, "job", ref)["jobid"])


def summary(details: dict[str, Any]) -> str:
    """A short line for a table cell: the command sent or the answer received."""
    command = details.get("command")
    answer = details.get("answer")
    if isinstance(command, dict):
        return f"{command.get('kind')} {command.get('commandId', '')}".strip()
    if isinstance(answer, dict):
        verdict = "ok" if answer.get("result") else "FAILED"
        text = answer.get("details") or ""
        return f"{answer.get('kind')} {verdict} {text}".strip()
    if "error" in details:
        return f"error: {details['error']}"
    parts = [f"{k}={v}" for k, v in details.items() if not isinstance(v, dict | list)]
    return " ".join(parts)
