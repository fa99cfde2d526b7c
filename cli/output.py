"""Output in the three formats of CLI.md: a table for people, JSON and CSV for scripts.

Data goes to stdout, messages to stderr. JSON is one object for a single result and
an array for a list; sizes are integer bytes in JSON and CSV, readable in tables.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click

SIZE_FIELDS = frozenset(
    {"size", "physicalsize", "disksizetotal", "disksizeallocated", "disksizeused"}
)


def emit(
    output: str,
    data: dict[str, Any] | Sequence[dict[str, Any]],
    columns: Sequence[str] | None = None,
) -> None:
    rows = [data] if isinstance(data, dict) else list(data)
    if output == "json":
        click.echo(dumps(data))
        return
    cols = list(columns or (rows[0].keys() if rows else []))
    if output == "csv":
        import csv
        import io

        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(cols)
        for row in rows:
            writer.writerow([_csv_cell(row.get(c)) for c in cols])
        click.echo(buf.getvalue(), nl=False)
        return
    if isinstance(data, dict):
        width = max((len(k) for k in data), default=0)
        for key, value in data.items():
            click.echo(f"{key:<{width}}  {_cell(key, value)}")
        return
    click.echo(table(rows, cols))


#: encodes with the C encoder (no `indent`), each field on its own line
_FLAT = json.JSONEncoder(default=str, separators=(",\n    ", ": "))
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _flat(row: Any) -> bool:
    """A non-empty dict of JSON scalars: its text cannot look like a row's end."""
    return (
        type(row) is dict and bool(row) and _SCALARS.issuperset(map(type, row.values()))
    )


def dumps(data: Any) -> str:
    """`json.dumps(data, indent=2, default=str)`, the same text, sooner for a
    list of flat rows (`volume list` of thousands): the standard library encodes
    with `indent` in Python, a tenth as fast as its C encoder, which this uses
    with the indentation put in as separators. Rows holding lists or dicts (a
    pool's tags) go the library's way; a unit test holds the two texts equal."""
    if isinstance(data, list) and data and all(map(_flat, data)):
        # Values are scalars, and a newline inside a string is escaped, so
        # "},\n    {" occurs between rows only.
        text = _FLAT.encode(data)[2:-2].replace("},\n    {", "\n  },\n  {\n    ")
        return "[\n  {\n    " + text + "\n  }\n]"
    return json.dumps(data, indent=2, default=str)


def table(rows: Sequence[dict[str, Any]], cols: Sequence[str]) -> str:
    cells = [[_cell(c, row.get(c)) for c in cols] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(cols)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(cols, widths, strict=True))]
    lines += [
        "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
        for r in cells
    ]
    if not rows:
        lines.append("(none)")
    return "\n".join(lines)


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key in SIZE_FIELDS and isinstance(value, int):
        from ledger.values import format_size

        return format_size(value)
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def say(message: str) -> None:
    """A message for the operator, on stderr so stdout stays data."""
    click.echo(message, err=True)
