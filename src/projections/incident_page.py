"""The incident as one self-contained HTML page, to attach to a ticket.

No script, no file beside it: the timeline is inline SVG made responsive (its
fixed `width`/`height` in points replaced by `width="100%"` and the `viewBox`
graphviz writes), each node links to its table row (`#row-<position>`) and each
row back to its node (`#e<position>`); failed rows are red with the agent's
words; every allocation decision in the rows is spelled out under the table,
pool by pool, with the reason each was taken or refused.
"""

from __future__ import annotations

import html
import re
from typing import Any

from projections.incident import failure
from projections.timeline import COLUMNS, summary

Row = dict[str, Any]

STYLE = """
body{font-family:Helvetica,Arial,sans-serif;margin:1em;color:#222}
svg{display:block;box-sizing:border-box;max-width:100%;height:auto;
border:1px solid #ddd}
table{border-collapse:collapse;font-size:12px;margin-top:1em}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top}
tr:target{outline:3px solid #f90}
tr.failed td{color:#c00000;background:#fff0f0}
.why td.taken{color:#006400}.why td.refused{color:#c00000}
"""


def responsive(svg: str) -> str:
    """The `<svg>` start tag with `width="100%"` and no height (the viewBox
    keeps its proportions), so the picture fits the window, not 4,600 pt."""
    start = svg.find("<svg")
    end = svg.find(">", start)
    tag = re.sub(r'\s(width|height)="[^"]*"', "", svg[start:end])
    if "viewBox" not in tag:
        raise ValueError("an SVG without a viewBox cannot scale")
    return svg[:start] + tag + ' width="100%"' + svg[end:]


def _cell(row: Row, col: str) -> str:
    value = row.get(col)
    if col == "details":
        value = summary(value or {})
    if col == "position":
        p = row["position"]
        return f'<td><a href="#e{p}">#{p}</a></td>'
    return f"<td>{html.escape('' if value is None else str(value))}</td>"


def _placements(rows: list[Row], names: dict[str, str]) -> str:
    """Every `AllocationDecided` row: the pools judged, taken or refused, why."""
    parts = []
    for row in rows:
        if row["event"] != "AllocationDecided":
            continue
        details = row["details"]
        chosen = details.get("chosen")
        head = (
            f"pool {names.get(chosen, chosen)} taken" if chosen else "no pool suitable"
        )
        body = []
        for verdict in details.get("verdicts", []):
            taken = bool(verdict.get("taken"))
            pool = verdict.get("pool") or verdict.get("pool_names") or verdict
            body.append(
                f"<tr><td>{html.escape(str(pool))}</td>"
                f"<td>{html.escape(str(verdict.get('allocator', '')))}</td>"
                f'<td class="{"taken" if taken else "refused"}">'
                f"{'taken' if taken else 'refused'}</td>"
                f"<td>{html.escape(str(verdict.get('reason', '')))}</td></tr>"
            )
        parts.append(
            f'<h3 id="why-{row["position"]}"><a href="#row-{row["position"]}">'
            f"#{row['position']}</a> {html.escape(names.get(row['objectid'], ''))}:"
            f" {html.escape(head)}</h3>"
            '<table class="why"><tr><th>pool</th><th>allocator</th><th>verdict</th>'
            "<th>reason</th></tr>" + "".join(body) + "</table>"
        )
    if not parts:
        return ""
    return "<h2>Why each placement</h2>\n" + "\n".join(parts)


def page(title: str, svg: str, rows: list[Row], names: dict[str, str]) -> str:
    """The page: title, the responsive picture, the rows, the placements."""
    cols = [*COLUMNS, "duration"]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = []
    for row in rows:
        why = failure(row)
        cls = ' class="failed"' if why is not None else ""
        cells = "".join(_cell(row, col) for col in cols)
        body.append(f'<tr id="row-{row["position"]}"{cls}>{cells}</tr>')
    return (
        "<!doctype html>\n<html><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>\n{responsive(svg)}\n"
        f"<table class='rows'><tr>{head}</tr>\n"
        + "\n".join(body)
        + "</table>\n"
        + _placements(rows, names)
        + "\n</body></html>\n"
    )
