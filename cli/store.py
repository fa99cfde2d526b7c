"""`storctl store`: image stores, CloudStack's secondary storage (`image_store`)."""

from __future__ import annotations

from pathlib import Path

import click

from cli.context import app
from cli.output import emit
from ledger.usecases import infrastructure

COLUMNS = ["id", "name", "zoneid", "providername", "path", "readonly"]


@click.group()
def cli() -> None:
    """Image stores (secondary storage): where templates and snapshot backups live.

    \b
    Example:
      storctl store add sec1 --zone z1 --path /srv/secondary
    """


@cli.command("add")
@click.argument("name")
@click.option("--zone", required=True, help="Zone the store serves.")
@click.option("--path", "path", required=True, help="Directory (a mounted NFS export).")
@click.option("--provider", default="nfs", show_default=True, help="Provider name.")
def add(name: str, zone: str, path: str, provider: str) -> None:
    """Register an image store.

    \b
    Example:
      storctl store add sec1 --zone z1 --path /srv/secondary
    """
    a = app()
    full = str(Path(path).expanduser().absolute())
    store = infrastructure.register_store(
        a.ledger, a.ctx(), name, zone, full, provider.upper()
    )
    _show(str(store.id))


@cli.command("list")
def list_() -> None:
    """List image stores.

    \b
    Example:
      storctl store list
    """
    from projections.queries import list_stores

    a = app()
    with a.reader() as r:
        emit(a.output, list_stores(r), COLUMNS)


@cli.command("show")
@click.argument("ref", metavar="ID")
def show(ref: str) -> None:
    """Show one image store, by id or name.

    \b
    Example:
      storctl store show sec1
    """
    _show(ref)


def _show(ref: str) -> None:
    from projections.queries import find

    a = app()
    with a.reader() as r:
        emit(a.output, find(r, "store", ref), COLUMNS)
