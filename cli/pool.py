"""`storctl pool`: primary storage pools (CloudStack's `storage_pool`)."""

from __future__ import annotations

import os

import click

from cli.completion import names
from cli.context import app
from cli.output import emit
from ledger.values import PoolType, Scope, parse_enum, parse_size

COLUMNS = [
    "id",
    "name",
    "zoneid",
    "clusterid",
    "scope",
    "type",
    "state",
    "disksizetotal",
    "disksizeallocated",
    "disksizeused",
    "overprovisionfactor",
    "tags",
    "path",
]


@click.group()
def cli() -> None:
    """Primary storage pools: where volumes live, and what they may hold.

    \b
    Example:
      storctl pool add gold --zone z1 --cluster c1 --path /srv/gold --capacity 100G
      storctl pool maintenance enable gold
    """


@cli.command("add")
@click.argument("name")
@click.option("--zone", required=True, help="Zone of the pool.")
@click.option(
    "--path",
    "path",
    help="The pool's location: for directory types its mount point, which must exist.",
)
@click.option(
    "--url",
    help="The pool's location as a URL, e.g. rbd://admin@127.0.0.1:3300/storctl "
    "(instead of --path).",
)
@click.option(
    "--credentials",
    metavar="NAME",
    help="The name of the pool's credentials in the profile "
    "($STORCTL_CREDENTIALS) or the environment; the secret is never recorded.",
)
@click.option("--capacity", required=True, help="Size, e.g. 100G, 512M, or bytes.")
@click.option(
    "--scope",
    type=click.Choice(["zone", "cluster", "host"], case_sensitive=False),
    default="cluster",
    show_default=True,
    help="Who can reach the pool.",
)
@click.option("--cluster", help="Cluster (cluster scope).")
@click.option(
    "--host",
    shell_complete=names("host"),
    help="Host id or name (host scope: local storage).",
)
@click.option(
    "--type",
    "--provider",
    "pool_type",
    default="filesystem",
    show_default=True,
    help="The pool's provider (CloudStack's StoragePoolType): filesystem, "
    "sharedmountpoint, networkfilesystem, simulator, or another installed one "
    "(storctl provider list).",
)
@click.option(
    "--tags", default="", help="Storage tags, comma separated (e.g. ssd,fast)."
)
@click.option(
    "--overprovision",
    type=float,
    default=None,
    help="Over-provisioning factor for this pool "
    "(default: storage.overprovisioning.factor).",
)
def add(
    name: str,
    zone: str,
    path: str | None,
    url: str | None,
    credentials: str | None,
    capacity: str,
    scope: str,
    cluster: str | None,
    host: str | None,
    pool_type: str,
    tags: str,
    overprovision: float | None,
) -> None:
    """Register a primary storage pool.

    The pool's provider checks the location first (for directory types: an
    absolute path to a directory that exists; for a URL, that the backend answers
    with the credentials named); a refusal writes nothing.

    \b
    Example:
      storctl pool add gold --zone z1 --cluster c1 --path /srv/gold \\
              --capacity 100G --tags ssd --overprovision 1
      storctl pool add ceph --zone z1 --scope zone --provider rbd \\
              --url rbd://admin@127.0.0.1:3300/storctl --credentials lab-ceph \\
              --capacity 100G
    """
    from executors.providers import Role, locate
    from ledger.usecases import infrastructure

    size = parse_size(capacity, minimum=1, what="capacity")
    where = locate(
        Role.PRIMARY,
        pool_type,
        location_of(path, url),
        scope=scope,
        credentials=credentials,
    )
    a = app()
    pool = infrastructure.register_pool(
        a.ledger,
        a.ctx(),
        name=name,
        zone=zone,
        path=where.path,
        capacity=size,
        scope=parse_enum(Scope, scope, "scope"),
        pool_type=parse_enum(PoolType, where.recorded_as, "type"),
        cluster=cluster,
        host=host,
        tags=[t for t in tags.split(",") if t.strip()],
        overprovision=overprovision,
        credentials=credentials,
        capabilities=dict(where.capabilities),
        place=where.place,
    )
    _show(str(pool.id))


def location_of(path: str | None, url: str | None) -> str:
    """Exactly one of `--path` and `--url`, as the location a provider checks."""
    if (path is None) == (url is None):
        raise click.UsageError("give exactly one of --path DIR and --url URL")
    return os.path.expanduser(path) if path is not None else str(url)


@cli.command("list")
@click.option("--zone", help="Only pools of this zone.")
def list_(zone: str | None) -> None:
    """List pools with their capacity.

    \b
    Example:
      storctl -o json pool list --zone z1
    """
    from projections.queries import list_pools

    a = app()
    with a.reader() as r:
        emit(a.output, list_pools(r, zone=zone), COLUMNS, names=r)


@cli.command("show")
@click.argument("ref", metavar="ID", shell_complete=names("pool"))
def show(ref: str) -> None:
    """Show one pool, by id or name.

    \b
    Example:
      storctl pool show gold
    """
    _show(ref)


@cli.command("disable")
@click.argument("ref", metavar="ID", shell_complete=names("pool"))
def disable(ref: str) -> None:
    """Disable a pool: no new volumes, never a migration target; its volumes work on.

    \b
    Example:
      storctl pool disable gold
    """
    from ledger.usecases import infrastructure

    a = app()
    _show(str(infrastructure.change_pool_status(a.ledger, a.ctx(), ref, "Disable").id))


@cli.command("enable")
@click.argument("ref", metavar="ID", shell_complete=names("pool"))
def enable(ref: str) -> None:
    """Enable a disabled pool.

    \b
    Example:
      storctl pool enable gold
    """
    from ledger.usecases import infrastructure

    a = app()
    _show(str(infrastructure.change_pool_status(a.ledger, a.ctx(), ref, "Enable").id))


@cli.group("maintenance")
def maintenance() -> None:
    """PrepareForMaintenance -> Maintenance, and back.

    \b
    Example:
      storctl pool maintenance enable gold
      storctl pool maintenance cancel gold
    """


@maintenance.command("enable")
@click.argument("ref", metavar="ID", shell_complete=names("pool"))
def maintenance_enable(ref: str) -> None:
    """Put a pool in maintenance: no allocation lands on it.

    \b
    Example:
      storctl pool maintenance enable gold
    """
    from ledger.usecases import infrastructure

    a = app()
    _show(str(infrastructure.pool_maintenance(a.ledger, a.ctx(), ref, enable=True).id))


@maintenance.command("cancel")
@click.argument("ref", metavar="ID", shell_complete=names("pool"))
def maintenance_cancel(ref: str) -> None:
    """Bring a pool back from maintenance to Up.

    \b
    Example:
      storctl pool maintenance cancel gold
    """
    from ledger.usecases import infrastructure

    a = app()
    _show(str(infrastructure.pool_maintenance(a.ledger, a.ctx(), ref, enable=False).id))


@cli.command("stats")
@click.argument("ref", metavar="ID", shell_complete=names("pool"))
def stats(ref: str) -> None:
    """Measure a pool's physical use now (CloudStack's GetStorageStatsCommand).

    A host that reaches the pool reports the bytes its files occupy on disk; the
    figure is recorded on the pool (`disksizeused`), and the allocators skip a pool
    whose use reaches `pool.storage.capacity.disablethreshold` (0.85 by default).

    \b
    Example:
      storctl pool stats gold
    """
    from cli.bootstrap import agents
    from executors.stats import collect

    a = app()
    pool = collect(a.ledger, agents(a.ledger), a.ctx(), ref)
    _show(str(pool.id))


@cli.command("delete")
@click.argument("ref", metavar="ID", shell_complete=names("pool"))
def delete(ref: str) -> None:
    """Remove a pool in maintenance that holds no volume.

    \b
    Example:
      storctl pool delete gold
    """
    from ledger.usecases import infrastructure

    a = app()
    pool = infrastructure.delete_pool(a.ledger, a.ctx(), ref)
    _show(str(pool.id))


#: volumes whose LUN the ledger says exists (not yet made, or gone, otherwise)
_NO_LUN = ("Allocated", "Creating", "Expunging", "Expunged")


@cli.command("targets")
@click.argument("ref", metavar="POOL", shell_complete=names("pool"))
def targets(ref: str) -> None:
    """Make every target of an iSCSI pool's volumes again (after a tgtd restart).

    tgtd keeps no target across a restart. Each command on a volume makes its own
    target again when it finds it missing; this makes them all at once, from the
    ledger's volumes on the pool and their LUN files, with their CHAP secrets, so
    initiators can log in before any command touches their volumes. It runs on
    this host (the one that runs tgtd) and writes nothing to the ledger.

    Exit 0 when every volume has its target, 3 when a LUN file is missing or a
    target could not be made.

    \b
    Example:
      storctl pool targets lun
      storctl -o json pool targets lun | jq '.[] | select(.status == "made")'
    """
    from uuid import UUID

    from cli.output import say
    from executors.providers.command_run import CommandRun
    from executors.providers.iscsi.restore import COLUMNS as TARGET_COLUMNS
    from executors.providers.iscsi.restore import restore
    from executors.runner import SubprocessRunner
    from ledger import transfer
    from ledger.errors import InvalidInput, OperationFailed
    from ledger.pool import StoragePool
    from projections.queries import find

    a = app()
    marks = ", ".join("?" for _ in _NO_LUN)
    with a.reader() as r:
        pool = find(r, "pool", ref)
        if pool["type"] != PoolType.Iscsi.value:
            raise InvalidInput("pool", ref, f"a {pool['type']} pool has no targets")
        volumes = [
            (str(row["uuid"]), str(row["name"]))
            for row in r.all(
                "SELECT uuid, name FROM volumes WHERE pool_id = ? AND path IS NOT NULL"
                f" AND state NOT IN ({marks}) ORDER BY name, uuid",
                [pool["id"], *_NO_LUN],
            )
        ]
    store = transfer.primary_to(a.ledger.load(StoragePool, UUID(str(pool["id"]))))
    run = CommandRun(SubprocessRunner(), 600.0, None)
    found = restore(run, store, volumes)
    emit(a.output, [f.row() for f in found], TARGET_COLUMNS)
    bad = [f for f in found if f.status not in ("present", "made")]
    if bad:
        raise OperationFailed(
            "",
            f"pool {pool['name']}: {len(bad)} of {len(found)} volumes have no target",
        )
    made = sum(f.status == "made" for f in found)
    say(f"targets: pool {pool['name']}: {made} made, {len(found) - made} present")


def _show(ref: str) -> None:
    from projections.queries import find

    a = app()
    with a.reader() as r:
        emit(a.output, find(r, "pool", ref), COLUMNS, names=r)
