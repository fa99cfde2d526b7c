"""`storctl store`: image stores, CloudStack's secondary storage (`image_store`)."""

from __future__ import annotations

import click

from cli.completion import names
from cli.context import app
from cli.output import emit

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
    help="The store's location: for nfs the mounted export, which must exist.",
)
@click.option(
    "--url",
    help="The store's location as a URL, e.g. s3://BUCKET?endpoint=http://HOST:PORT "
    "(instead of --path).",
)
@click.option(
    "--provider",
    default="nfs",
    show_default=True,
    help="The store's provider: nfs, simulator, or another installed one "
    "(storctl provider list).",
)
@click.option(
    "--role",
    type=click.Choice(["image", "cache"], case_sensitive=False),
    default="image",
    show_default=True,
    help="image: templates and backups live here; cache: CloudStack's staging "
    "store, through which an S3 or Swift store's data reaches the pools.",
)
@click.option(
    "--credentials",
    metavar="NAME",
    help="The name of the store's credentials in the profile "
    "($STORCTL_CREDENTIALS) or the environment; the secret is never recorded.",
)
def add(
    name: str,
    zone: str,
    path: str | None,
    url: str | None,
    provider: str,
    role: str,
    credentials: str | None,
) -> None:
    """Register an image store, or a staging cache (`--role cache`).

    The provider checks the location first (nfs: an absolute path to a
    directory that exists, the mounted export; a URL: that the store answers
    with the credentials named); a refusal writes nothing.

    \b
    Example:
      storctl store add sec1 --zone z1 --path /srv/secondary
      storctl store add stage --zone z1 --role cache --path /srv/staging
    """
    from cli.pool import location_of
    from executors.providers import Role, locate
    from ledger.usecases import infrastructure
    from ledger.values import StoreRole

    where = locate(
        Role.IMAGE, provider, location_of(path, url), credentials=credentials
    )
    a = app()
    store = infrastructure.register_store(
        a.ledger,
        a.ctx(),
        name,
        zone,
        where.path,
        where.recorded_as,
        role=StoreRole.ImageCache if role.lower() == "cache" else StoreRole.Image,
        credentials=credentials,
        capabilities=dict(where.capabilities),
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
@click.argument("ref", metavar="ID", shell_complete=names("store"))
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
