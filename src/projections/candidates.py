"""Candidate pools for the allocators, read from the projected `storage_pool` table.

With 10,000 pools the choice must not load 10,000 aggregates: one query gives every
pool of the zone with its status, tags, capacity and allocated size; the allocator
judges them, and only the chosen pool's aggregate is loaded to confirm (see
`ledger.usecases.placement`). These only read: the caller catches the tables up
first (`TableCandidates.refresh`), so they are at most a moment behind.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from ledger.allocation.views import PoolView
from ledger.values import PoolStatus, Scope
from projections.view import reader

_POOLS = (
    "SELECT uuid, name, scope, data_center_id, cluster_id, host_id, status,"
    " capacity_bytes, used_bytes, allocated_bytes, overprovision_factor"
    " FROM storage_pool"
    " WHERE data_center_id = ? AND removed IS NULL"
)
_TAGS = (
    "SELECT t.pool_id, t.tag FROM storage_pool_tags t"
    " JOIN storage_pool p ON p.uuid = t.pool_id WHERE p.data_center_id = ?"
)
_VOLUMES = (
    "SELECT pool_id, COUNT(*) AS n FROM volumes WHERE data_center_id = ?"
    " AND pool_id IS NOT NULL AND removed IS NULL GROUP BY pool_id"
)
# A cached copy holds its reservation while it is being made or is ready.
CACHED_STATES = ("Creating", "Ready", "Copying")
_CACHED = (
    "SELECT pool_id FROM template_spool_ref WHERE template_id = ?"
    f" AND state IN ({', '.join(repr(s) for s in CACHED_STATES)})"
)


def pool_view(
    row: dict[str, Any], tags: list[str], volumes: int, *, cached: bool
) -> PoolView:
    """A `storage_pool` row as the allocator sees it."""
    return PoolView(
        id=row["uuid"],
        name=row["name"],
        scope=Scope(row["scope"]),
        zone_id=row["data_center_id"],
        cluster_id=row["cluster_id"],
        host_id=row["host_id"],
        status=PoolStatus(row["status"]),
        tags=tuple(tags),
        capacity=int(row["capacity_bytes"]),
        allocated=int(row["allocated_bytes"]),
        factor=float(row["overprovision_factor"]),
        volumes=volumes,
        has_template=cached,
        used=int(row["used_bytes"] or 0),
    )


def pool_candidates(
    ledger: Any, zone_id: str, template_id: UUID | None
) -> list[PoolView]:
    with reader(ledger) as r:
        rows = r.all(_POOLS, [zone_id])
        tags: dict[str, list[str]] = {}
        for row in r.all(_TAGS, [zone_id]):
            tags.setdefault(row["pool_id"], []).append(row["tag"])
        volumes = {row["pool_id"]: int(row["n"]) for row in r.all(_VOLUMES, [zone_id])}
        cached: set[str] = set()
        if template_id is not None:
            cached = {row["pool_id"] for row in r.all(_CACHED, [str(template_id)])}
    return [
        pool_view(
            row,
            tags.get(row["uuid"], []),
            volumes.get(row["uuid"], 0),
            cached=row["uuid"] in cached,
        )
        for row in rows
    ]


# CloudStack's `getUnusedTemplatesInPool`: a template copy is unused when no volume
# that still has a file (not expunged) on the same pool was made from the template.
_UNUSED = (
    "SELECT r.id, r.pool_id FROM template_spool_ref r"
    " JOIN storage_pool p ON p.uuid = r.pool_id"
    " WHERE p.data_center_id = ? AND p.removed IS NULL AND r.state = 'Ready'"
    " AND r.template_id <> ?"
    " AND NOT EXISTS (SELECT 1 FROM volumes v WHERE v.pool_id = r.pool_id"
    " AND v.template_id = r.template_id AND v.removed IS NULL)"
)


def unused_template_copies(
    ledger: Any, zone_id: str, template_id: UUID | None
) -> dict[str, list[UUID]]:
    """Template copies storage cleanup may take, per pool (never a copy of the
    template being placed)."""
    out: dict[str, list[UUID]] = {}
    with reader(ledger) as r:
        for row in r.all(_UNUSED, [zone_id, str(template_id or "")]):
            out.setdefault(row["pool_id"], []).append(UUID(row["id"]))
    return out


def pool_names(ledger: Any, zone_id: str) -> dict[str, str]:
    """{id: name} of every pool the table has in the zone, removed ones too: a
    pool's name never changes, so a table behind is right about each pool it holds
    (`usecases.placement.pool_names` reads the others from their aggregates)."""
    with reader(ledger) as r:
        return {
            row["uuid"]: row["name"]
            for row in r.all(
                "SELECT uuid, name FROM storage_pool WHERE data_center_id = ?",
                [zone_id],
            )
        }
