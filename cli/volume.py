"""`storctl volume`: volumes (CloudStack's `volumes` table) and their lifecycle."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

import click

from cli.completion import names
from cli.context import AppContext, app, operate
from cli.output import emit

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


def volume_id(a: AppContext, ref: str, *, or_gone: bool = False) -> UUID:
    """A volume by id or by name (names may repeat: an ambiguous name is refused);
    `or_gone`: a name no live volume has finds the latest removed one."""
    from projections.queries import find

    with a.reader() as r:
        return UUID(find(r, "volume", ref, or_gone=or_gone)["id"])


@cli.command("create")
@click.argument("name")
@click.option("--zone", help="Zone of the volume (default: the snapshot's).")
@click.option("--size", help="Size, e.g. 10G, 512M, or bytes.")
@click.option(
    "--from-snapshot",
    "snapshot",
    shell_complete=names("snapshot"),
    help="Restore this snapshot into it.",
)
@click.option(
    "--pool",
    shell_complete=names("pool"),
    help="Create it now on this pool (else it waits for attach).",
)
@click.option("--tags", default="", help="Storage tags its pool must carry.")
def create(
    name: str,
    zone: str | None,
    size: str | None,
    snapshot: str | None,
    pool: str | None,
    tags: str,
) -> None:
    """Create a data volume. Without --pool it stays Allocated until it is attached,
    and the pool is chosen then, near the VM's host (CloudStack's behaviour). From a
    snapshot it is created at once, with the snapshot's data and size.

    \b
    Example:
      storctl volume create data-1 --zone z1 --size 10G --pool gold
      storctl volume create restored --from-snapshot nightly
    """
    from ledger.errors import InvalidInput

    a = app()
    if (size is None) == (snapshot is None):
        raise InvalidInput(
            "volume source", name, "give exactly one of --size, --from-snapshot"
        )
    if snapshot is not None:
        from ledger.usecases import snapshots
        from projections.queries import find

        with a.reader() as r:
            sid = str(find(r, "snapshot", snapshot)["id"])
        job = snapshots.create_volume_from_snapshot(
            a.ledger, a.ctx(), name=name, snapshot_ref=sid, zone=zone, pool_ref=pool
        )
        operate(a, job, lambda: _show(str(job.object_id)))
        return
    if zone is None:
        raise InvalidInput("zone", "", "--zone is needed with --size")
    assert size is not None
    from ledger.usecases import volumes
    from ledger.values import parse_size

    job = volumes.create_volume(
        a.ledger,
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
@click.argument("ref", metavar="VOL", shell_complete=names("volume"))
@click.option("--vm", shell_complete=names("vm"), required=True, help="VM id or name.")
def attach(ref: str, vm: str) -> None:
    """Attach a data volume to a VM (creating it first if it is still Allocated).

    \b
    Example:
      storctl volume attach data-1 --vm web-1
    """
    from ledger.usecases import volumes

    _run(ref, lambda a, v: volumes.attach_volume(a.ledger, a.ctx(), v, vm))


@cli.command("detach")
@click.argument("ref", metavar="VOL", shell_complete=names("volume"))
def detach(ref: str) -> None:
    """Detach a data volume from its VM.

    \b
    Example:
      storctl volume detach data-1
    """
    from ledger.usecases import volumes

    _run(ref, lambda a, v: volumes.detach_volume(a.ledger, a.ctx(), v))


@cli.command("delete")
@click.argument("ref", metavar="VOL", shell_complete=names("volume"))
def delete(ref: str) -> None:
    """Destroy a volume (recoverable until expunged); its capacity is released.

    \b
    Example:
      storctl volume delete data-1
    """
    from ledger.usecases import volumes

    _run(ref, lambda a, v: volumes.delete_volume(a.ledger, a.ctx(), v))


@cli.command("recover")
@click.argument("ref", metavar="VOL", shell_complete=names("volume"))
def recover(ref: str) -> None:
    """Recover a destroyed volume: Ready again, its capacity reserved again.

    \b
    Example:
      storctl volume recover data-1
    """
    from ledger.usecases import volumes

    _run(ref, lambda a, v: volumes.recover_volume(a.ledger, a.ctx(), v))


@cli.command("expunge")
@click.argument("ref", metavar="VOL", shell_complete=names("volume"))
def expunge(ref: str) -> None:
    """Expunge a destroyed volume: its file is deleted, for good.

    \b
    Example:
      storctl volume expunge data-1
    """
    from ledger.usecases import volumes

    _run(ref, lambda a, v: volumes.expunge_volume(a.ledger, a.ctx(), v))


@cli.command("migrate")
@click.argument("ref", metavar="VOL", shell_complete=names("volume"))
@click.option(
    "--pool",
    shell_complete=names("pool"),
    required=True,
    help="Destination pool id or name.",
)
@click.option(
    "--live", is_flag=True, help="Migrate while its VM runs (if the agent can)."
)
def migrate(ref: str, pool: str, live: bool) -> None:  # noqa: FBT001
    """StorageMotion: copy a volume to another pool, then delete the source.

    Capacity is reserved on the destination first; a failed copy leaves the volume
    Ready on its source with both pools as before. Between pools no host reaches
    together, the copy is staged through the image store.

    \b
    Example:
      storctl volume migrate data-1 --pool silver
    """
    from ledger.usecases import migration

    _run(
        ref,
        lambda a, v: migration.migrate_volume(a.ledger, a.ctx(), v, pool, live=live),
    )


@cli.command("resize")
@click.argument("ref", metavar="VOL", shell_complete=names("volume"))
@click.option("--size", required=True, help="The new, larger size (e.g. 20G).")
def resize(ref: str, size: str) -> None:
    """Grow a volume; the pool reserves the difference first.

    \b
    Example:
      storctl volume resize data-1 --size 20G
    """
    from ledger.usecases import volumes
    from ledger.values import parse_size

    new_size = parse_size(size)
    _run(ref, lambda a, v: volumes.resize_volume(a.ledger, a.ctx(), v, new_size))


@cli.command("list")
@click.option("--state", help="Only volumes in this state (e.g. Ready).")
@click.option("--pool", shell_complete=names("pool"), help="Only volumes on this pool.")
@click.option("--vm", shell_complete=names("vm"), help="Only volumes of this VM.")
def list_(state: str | None, pool: str | None, vm: str | None) -> None:
    """List volumes.

    \b
    Example:
      storctl volume list --state Ready --pool gold
    """
    from projections.queries import list_volumes

    a = app()
    with a.reader() as r:
        emit(a.output, list_volumes(r, state=state, pool=pool, vm=vm), COLUMNS, names=r)


@cli.command("show")
@click.argument("ref", metavar="VOL", shell_complete=names("volume"))
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
        emit(a.output, find(r, "volume", ref), COLUMNS, names=r)
