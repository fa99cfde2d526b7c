"""History, audit and incident timelines, read from `event_journal`.

CloudStack's nearest is its `event` table and `listEvents`; here every event is a
row (`journal.py`), and this module shapes rows for `storctl history` and `audit`
(CLI.md's `position, timestamp, objecttype, objectid, event, fromstate, tostate,
actor, jobid, details`, plus `duration` on an answer: answer time minus the time
of the request it answers), and draws an incident: the jobs an object took part
in, each object a lane of its states over time, the commands between them.
"""

from __future__ import annotations

import html
import itertools
import json
from collections import defaultdict
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

#: aggregate class -> (table, key column, name column) for labels
_TABLES: dict[str, tuple[str, str, str]] = {
    "Host": ("host", "uuid", "name"),
    "StoragePool": ("storage_pool", "uuid", "name"),
    "ImageStore": ("image_store", "uuid", "name"),
    "Template": ("vm_template", "uuid", "name"),
    "VirtualMachine": ("vm_instance", "uuid", "name"),
    "Volume": ("volumes", "uuid", "name"),
    "Snapshot": ("snapshots", "uuid", "name"),
    "Job": ("async_job", "id", "job_cmd"),
}
#: bookkeeping aggregates left out of pictures (they have no state to show)
_QUIET = frozenset({"NameClaim", "Zone", "Config", "SimulatorPlan"})


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


# ---------------------------------------------------------------- the picture


def incident(r: Reader, object_id: str) -> list[Row]:
    """Every row of every job the object took part in, and the object's own rows."""
    own = rows(r, object_id=object_id)
    known = {
        row["id"]
        for row in r.all("SELECT id FROM async_job")  # jobs, not causation ids
    }
    jobs = sorted({row["jobid"] for row in own if row["jobid"] in known})
    merged = {row["position"]: row for row in [*own, *rows(r, jobs=jobs)]}
    return [merged[p] for p in sorted(merged)]


def label(r: Reader, objecttype: str, objectid: str) -> str:
    table = _TABLES.get(objecttype)
    name = None
    if table is not None:
        name = r.scalar(
            f"SELECT {table[2]} FROM {table[0]} WHERE {table[1]} = ?",
            [objectid],
        )
    return f"{objecttype} {name}" if name else objecttype


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dot(r: Reader, object_id: str, title: str) -> str:
    """Graphviz source of the incident: a lane per object, time left to right."""
    timeline = [
        row for row in incident(r, object_id) if row["objecttype"] not in _QUIET
    ]
    lanes: dict[str, list[Row]] = defaultdict(list)
    for row in timeline:
        lanes[row["objectid"]].append(row)
    # causation ids name `object/version`; versions count the object's own rows
    node_of: dict[str, str] = {}
    for oid in lanes:
        for version, raw in enumerate(
            r.all(
                "SELECT position FROM event_journal WHERE object_id = ? "
                "ORDER BY position",
                [oid],
            ),
            start=1,
        ):
            node_of[f"{oid}/{version}"] = f"e{raw['position']}"
    lines = [
        "digraph incident {",
        "  rankdir=LR; newrank=true; compound=true;",
        f"  labelloc=t; label={_q(title)}; fontname=Helvetica;",
        '  node [shape=box, style="rounded,filled", fillcolor=white,'
        " fontname=Helvetica, fontsize=10];",
        "  edge [fontname=Helvetica, fontsize=9];",
    ]
    shown = {f"e{row['position']}" for row in timeline}
    for index, (oid, lane) in enumerate(lanes.items()):
        first = lane[0]
        lines.append(f"  subgraph cluster_{index} {{")
        name = label(r, first["objecttype"], oid)
        lines.append(f"    label={_q(f'{name} ({oid[:8]})')}; style=rounded;")
        for row in lane:
            state = ""
            if row["tostate"]:
                state = f"\n{row['fromstate'] or '∅'} → {row['tostate']}"
            text = (
                f"#{row['position']} {row['timestamp'][11:23]}\n{row['event']}{state}"
            )
            failed = isinstance(row["details"].get("answer"), dict) and not row[
                "details"
            ]["answer"].get("result")
            color = "mistyrose" if failed or row["event"] == "Failed" else "white"
            lines.append(
                f"    e{row['position']} [label={_q(text)}, fillcolor={color}];"
            )
        for a, b in itertools.pairwise(lane):
            if node_of.get(b["causation"] or "") == f"e{a['position']}":
                continue  # the causal edge below joins them
            lines.append(
                f"    e{a['position']} -> e{b['position']} [color=gray, weight=10];"
            )
        lines.append("  }")
    for row in timeline:
        cause = node_of.get(row["causation"] or "")
        here = f"e{row['position']}"
        if cause is None or cause not in shown or cause == here:
            continue
        if "duration" in row:
            request = next((t for t in timeline if f"e{t['position']}" == cause), None)
            command = (request or {}).get("details", {}).get("command") or {}
            text = f"{command.get('kind', 'command')}\n{row['duration']:.3f} s"
            lines.append(
                f"  {cause} -> {here} [label={_q(text)}, color=blue, penwidth=2,"
                " weight=10];"
            )
        else:
            lines.append(f"  {cause} -> {here} [color=darkgreen, style=dashed];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def html_page(title: str, svg: str, table_rows: list[Row]) -> str:
    """A self-contained page: the picture (SVG) and the rows under it."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in [*COLUMNS, "duration"])
    body = []
    for row in table_rows:
        cells = []
        for col in [*COLUMNS, "duration"]:
            value = row.get(col)
            if col == "details":
                value = summary(value or {})
            cells.append(f"<td>{html.escape('' if value is None else str(value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        "<!doctype html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif}table{border-collapse:collapse;"
        "font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px}</style>"
        f"</head><body><h1>{html.escape(title)}</h1>\n{svg}\n"
        f"<table><tr>{head}</tr>\n" + "\n".join(body) + "</table></body></html>\n"
    )
