"""`audit --follow` and `job list --watch`: print what is there, then what comes,
until interrupted (kubectl's `-w`).

The tables are read again every `INTERVAL` seconds through a fresh reader (which
catches them up with events other processes appended). A table prints its header
once; JSON becomes one object a line, so `jq` can read the stream as it grows.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import click

from cli.context import app
from cli.output import emit
from projections.reader import Reader

Row = dict[str, Any]
#: seconds between two reads of the tables
INTERVAL = 0.5


def stream(rows: Sequence[Row], cols: Sequence[str], *, first: bool) -> None:
    """Rows in the chosen format, as part of a stream (header on the first batch)."""
    output = app().output
    if output == "json":
        for row in rows:
            click.echo(json.dumps(row, default=str))
        return
    if output == "csv" or not rows:
        if rows or first:
            emit("csv" if output == "csv" else output, list(rows), cols)
        return
    from cli import tables

    # every column in full: a stream's batches are drawn one by one, not fitted
    text = tables.draw(rows, cols, wide=True)
    click.echo(text if first else text.split("\n", 1)[1])


def until_interrupted(step: Callable[[Reader], None]) -> None:
    """Run `step` on fresh tables every `INTERVAL` s; ^C ends it with exit 0."""
    a = app()
    try:
        while True:
            time.sleep(INTERVAL)  # a poll: nothing to wait on across processes
            with a.reader() as r:
                step(r)
    except KeyboardInterrupt:
        return


def follow_rows(
    first: list[Row],
    head: int,
    fetch: Callable[[Reader, int], list[Row]],
    shape: Callable[[list[Row]], tuple[list[Row], list[str]]],
) -> None:
    """Journal rows: those found, then every row past the last position seen."""
    shown, cols = shape(first)
    stream(shown, cols, first=True)
    seen = max([head, *(row["position"] for row in first)])

    def step(r: Reader) -> None:
        nonlocal seen
        new = fetch(r, seen)
        if new:
            seen = new[-1]["position"]
            stream(shape(new)[0], cols, first=False)

    until_interrupted(step)


def watch_rows(
    first: list[Row],
    fetch: Callable[[Reader], list[Row]],
    key: Callable[[Row], Hashable],
    cols: list[str],
) -> None:
    """Rows of a table: those found, then each row new or changed (by `key`)."""
    stream(first, cols, first=True)
    seen = {key(row) for row in first}

    def step(r: Reader) -> None:
        new = [row for row in fetch(r) if key(row) not in seen]
        seen.update(key(row) for row in new)
        if new:
            stream(new, cols, first=False)

    until_interrupted(step)
