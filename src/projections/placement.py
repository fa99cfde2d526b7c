"""The allocators' rules in SQL, so that choosing among 10,000 pools reads a few rows.

`ledger.allocation.chain.allocate` judges every pool in Python; with 10,000 pools
that is 10,000 rows to read and 10,000 verdicts to write (about 300 ms). Here one
query finds, per allocator of the chain, every pool that passes every rule; a second
takes the one the algorithm picks, in the order `chain.pick` uses. Only the pools
that fail some rule come back as rows, to be judged in Python in the usual words
(`allocate_found`). The suitable ones are named by id, in groups.

The rules are the Python filters (`ledger.allocation.filters`): each has an SQL twin
here, registered under the filter's `name`, that builds the WHERE piece true for the
pools the filter passes, with the same arithmetic. `_suitable_where` and
`_stage_case` are assembled from the twins in the filters' order, never written
apart. `tests/property/test_filter_twins.py` holds each twin to its filter, one
question at a time; `tests/property/test_placement.py` the two sides to the same
whole decision.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from ledger.allocation import filters
from ledger.allocation.chain import chain
from ledger.allocation.filters import SUITABILITY, Filter, Thresholds, scope_filters
from ledger.allocation.views import PoolView, Request, Suitable
from ledger.values import PoolStatus
from projections.candidates import CACHED_STATES, pool_view
from projections.view import Reader, reader

_FLOAT = "DOUBLE PRECISION"  # SQLite reads it as REAL (its type-name rules)
_FEW = 200  # pools read back by id; more than that, by zone


@dataclass(frozen=True)
class Asked:
    """What a twin reads besides the pool's row: the request, the template being
    placed (its cached copies are rows of `template_spool_ref`, where the Python
    filter reads `PoolView.has_template`), and the two thresholds."""

    request: Request
    template_id: UUID | None
    thresholds: Thresholds


#: a WHERE piece over `storage_pool p`, true for the pools a filter passes, and its
#: parameters in order; a twin returns None when its filter refuses no pool at all
Piece = tuple[str, list[Any]]
Twin = Callable[[Asked], Piece | None]

#: filter name -> its SQL twin; every filter of `filters.FILTERS` has exactly one
TWINS: dict[str, Twin] = {}


def twin_of(rule: Filter) -> Callable[[Twin], Twin]:
    """Register the decorated function as the SQL twin of `rule`."""

    def register(twin: Twin) -> Twin:
        assert rule.name not in TWINS, f"two SQL twins for {rule.name}"
        TWINS[rule.name] = twin
        return twin

    return register


@twin_of(filters.avoid)
def _avoid(asked: Asked) -> Piece | None:
    """`ExcludeList.shouldAvoid`; nothing to say when nothing is avoided."""
    avoided = list(asked.request.avoid)
    if not avoided:
        return None
    return f"p.uuid NOT IN ({', '.join('?' for _ in avoided)})", avoided


@twin_of(filters.status)
def _status(asked: Asked) -> Piece | None:
    return "p.status = ?", [PoolStatus.Up.value]


@twin_of(filters.tags)
def _tags(asked: Asked) -> Piece | None:
    """`findPoolsByTags`: one EXISTS per tag of the disk, so every one is there."""
    wanted = list(asked.request.tags)
    if not wanted:
        return None
    one = (
        "EXISTS (SELECT 1 FROM storage_pool_tags t"
        " WHERE t.pool_id = p.uuid AND t.tag = ?)"
    )
    return " AND ".join(one for _ in wanted), wanted


@twin_of(filters.used)
def _used(asked: Asked) -> Piece | None:
    # UsedCheck.passes: used == 0 or used / capacity < threshold
    return (
        f"(p.used_bytes = 0 OR (p.capacity_bytes > 0 AND"
        f" CAST(p.used_bytes AS {_FLOAT}) / p.capacity_bytes < ?))",
        [asked.thresholds.used],
    )


@twin_of(filters.allocated)
def _allocated(asked: Asked) -> Piece | None:
    # CapacityCheck.passes: (allocated + asking) / limit <= threshold and
    # allocated + asking <= limit, limit = capacity * factor (> 0)
    request = asked.request
    if asked.template_id is not None and request.template_size:
        marks = ", ".join("?" for _ in CACHED_STATES)
        asking = (
            "(CAST(? AS BIGINT) + CASE WHEN EXISTS (SELECT 1 FROM"
            " template_spool_ref r WHERE r.pool_id = p.uuid AND r.template_id = ?"
            f" AND r.state IN ({marks})) THEN 0 ELSE CAST(? AS BIGINT) END)"
        )
        asking_params: list[Any] = [
            request.size,
            str(asked.template_id),
            *CACHED_STATES,
            request.template_size,
        ]
    else:
        asking = "CAST(? AS BIGINT)"  # PostgreSQL would add small ints as int4
        asking_params = [request.size + request.template_size]
    # overprovision_factor is a float column, so integer * factor and the division
    # are float arithmetic in both dialects, as in Python; a zero limit divides
    # into NULL (refused, as Python's infinite share is), never into an error
    limit = "(p.capacity_bytes * p.overprovision_factor)"
    total = f"(p.allocated_bytes + {asking})"
    return (
        f"{total} / NULLIF({limit}, 0) <= ? AND {total} <= {limit}",
        [*asking_params, asked.thresholds.allocated, *asking_params],
    )


@twin_of(filters.data_center)
def _data_center(asked: Asked) -> Piece | None:
    return "p.data_center_id = ?", [asked.request.zone_id]


@twin_of(filters.requested)
def _requested(asked: Asked) -> Piece | None:
    """An operator's `--pool`; without one, every pool passes (as in Python)."""
    if asked.request.pool_id is None:
        return None
    return "p.uuid = ?", [asked.request.pool_id]


@twin_of(filters.local)
def _local(asked: Asked) -> Piece | None:
    """`LocalStoragePoolAllocator`; Python's `None == None` is `IS NULL` here."""
    if asked.request.host_id is None:
        return "p.scope = 'HOST' AND p.host_id IS NULL", []
    return "p.scope = 'HOST' AND p.host_id = ?", [asked.request.host_id]


@twin_of(filters.cluster)
def _cluster(asked: Asked) -> Piece | None:
    """`ClusterScopeStoragePoolAllocator`: any cluster when the plan names none."""
    if asked.request.cluster_id is None:
        return "p.scope = 'CLUSTER'", []
    return "p.scope = 'CLUSTER' AND p.cluster_id = ?", [asked.request.cluster_id]


@twin_of(filters.zone_wide)
def _zone_wide(asked: Asked) -> Piece | None:
    return "p.scope = 'ZONE'", []


class _Sql:
    """The WHERE pieces for one request, with their parameters in order."""

    def __init__(self, dialect: str) -> None:
        self.parts: list[str] = []
        self.params: list[Any] = []
        # Python orders names by code point: byte order of UTF-8, PostgreSQL's "C"
        self.collate = ' COLLATE "C"' if dialect == "postgres" else ""

    def where(self, piece: Piece | None) -> None:
        if piece is not None:
            self.parts.append(piece[0])
            self.params.extend(piece[1])

    @property
    def text(self) -> str:
        return " AND ".join(self.parts) if self.parts else "1 = 1"


def _stage_case(asked: Asked, stages: list[str]) -> tuple[str, list[Any]]:
    """`scope_refusal` as a CASE: the index of the allocator whose scope holds the
    pool, NULL when none does. Each WHEN is the twin of the allocator's own scope
    question (`filters.scope_filters`); the data center, the first question of
    every allocator, is the query's own condition."""
    whens: list[str] = []
    params: list[Any] = []
    for i, allocator in enumerate(stages):
        _, own = scope_filters(asked.request, allocator)
        text, piece_params = TWINS[own.name](asked) or ("1 = 1", [])
        whens.append(f"WHEN {text} THEN {i}")
        params.extend(piece_params)
    return "CASE " + " ".join(whens) + " END", params


def _suitable_where(sql: _Sql, asked: Asked) -> None:
    """`refusal(pool, request) is None`: the twins of `filters.SUITABILITY`, in
    its order."""
    for rule in SUITABILITY:
        sql.where(TWINS[rule.name](asked))


def _order(sql: _Sql, algorithm: str) -> str:
    """`chain.pick`'s order: ties go to the name, then the id."""
    by_name = f"p.name{sql.collate}, p.uuid{sql.collate}"
    if algorithm == "firstfitleastconsumed":
        share = "p.allocated_bytes / (p.capacity_bytes * p.overprovision_factor)"
        return f"{share}, {by_name}"
    if algorithm == "userdispersing":
        count = (
            "(SELECT COUNT(*) FROM volumes v WHERE v.pool_id = p.uuid"
            " AND v.data_center_id = p.data_center_id AND v.removed IS NULL)"
        )
        return f"{count}, {by_name}"
    return by_name


def _views(r: Reader, rows: list[dict[str, Any]], zone_id: str) -> list[PoolView]:
    if not rows:
        return []
    ids = [row["uuid"] for row in rows]
    if len(ids) <= _FEW:
        marks = ", ".join("?" for _ in ids)
        pools, params = f"IN ({marks})", ids
    else:  # a long IN list costs more than reading the zone's rows
        pools = "IN (SELECT uuid FROM storage_pool WHERE data_center_id = ?)"
        params = [zone_id]
    tags: dict[str, list[str]] = {}
    for t in r.all(
        f"SELECT pool_id, tag FROM storage_pool_tags WHERE pool_id {pools}", params
    ):
        tags.setdefault(t["pool_id"], []).append(t["tag"])
    volumes = {
        v["pool_id"]: int(v["n"])
        for v in r.all(
            f"SELECT pool_id, COUNT(*) AS n FROM volumes WHERE pool_id {pools}"
            " AND data_center_id = ? AND removed IS NULL GROUP BY pool_id",
            [*params, zone_id],
        )
    }
    return [
        pool_view(
            row,
            tags.get(row["uuid"], []),
            volumes.get(row["uuid"], 0),
            cached=bool(row["cached"]),
        )
        for row in rows
    ]


def find_suitable(
    ledger: Any,
    request: Request,
    template_id: UUID | None,
    threshold: float,
    used_threshold: float,
    algorithm: str,
    seed: int,
) -> tuple[list[Suitable], list[PoolView]]:
    """Per allocator of the chain, the suitable pools and the one taken; and every
    other pool of the zone as a `PoolView`, to be judged by `allocate_found`."""
    stages = chain(request)
    asked = Asked(request, template_id, Thresholds(threshold, used_threshold))
    with reader(ledger) as r:
        sql = _Sql(r.dialect)
        _suitable_where(sql, asked)
        case, case_params = _stage_case(asked, stages)
        zone, base_params = TWINS[filters.data_center.name](asked) or ("1 = 1", [])
        base = f"FROM storage_pool p WHERE {zone} AND p.removed IS NULL"
        ids_col = (
            "string_agg(uuid, ',')" if r.dialect == "postgres" else "group_concat(uuid)"
        )
        judged = (
            f"SELECT p.uuid AS uuid, {case} AS stage, CASE WHEN {sql.text}"
            f" THEN 1 ELSE 0 END AS ok {base}"
        )
        counted = r.all(
            f"SELECT stage, ok, COUNT(*) AS n, {ids_col} AS ids FROM ({judged}) s"
            " GROUP BY stage, ok",
            [*case_params, *sql.params, *base_params],
        )
        by_stage = {
            int(row["stage"]): row
            for row in counted
            if row["ok"] and row["stage"] is not None
        }
        unsuitable = sum(
            int(row["n"]) for row in counted if not row["ok"] or row["stage"] is None
        )
        cached, cached_params = (
            (
                "CASE WHEN EXISTS (SELECT 1 FROM template_spool_ref r"
                " WHERE r.pool_id = p.uuid AND r.template_id = ?"
                f" AND r.state IN ({', '.join('?' for _ in CACHED_STATES)}))"
                " THEN 1 ELSE 0 END",
                [str(template_id), *CACHED_STATES],
            )
            if template_id is not None
            else ("0", [])
        )
        found: list[Suitable] = []
        rng = random.Random(seed)
        won = False
        for i, allocator in enumerate(stages):
            row = by_stage.get(i)
            ids = tuple(row["ids"].split(",")) if row else ()
            if row is None or won:
                found.append(Suitable(allocator, ids, None))
                continue
            if algorithm in ("random", "userconcentratedpod_random"):
                pick = sorted(ids)[rng.randrange(len(ids))]  # as chain.pick
                taken_rows = r.all(  # by primary key: the planner must not scan
                    f"SELECT p.*, {cached} AS cached FROM storage_pool p"
                    " WHERE p.uuid = ?",
                    [*cached_params, pick],
                )
            else:
                taken_rows = r.all(
                    f"SELECT p.*, {cached} AS cached {base} AND ({case}) = {i}"
                    f" AND {sql.text} ORDER BY {_order(sql, algorithm)} LIMIT 1",
                    [*cached_params, *base_params, *case_params, *sql.params],
                )
            taken = _views(r, taken_rows, request.zone_id)
            found.append(Suitable(allocator, ids, taken[0] if taken else None))
            won = bool(taken)
        # NULLs never hide a pool: whatever is not suitable comes back as a row
        other_rows = (
            r.all(
                f"SELECT p.*, {cached} AS cached {base} AND CASE WHEN ({case}) IS"
                f" NOT NULL AND {sql.text} THEN 1 ELSE 0 END = 0",
                [*cached_params, *base_params, *case_params, *sql.params],
            )
            if unsuitable
            else []
        )
        others = _views(r, other_rows, request.zone_id)
    return found, others
