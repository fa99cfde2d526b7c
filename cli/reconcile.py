"""`storctl reconcile POOL`: what a pool's backend holds against the ledger.

What the ledger claims comes from the projected tables (caught up first): the pool's
`volumes` (not Expunged), its `template_spool_ref` rows (the cached base images) and
its `snapshot_store_ref` rows, plus the snapshots kept on primary (their
`primary_path`, read from the snapshots' aggregates: the tables do not hold it).
What the backend holds is the pool's provider's `inventory` (a directory's files,
an RBD pool's images, an iSCSI pool's LUN files and targets), run here with the
pool's credentials resolved; `executors.reconcile.compare` sets one against the
other the same way for every provider. Nothing on the pool or in the ledger is
changed.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import click

from cli.completion import names
from cli.context import AppContext, app
from cli.output import emit, say
from executors.reconcile import COLUMNS, Claim, compare
from ledger.errors import InvalidInput, OperationFailed
from ledger.fsm import VOLUME

#: CloudStack's state of an object with nothing on the backend and no copy under
#: way (never made, or its copy failed: `OperationFailed` leads back to it), so
#: it claims nothing and what a failed copy left (a `.part`) is a leftover
IDLE = "Allocated"
#: volume states whose file must be on the pool (and is checked)
SETTLED = frozenset({"Ready", "Destroy"})
#: snapshot states in which a snapshot kept on primary must be there
SNAPSHOT_SETTLED = frozenset({"CreatedOnPrimary", "BackedUp"})


def claims_of(r: Any, pool_id: str) -> tuple[list[Claim], list[str]]:
    """The pool's claims, and the names of files that operations may be making."""
    bases: dict[str, str] = {}
    claims: list[Claim] = []
    for row in r.all(
        "SELECT s.id, s.template_id, s.install_path, s.state, t.name"
        " FROM template_spool_ref s LEFT JOIN vm_template t ON t.uuid = s.template_id"
        " WHERE s.pool_id = ? AND s.state <> 'Destroyed'",
        [pool_id],
    ):
        if row["state"] == IDLE:
            continue  # nothing written, nothing being written: a `.part` is left over
        path = row["install_path"] or row["template_id"]
        if row["state"] == "Ready" and row["install_path"]:
            bases[row["template_id"]] = row["install_path"]
        claims.append(
            Claim(
                kind="template",
                object_id=str(row["id"]),
                name=row["name"] or str(row["template_id"]),
                path=path,
                state=row["state"],
                settled=row["state"] == "Ready",
            )
        )
    for row in r.all(
        "SELECT uuid, name, path, size, state, format, template_id FROM volumes"
        " WHERE pool_id = ? AND state <> 'Expunged'",
        [pool_id],
    ):
        if row["state"] == IDLE:
            continue
        settled = row["state"] in SETTLED and bool(row["path"])
        claims.append(
            Claim(
                kind="volume",
                object_id=row["uuid"],
                name=row["name"],
                path=row["path"] or row["uuid"],
                state=row["state"],
                settled=settled,
                fmt=(row["format"] or "QCOW2").upper(),
                size=row["size"],
                base=bases.get(row["template_id"]) if row["template_id"] else None,
                check_backing=True,
            )
        )
    for row in r.all(
        "SELECT id, snapshot_id, install_path, state FROM snapshot_store_ref"
        " WHERE store_id = ? AND state <> 'Destroyed' AND install_path IS NOT NULL",
        [pool_id],
    ):
        claims.append(
            Claim(
                kind="snapshot",
                object_id=str(row["snapshot_id"]),
                name=str(row["snapshot_id"]),
                path=row["install_path"],
                state=row["state"],
                settled=row["state"] == "Ready",
            )
        )
    marks = ", ".join("?" for _ in VOLUME.transitional)
    busy = [
        str(row["uuid"])
        for row in r.all(
            f"SELECT uuid FROM volumes WHERE state IN ({marks})",
            sorted(VOLUME.transitional),
        )
    ]
    return claims, busy


def snapshot_rows(r: Any, pool_id: str) -> list[dict[str, Any]]:
    """The snapshots (not Destroyed) of the pool's volumes: those that may be
    kept on the pool (`snapshots_on_primary` reads where)."""
    return list(
        r.all(
            "SELECT s.uuid, s.name, s.status FROM snapshots s"
            " JOIN volumes v ON v.uuid = s.volume_id"
            " WHERE v.pool_id = ? AND s.status NOT IN ('Destroyed', 'Allocated')",
            [pool_id],
        )
    )


def snapshots_on_primary(
    a: AppContext, pool_id: str, rows: list[dict[str, Any]]
) -> list[Claim]:
    """A claim for each snapshot its aggregate says is on primary (its
    `primary_path`): a native RBD snapshot, or a directory pool's snapshot file
    not yet backed up. Settled once created; in flight while being made,
    backed up or removed."""
    from ledger.snapshot import Snapshot

    claims: list[Claim] = []
    found = a.ledger.peek_many(UUID(str(row["uuid"])) for row in rows)
    for row in rows:
        snapshot = found.get(UUID(str(row["uuid"])))
        if not isinstance(snapshot, Snapshot) or snapshot.primary_path is None:
            continue
        if snapshot.primary_pool_id not in (None, pool_id):
            continue  # taken on another pool, before the volume moved here
        claims.append(
            Claim(
                kind="snapshot",
                object_id=str(row["uuid"]),
                name=str(row["name"]),
                path=snapshot.primary_path,
                state=str(row["status"]),
                settled=row["status"] in SNAPSHOT_SETTLED,
            )
        )
    return claims


@click.command()
@click.argument("ref", metavar="POOL", shell_complete=names("pool"))
def cli(ref: str) -> None:
    """What a pool holds on its backend against the ledger, for every provider
    that can list it (directories, rbd, iscsi): orphans (no volume, template copy
    or snapshot claims them), missing objects (a Ready volume or template copy,
    or a snapshot kept on primary, without its file, image or LUN), incomplete
    ones (an iSCSI volume without its target, an RBD template copy without its
    protected base snapshot), size mismatches (the virtual size against the
    volume's), backing mismatches (a linked clone not over its template's base
    copy on the same pool) and `.part` leftovers of writes that never finished.

    Exit 0 when the pool is clean, 3 when there are findings, 2 when the pool's
    provider cannot list it (the simulator) or its backend does not answer.
    Nothing is changed.

    \b
    Example:
      storctl reconcile gold
      storctl -o json reconcile gold | jq '.[] | select(.problem == "orphan")'
    """
    from executors.credentials import resolve
    from executors.providers.driver import AgentFailure
    from executors.providers.registry import installed
    from executors.runner import SubprocessRunner
    from ledger import transfer
    from ledger.pool import StoragePool
    from projections.queries import find

    a = app()
    with a.reader() as r:
        pool = find(r, "pool", ref)
        claims, busy = claims_of(r, pool["id"])
        snapshots = snapshot_rows(r, pool["id"])
    store = transfer.primary_to(a.ledger.load(StoragePool, UUID(str(pool["id"]))))
    try:
        provider = installed().for_store(store)
    except AgentFailure as exc:
        raise InvalidInput("pool", ref, str(exc)) from None
    if provider.inventory is None:
        raise InvalidInput(
            "pool", ref, f"its provider {provider.name} cannot list what it holds"
        )
    claims += snapshots_on_primary(a, str(pool["id"]), snapshots)
    credentials = resolve(store.credentials) if store.credentials else {}
    inventory = provider.inventory(store, credentials, SubprocessRunner())
    findings = compare(inventory, claims, busy)
    emit(a.output, [f.row() for f in findings], COLUMNS)
    if not findings:
        say(
            f"reconcile: pool {pool['name']} is clean "
            f"({len(claims)} {inventory.noun}s claimed)"
        )
        return
    kinds: dict[str, int] = {}
    for f in findings:
        kinds[f.problem] = kinds.get(f.problem, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    raise OperationFailed("", f"pool {pool['name']}: {summary}")
