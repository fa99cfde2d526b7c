"""`storctl volume`: volumes (CloudStack's `volumes` table) and their lifecycle."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

import click

from cli.context import AppContext, app, operate
from cli.output import emit
from ledger.values import parse_size

COLUMNS = [
    "id",
    "name",
    "type",
    "size",
    "state",
    "storage",
    "virtualmachineid",
    "deviceid",
    "path",
]


@click.group()
def cli() -> None:
    """Volumes: create, attach, detach, delete, recover, expunge.

    \b
    Example:
      storctl volume create data-1 --zone z1 --size 10G
      storctl volume attach data-1 --vm web-1
    """


def volume_id(a: AppContext, ref: str) -> UUID:
    """A volume by id or by name (names may repeat: an ambiguous name is refused)."""
    from projections.queries import find

    with a.reader() as r:
        return UUID(find(r, "volume", ref)["id"])


@cli.command("create")
@click.argument("name")
@click.option("--zone", required=True, help="Zone of the volume.")
@click.option("--size", required=True, help="Size, e.g. 10G, 512M, or bytes.")
@click.option("--pool", help="Create it now on this pool (else it waits for attach).")
@click.option("--tags", default="", help="Storage tags its pool must carry.")
def create(name: str, zone: str, size: str, pool: str | None, tags: str) -> None:
    """Create a data volume. Without --pool it stays Allocated until it is attached,
    and the pool is chosen then, near the VM's host (CloudStack's behaviour).

    \b
    Example:
      storctl volume create data-1 --zone z1 --size 10G --pool gold
    """
    a = app()
    job = a.ledger.create_volume(
        a.ctx(),
        name=name,
        zone=zone,
        size=parse_size(size),
        pool_ref=pool,
        tags=[t for t in tags.split(",") if t.strip()],
    )
    operate(a, job, lambda: _show(str(job.object_id)))


def _run(ref: str, op: Callable[[AppContext, UUID], object]) -> None:
    a = app()
    vid = volume_id(a, ref)
    job = op(a, vid)
    operate(a, job, lambda: _show(str(vid)))


@cli.command("attach")
@click.argument("ref", metavar="VOL")
@click.option("--vm", required=True, help="VM id or name.")
def attach(ref: str, vm: str) -> None:
    """Attach a data volume to a VM (creating it first if it is still Allocated).

    \b
    Example:
      storctl volume attach data-1 --vm web-1
    """
    _run(ref, lambda a, v: a.ledger.attach_volume(a.ctx(), v, vm))


@cli.command("detach")
@click.argument("ref", metavar="VOL")
def detach(ref: str) -> None:
    """Detach a data volume from its VM.

    \b
    Example:
      storctl volume detach data-1
    """
    _run(ref, lambda a, v: a.ledger.detach_volume(a.ctx(), v))


@cli.command("delete")
@click.argument("ref", metavar="VOL")
def delete(ref: str) -> None:
    """Destroy a volume (recoverable until expunged); its capacity is released.

    \b
    Example:
      storctl volume delete data-1
    """
    _run(ref, lambda a, v: a.ledger.delete_volume(a.ctx(), v))


@cli.command("recover")
@click.argument("ref", metavar="VOL")
def recover(ref: str) -> None:
    """Recover a destroyed volume: Ready again, its capacity reserved again.

    \b
    Example:
      storctl volume recover data-1
    """
    _run(ref, lambda a, v: a.ledger.recover_volume(a.ctx(), v))


@cli.command("expunge")
@click.argument("ref", metavar="VOL")
def expunge(ref: str) -> None:
    """Expunge a destroyed volume: its file is deleted, for good.

    \b
    Example:
      storctl volume expunge data-1
    """
    _run(ref, lambda a, v: a.ledger.expunge_volume(a.ctx(), v))


@cli.command("list")
@click.option("--state", help="Only volumes in this state (e.g. Ready).")
@click.option("--pool", help="Only volumes on this pool.")
@click.option("--vm", help="Only volumes of this VM.")
def list_(state: str | None, pool: str | None, vm: str | None) -> None:
    """List volumes.

    \b
    Example:
      storctl volume list --state Ready --pool gold
    """
    from projections.queries import list_volumes

    a = app()
    with a.reader() as r:
        emit(a.output, list_volumes(r, state=state, pool=pool, vm=vm), COLUMNS)


@cli.command("show")
@click.argument("ref", metavar="VOL")
def show(ref: str) -> None:
    """Show one volume, by id or name.

    \b
    Example:
      storctl -o json volume show data-1
    """
    _show(ref)


def _show(ref: str) -> None:
    from projections.queries import find

    a = app()
    with a.reader() as r:
        emit(a.output, find(r, "volume", ref), COLUMNS)
