"""`storctl reconcile POOL`: the files on a pool's directory against the ledger.

What the ledger claims comes from the projected tables (caught up first): the pool's
`volumes` (not Expunged), its `template_spool_ref` rows (the cached base images) and
its `snapshot_store_ref` rows; the scan itself is `executors.reconcile` (I/O,
`qemu-img info` as argv lists). Nothing on the pool or in the ledger is changed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from cli.context import app
from cli.output import emit, say
from executors.reconcile import COLUMNS, Claim, Scanner
from ledger.errors import InvalidInput, OperationFailed
from ledger.fsm import VOLUME

#: volume states whose file must be on the pool (and is checked)
SETTLED = frozenset({"Ready", "Destroy"})


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


@click.command()
@click.argument("ref", metavar="POOL")
def cli(ref: str) -> None:
    """Files on a pool's directory against the ledger: orphans (no volume or template
    copy claims them), missing files (a Ready volume or template copy without its
    file), size mismatches (qemu-img info's virtual size against the volume's),
    backing-file mismatches (a linked clone not over its template's base copy on the
    same pool) and `.part` leftovers of writes that never finished.

    Exit 0 when the pool is clean, 3 when there are findings. Nothing is changed.

    \b
    Example:
      storctl reconcile gold
      storctl -o json reconcile gold | jq '.[] | select(.problem == "orphan")'
    """
    from projections.queries import find

    a = app()
    with a.reader() as r:
        pool = find(r, "pool", ref)
        if pool["type"] == "Simulator":
            raise InvalidInput("pool", ref, "a simulator pool has no files")
        claims, busy = claims_of(r, pool["id"])
    root = Path(pool["path"])
    if not root.is_dir():
        raise InvalidInput("pool", ref, f"its directory {root} does not exist here")
    findings = Scanner().scan(root, claims, busy)
    emit(a.output, [f.row() for f in findings], COLUMNS)
    if not findings:
        say(f"reconcile: pool {pool['name']} is clean ({len(claims)} files claimed)")
        return
    kinds: dict[str, int] = {}
    for f in findings:
        kinds[f.problem] = kinds.get(f.problem, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    raise OperationFailed("", f"pool {pool['name']}: {summary}")
