"""`storctl snapshot`: volume snapshots (`snapshots`, `snapshot_store_ref`)."""

from __future__ import annotations

import click

from cli.completion import names
from cli.context import app, operate
from cli.output import emit

COLUMNS = [
    "id",
    "name",
    "volumeid",
    "state",
    "snapshottype",
    "parentid",
    "physicalsize",
    "locationtype",
    "created",
]


@click.group()
def cli() -> None:
    """Snapshots: taken on primary, backed up to the image store, full or delta.

    \b
    Example:
      storctl snapshot create data-1 --name before-upgrade
      storctl snapshot revert before-upgrade
    """


@cli.command("create")
@click.argument("ref", metavar="VOL", shell_complete=names("volume"))
@click.option("--name", help="Snapshot name (default: volume name and a short id).")
def create(ref: str, name: str | None) -> None:
    """Snapshot a volume: the volume is Snapshotting until the backup is done.

    \b
    Example:
      storctl snapshot create data-1 --name nightly
    """
    from cli.volume import volume_id
    from ledger.usecases import snapshots

    a = app()
    job = snapshots.snapshot_volume(a.ledger, a.ctx(), volume_id(a, ref), name)
    operate(a, job, lambda: _show(str(job.object_id)))


@cli.command("list")
@click.option(
    "--volume", shell_complete=names("volume"), help="Only this volume's snapshots."
)
def list_(volume: str | None) -> None:
    """List snapshots.

    \b
    Example:
      storctl snapshot list --volume data-1
    """
    from projections.queries import list_snapshots

    a = app()
    with a.reader() as r:
        emit(a.output, list_snapshots(r, volume=volume), COLUMNS, names=r)


@cli.command("show")
@click.argument("ref", metavar="SNAP", shell_complete=names("snapshot"))
def show(ref: str) -> None:
    """Show one snapshot, by id or name.

    \b
    Example:
      storctl -o json snapshot show nightly
    """
    _show(ref)


@cli.command("revert")
@click.argument("ref", metavar="SNAP", shell_complete=names("snapshot"))
def revert(ref: str) -> None:
    """Write a snapshot's data back over its volume (the VM must be stopped on KVM).

    \b
    Example:
      storctl vm stop web-1 && storctl snapshot revert nightly
    """
    from ledger.usecases import snapshots

    a = app()
    job = snapshots.revert_snapshot(a.ledger, a.ctx(), _id(ref))
    operate(a, job, lambda: _show(ref))


@cli.command("delete")
@click.argument("ref", metavar="SNAP", shell_complete=names("snapshot"))
def delete(ref: str) -> None:
    """Delete a snapshot; if a later delta needs its file, the file stays hidden.

    \b
    Example:
      storctl snapshot delete nightly
    """
    from ledger.usecases import snapshots

    a = app()
    sid = _id(ref)
    job = snapshots.delete_snapshot(a.ledger, a.ctx(), sid)
    operate(a, job, lambda: _show(sid))


def _id(ref: str) -> str:
    from projections.queries import find

    with app().reader() as r:
        return str(find(r, "snapshot", ref)["id"])


def _show(ref: str) -> None:
    from projections.queries import find

    a = app()
    with a.reader() as r:
        emit(a.output, find(r, "snapshot", ref), COLUMNS, names=r)
