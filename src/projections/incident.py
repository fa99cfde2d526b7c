"""An incident drawn: the jobs an object (or one job) took part in, laid out by time.

Time runs down the page and each object is a column (a lane), so the width is the
number of objects, not the number of events: 20 events of three objects stay
about a screen wide. A time axis on the left names each row's time (and the
seconds since the first); events that happened in the same second on different
objects share a row, two events of one object never do. Lane titles sit at the
top and again at the bottom. A failed answer is red and says why; the arrow from
a request to its answer names the command, the host that ran it and how long it
took. `links=True` gives every node an id (`e<position>`) and a link to its
table row (`#row-<position>`), for the incident page (`incident_page.py`).
"""

from __future__ import annotations

import itertools
import textwrap
from collections import defaultdict
from typing import Any

from projections.reader import Reader
from projections.timeline import rows, time_bound

Row = dict[str, Any]

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
QUIET = frozenset({"NameClaim", "Zone", "Config", "SimulatorPlan"})
FAILED_FILL, FAILED_LINE = "#ffd9d9", "#c00000"


def incident(r: Reader, object_id: str) -> list[Row]:
    """Every row of every job the object took part in, and the object's own rows."""
    own = rows(r, object_id=object_id)
    known = {row["id"] for row in r.all("SELECT id FROM async_job")}
    jobs = sorted({row["jobid"] for row in own if row["jobid"] in known})
    merged = {row["position"]: row for row in [*own, *rows(r, jobs=jobs)]}
    return [merged[p] for p in sorted(merged)]


def scoped(
    r: Reader,
    *,
    object_id: str | None = None,
    job: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> list[Row]:
    """The rows a picture shows: one job's, or an object's incident; within
    `since`..`until`; without bookkeeping aggregates."""
    found = rows(r, job=job) if job else incident(r, object_id or "")
    low, high = time_bound(since, "--since"), time_bound(until, "--until")
    return [
        row
        for row in found
        if row["objecttype"] not in QUIET
        and (low is None or row["timestamp"] >= low)
        and (high is None or row["timestamp"] <= high)
    ]


def label(r: Reader, objecttype: str, objectid: str) -> str:
    """`Volume data1`: the kind and the name where the object has one."""
    table = _TABLES.get(objecttype)
    name = None
    if table is not None:
        name = r.scalar(
            f"SELECT {table[2]} FROM {table[0]} WHERE {table[1]} = ?", [objectid]
        )
    return f"{objecttype} {name}" if name else objecttype


def failure(row: Row) -> str | None:
    """Why the row failed (the agent's words, or the error), or None if it did not."""
    details = row["details"]
    answer = details.get("answer")
    if isinstance(answer, dict) and not answer.get("result"):
        return str(answer.get("details") or "failed")
    if row["event"] == "Failed" or "error" in details:
        return str(details.get("error") or "failed")
    return None


def host_of(r: Reader, command: dict[str, Any]) -> str | None:
    """The host that ran a command, as CloudStack's endpoint selection picks it:
    the VM's host for a VM command, else an Up host in the pool's cluster. Read
    from the tables (an answer does not record it), so a picture imports nothing
    of the write side."""
    vm = command.get("vmId")
    if vm:
        name = r.scalar(
            "SELECT h.name FROM vm_instance v JOIN host h ON h.uuid = v.host_id"
            " WHERE v.uuid = ?",
            [vm],
        )
        if name:
            return str(name)
    stack = [command]
    while stack:  # the first data store named anywhere in the command
        item = stack.pop()
        store = item.get("dataStore")
        if isinstance(store, dict) and store.get("uuid"):
            name = r.scalar(
                "SELECT h.name FROM storage_pool p JOIN host h"
                " ON h.cluster_id = p.cluster_id OR h.uuid = p.host_id"
                " WHERE p.uuid = ? ORDER BY h.status = 'Up' DESC, h.name LIMIT 1",
                [store["uuid"]],
            )
            return str(name) if name else None
        stack += [v for v in item.values() if isinstance(v, dict)]
    return None


def time_rows(timeline: list[Row]) -> list[list[Row]]:
    """The picture's rows, top to bottom: a new row at a new second, or when the
    row already holds an event of the same object (a lane never doubles up)."""
    steps: list[list[Row]] = []
    for row in timeline:
        current = steps[-1] if steps else None
        if (
            current is None
            or row["timestamp"][:19] != current[0]["timestamp"][:19]
            or any(r["objectid"] == row["objectid"] for r in current)
        ):
            steps.append([row])
        else:
            current.append(row)
    return steps


def _q(text: str) -> str:
    """A dot string, one statement a line (newlines as dot's centred `\\n`)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\n", "\\n") + '"'


def _wrap(text: str, width: int = 30, lines: int = 3) -> str:
    return "\n".join(textwrap.wrap(text, width)[:lines])


def _seconds(a: str, b: str) -> float:
    from datetime import datetime

    def parse(t: str) -> datetime:
        return datetime.fromisoformat(t.replace("Z", "+00:00"))

    return (parse(b) - parse(a)).total_seconds()


LEGEND = (
    '<table border="0" cellspacing="4" cellpadding="3"><tr>'
    '<td border="1" style="rounded">event: from → to state</td>'
    f'<td border="1" style="rounded" bgcolor="{FAILED_FILL}" color="{FAILED_LINE}">'
    f'<font color="{FAILED_LINE}">failed: and why</font></td>'
    '<td><font color="blue">→ command on host, seconds</font></td>'
    '<td><font color="darkgreen">⇢ caused</font></td>'
    "<td>time runs down; one column per object</td></tr></table>"
)


def _node(row: Row, *, links: bool) -> str:
    position = row["position"]
    text = f"#{position} {row['event']}"
    if row["tostate"]:
        text += f"\n{row['fromstate'] or '∅'} → {row['tostate']}"
    why = failure(row)
    attrs = [f"id={_q(f'e{position}')}"]
    if why is not None:
        text += "\n✗ " + _wrap(why)
        attrs += [
            f'fillcolor="{FAILED_FILL}"',
            f'color="{FAILED_LINE}"',
            f'fontcolor="{FAILED_LINE}"',
            "penwidth=2",
        ]
    if links:
        attrs += [f"URL={_q(f'#row-{position}')}", f"tooltip={_q(text)}"]
    return f"e{position} [label={_q(text)}, {', '.join(attrs)}];"


def dot(r: Reader, timeline: list[Row], title: str, *, links: bool = False) -> str:
    """Graphviz source of the rows `scoped` chose (see the module's docstring)."""
    lanes: dict[str, list[Row]] = defaultdict(list)
    for row in timeline:
        lanes[row["objectid"]].append(row)
    node_of = _causation_nodes(r, lanes)
    shown = {f"e{row['position']}" for row in timeline}
    steps = time_rows(timeline)
    lines = [
        "digraph incident {",
        "  rankdir=TB; newrank=true; nodesep=0.25; ranksep=0.3; fontname=Helvetica;",
        f'  labelloc=t; label=<<table border="0"><tr><td><b>{_html(title)}</b>'
        f"</td></tr><tr><td>{LEGEND}</td></tr></table>>;",
        '  node [shape=box, style="rounded,filled", fillcolor=white,'
        " fontname=Helvetica, fontsize=10];",
        "  edge [fontname=Helvetica, fontsize=9];",
        '  node [shape=plaintext, style="", fontsize=9]; '
        'thead [label="time (UTC)"]; tfoot [label=""];',
    ]
    start = timeline[0]["timestamp"] if timeline else ""
    axis = ["thead"]
    for index, step in enumerate(steps):
        stamp = step[0]["timestamp"]
        since = _seconds(start, stamp)
        lines.append(f"  t{index} [label={_q(f'{stamp[11:23]}  +{since:.3f} s')}];")
        axis.append(f"t{index}")
    axis.append("tfoot")
    lines.append(f"  {' -> '.join(axis)} [color=gray, arrowhead=none];")
    lines.append('  node [shape=box, style="rounded,filled", fontsize=10];')
    for index, (oid, lane) in enumerate(lanes.items()):
        name = _q(f"{label(r, lane[0]['objecttype'], oid)} ({oid[:8]})")
        lines.append(f"  subgraph cluster_{index} {{")
        lines.append('    label=""; style="rounded,dashed"; color=gray;')
        lines.append(
            f'    h{index} [label={name}, shape=plaintext, style="", fontsize=11];'
        )
        lines.append(
            f'    f{index} [label={name}, shape=plaintext, style="", fontsize=11];'
        )
        lines.extend("    " + _node(row, links=links) for row in lane)
        chain = [f"h{index}", *(f"e{row['position']}" for row in lane), f"f{index}"]
        for a, b in itertools.pairwise(chain):
            lines.append(f"    {a} -> {b} [style=invis, weight=20];")
        lines.append("  }")
    heads = " ".join(f"h{i}" for i in range(len(lanes)))
    feet = " ".join(f"f{i}" for i in range(len(lanes)))
    lines.append(f"  {{rank=same; thead; {heads}}}")
    lines.append(f"  {{rank=same; tfoot; {feet}}}")
    for index, step in enumerate(steps):
        members = " ".join(f"e{row['position']}" for row in step)
        lines.append(f"  {{rank=same; t{index}; {members}}}")
    lines += _causal_edges(r, timeline, node_of, shown)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _html(text: str) -> str:
    import html

    return html.escape(text, quote=True)


def _causation_nodes(r: Reader, lanes: dict[str, list[Row]]) -> dict[str, str]:
    """Causation ids (`object/version`, versions counting the object's own rows)
    to the node of the row they name."""
    node_of: dict[str, str] = {}
    for oid in lanes:
        positions = r.all(
            "SELECT position FROM event_journal WHERE object_id = ? ORDER BY position",
            [oid],
        )
        for version, raw in enumerate(positions, start=1):
            node_of[f"{oid}/{version}"] = f"e{raw['position']}"
    return node_of


def _causal_edges(
    r: Reader, timeline: list[Row], node_of: dict[str, str], shown: set[str]
) -> list[str]:
    """A request to its answer (blue, command on host, seconds; red if it
    failed); anything else to what it caused (green, dashed)."""
    by_node = {f"e{row['position']}": row for row in timeline}
    lines = []
    for row in timeline:
        cause = node_of.get(row.get("causation") or "")
        here = f"e{row['position']}"
        if cause is None or cause not in shown or cause == here:
            continue
        if "duration" in row:
            command = by_node[cause]["details"].get("command") or {}
            host = host_of(r, command) if command else None
            text = str(command.get("kind", "command"))
            if host:
                text += f"\non {host}"
            text += f"\n{row['duration']:.3f} s"
            color = FAILED_LINE if failure(row) else "blue"
            lines.append(
                f"  {cause} -> {here} [label={_q(text)}, color={_q(color)},"
                f" fontcolor={_q(color)}, penwidth=2, constraint=false];"
            )
        else:
            lines.append(
                f"  {cause} -> {here} [color=darkgreen, style=dashed,"
                " constraint=false];"
            )
    return lines


def names(r: Reader, timeline: list[Row]) -> dict[str, str]:
    """Object ids to the labels a page shows: each lane's, and the pools'."""
    found = {
        row["objectid"]: label(r, row["objecttype"], row["objectid"])
        for row in timeline
    }
    for pool in r.all("SELECT uuid, name FROM storage_pool"):
        found.setdefault(pool["uuid"], str(pool["name"]))
    return found
