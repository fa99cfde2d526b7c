"""`storctl store`: image stores, CloudStack's secondary storage (`image_store`)."""

from __future__ import annotations

import os

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
      storctl store add sim-sec --zone z9 --path /sim/sec --provider simulator
    """


@cli.command("add")
@click.argument("name")
@click.option("--zone", required=True, help="Zone the store serves.")
@click.option(
    "--path",
    "path",
    required=True,
    help="The store's location: for nfs the mounted export, which must exist.",
)
@click.option(
    "--provider",
    default="nfs",
    show_default=True,
    help="The store's provider: nfs, simulator, or another installed one "
    "(storctl provider list).",
)
def add(name: str, zone: str, path: str, provider: str) -> None:
    """Register an image store.

    The provider checks the location first (nfs: an absolute path to a
    directory that exists, the mounted export); a refusal writes nothing.

    \b
    Example:
      storctl store add sec1 --zone z1 --path /srv/secondary
    """
    from executors.providers import Role, locate

    where = locate(Role.IMAGE, provider, os.path.expanduser(path))
    a = app()
    store = infrastructure.register_store(
        a.ledger, a.ctx(), name, zone, where.path, where.recorded_as
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
