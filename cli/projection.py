"""`storctl projection`: the projected tables' position, lag and rebuild."""

from __future__ import annotations

from functools import partial

import click

from cli.context import app
from cli.output import emit, say


@click.group()
def cli() -> None:
    """Projected tables (volumes, storage_pool, ...): status and rebuild.

    \b
    Example:
      storctl projection status
      storctl projection rebuild
    """


@cli.command("status")
def status() -> None:
    """Where the projections are in the log, and how far behind.

    \b
    Example:
      storctl -o json projection status
    """
    from projections.projector import status as projection_status

    a = app()
    emit(a.output, projection_status(a.ledger))


@cli.command("rebuild")
def rebuild() -> None:
    """Drop every projected table and rebuild it from the events.

    On a SQLite file of 100,000 events or more (and two cores), a second
    process writes the audit journal's rows for the log's tail meanwhile, in
    a scratch file beside the ledger (LEDGER.journal-stage-PID) that is gone
    when the rebuild ends; if it fails, the rebuild writes them itself. On a
    terminal, a progress bar on stderr.

    \b
    Example:
      storctl projection rebuild
    """
    from cli.progress import ProgressBar
    from projections.projector import rebuild as projection_rebuild

    a = app()
    bar = ProgressBar.shared()
    try:
        n = projection_rebuild(a.ledger, on_progress=partial(bar.update, "rebuild"))
    finally:
        bar.end()
    say(f"rebuilt from {n} events")
    from projections.projector import status as projection_status

    emit(a.output, projection_status(a.ledger))
