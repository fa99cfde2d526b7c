"""Output in the formats of docs/cli.md: tables for people (`table`, `wide`), JSON,
YAML and CSV for scripts.

Data goes to stdout, messages to stderr. JSON is one object for a single result and
an array for a list, with CloudStack's field names, full ids and real booleans;
sizes are integer bytes in JSON, YAML and CSV, readable in tables. Every format
spells a boolean `true`/`false` and a time `2026-12-07T14:03:05Z` (UTC, `Z`; the
data formats keep the recorded microseconds so that text order stays time order).
The tables are drawn by `cli.tables`, which imports `rich` only when one is drawn.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click

from cli.spelling import Names, spell

#: every `-o` value; `table` fits the terminal, `wide` shows every column in full
FORMATS = ("table", "wide", "json", "yaml", "csv")


def emit(
    output: str,
    data: dict[str, Any] | Sequence[dict[str, Any]],
    columns: Sequence[str] | None = None,
    *,
    names: Names | None = None,
) -> None:
    """Print `data` as `output`. `columns` are the table's default columns, in
    order; `-c/--columns` (the command's `AppContext.columns`) chooses others, in
    every format. `names` gives object names by id (or is the reader to ask),
    asked only for a table."""
    chosen = _chosen_columns()
    if chosen is not None:
        data = _select(data, chosen, columns)
        columns = chosen
    if output == "json":
        click.echo(dumps(data))
        return
    if output == "yaml":
        import yaml  # type: ignore[import-untyped]

        plain = json.loads(json.dumps(data, default=str))
        click.echo(yaml.safe_dump(plain, sort_keys=False, allow_unicode=True), nl=False)
        return
    rows = [data] if isinstance(data, dict) else list(data)
    cols = list(columns or (rows[0].keys() if rows else []))
    if output == "csv":
        import csv
        import io

        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(cols)
        for row in rows:
            writer.writerow([spell(row.get(c)) for c in cols])
        click.echo(buf.getvalue(), nl=False)
        return
    from cli import tables

    wide = output == "wide"
    if isinstance(data, dict):
        text = tables.record(data, names=names, wide=wide)
    else:
        text = tables.draw(rows, cols, names=names, wide=wide, chosen=chosen)
    click.echo(text, color=tables.coloured())


def _chosen_columns() -> list[str] | None:
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return None
    # the root's AppContext, read without importing `cli.context` (a circle)
    columns = getattr(ctx.find_root().obj, "columns", None)
    return list(columns) if columns else None


def _select(
    data: dict[str, Any] | Sequence[dict[str, Any]],
    chosen: list[str],
    columns: Sequence[str] | None,
) -> dict[str, Any] | list[dict[str, Any]]:
    """The fields `-c` names, in its order; an unknown one is refused (exit 2)
    with the ones there are."""
    rows = [data] if isinstance(data, dict) else list(data)
    known = list(columns or [])
    for row in rows:
        known += [k for k in row if k not in known]
    missing = [c for c in chosen if c not in known]
    if missing and known:
        from ledger.errors import InvalidInput

        raise InvalidInput(
            "--columns", ",".join(missing), f"expected some of {','.join(known)}"
        )
    picked = [{c: row.get(c) for c in chosen} for row in rows]
    return picked[0] if isinstance(data, dict) else picked


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


def say(message: str) -> None:
    """A message for the operator, on stderr so stdout stays data."""
    click.echo(message, err=True)
