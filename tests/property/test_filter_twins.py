"""Property: each allocation filter and its SQL twin answer the same question the same
way, one question at a time, on SQLite and PostgreSQL.

`ledger.allocation.filters` asks each question of a `PoolView` in Python;
`projections.placement.TWINS` asks it of the `storage_pool` table, so that choosing
among 10,000 pools reads a few rows. The whole-decision property
(`test_placement.py`) would notice a twin that drifts, but not say which one; here
every filter has a twin and every twin a filter, and on any zone of pools and any
request, a twin's WHERE piece keeps a pool exactly when its filter passes it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import HealthCheck, Phase, example, find, given, settings
from hypothesis import strategies as st

from ledger.allocation.filters import FILTERS, Thresholds
from ledger.allocation.views import Request
from ledger.app import Ledger
from ledger.values import GiB
from projections.candidates import pool_candidates
from projections.placement import TWINS, Asked, Twin
from projections.view import reader
from tests.conftest import open_ledger
from tests.property.pool_tables import (
    NAMES,
    TEMPLATE,
    boundary_pool,
    load_pools,
    pool_row,
    request_args,
)

ZONES = ["z1", "z2"]  # the request is always for z1: z2's pools test the zone
pools_of_zones = st.lists(
    st.tuples(pool_row, st.sampled_from(ZONES)).map(lambda t: {**t[0], "zone": t[1]}),
    max_size=12,
)


# The edges random rows seldom land on, so every run has them: a 1 GiB disk with a
# 1 GiB template, 85% thresholds, 10 GiB pools.
EDGES = [
    boundary_pool(allocated=int(6.5 * GiB)),  # disk + template: exactly 85%, taken
    boundary_pool(allocated=int(6.5 * GiB) + 1),  # a byte over: refused
    boundary_pool(allocated=7 * GiB, cached=True),  # 80%; 90% were it not cached
    boundary_pool(used=int(8.5 * GiB)),  # exactly 85% used on disk: refused
    boundary_pool(used=int(8.5 * GiB) - 1),  # a byte under: passes
]
EDGE_REQUEST = {
    "size": GiB,
    "tags": [],
    "cluster": "c1",
    "host": "h1",
    "local": False,
    "template_size": GiB,
    "avoid": [],
    "requested": None,
    "threshold": 0.85,
    "used_threshold": 0.85,
    "algorithm": "firstfit",
    "seed": 0,
}


def disagreements(
    ledger: Ledger,
    twins: dict[str, Twin],
    pools: list[dict[str, Any]],
    names: list[str],
    args: dict[str, Any],
) -> dict[str, list[str]]:
    """Filter name -> the names of the pools its twin (in `twins`) and the filter
    itself judge differently, for the pools loaded as rows and the request `args`
    describe; empty when every twin agrees with its filter."""
    ids = load_pools(ledger, pools, names)
    template = TEMPLATE if args["template_size"] else None
    request = Request(
        size=args["size"],
        zone_id="z1",
        cluster_id=args["cluster"],
        host_id=args["host"],
        tags=tuple(args["tags"]),
        template_size=args["template_size"],
        avoid=tuple(ids[i] for i in args["avoid"] if i < len(ids)),
        local=args["local"],
        pool_id=(
            ids[args["requested"]]
            if args["requested"] is not None and args["requested"] < len(ids)
            else None
        ),
    )
    asked = Asked(
        request, template, Thresholds(args["threshold"], args["used_threshold"])
    )
    views = [v for zone in ZONES for v in pool_candidates(ledger, zone, template)]
    assert len(views) == len(pools)
    name_of = {v.id: v.name for v in views}
    out: dict[str, list[str]] = {}
    with reader(ledger) as r:
        for rule in FILTERS:
            text, params = twins[rule.name](asked) or ("1 = 1", [])
            in_sql = {
                row["uuid"]
                for row in r.all(
                    f"SELECT p.uuid AS uuid FROM storage_pool p WHERE {text}", params
                )
            }
            in_python = {
                v.id for v in views if rule(v, request, asked.thresholds) is None
            }
            if in_sql != in_python:
                out[rule.name] = sorted(name_of[i] for i in in_sql ^ in_python)
    return out


def test_every_filter_has_one_sql_twin_and_every_twin_a_filter() -> None:
    assert sorted(TWINS) == sorted(f.name for f in FILTERS)


@settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(pools=pools_of_zones, names=st.permutations(NAMES), args=request_args)
@example(pools=EDGES, names=NAMES, args=EDGE_REQUEST)
@example(  # past 100% the hard limit refuses, whatever the threshold allows
    pools=[boundary_pool(allocated=8 * GiB), boundary_pool(allocated=8 * GiB + 1)],
    names=NAMES,
    args={**EDGE_REQUEST, "threshold": 1.5},
)
def test_each_sql_twin_passes_exactly_the_pools_its_filter_passes(
    ledger: Ledger,
    pools: list[dict[str, Any]],
    names: list[str],
    args: dict[str, Any],
) -> None:
    assert disagreements(ledger, TWINS, pools, names, args) == {}


def _ignores_the_threshold(asked: Asked) -> tuple[str, list[Any]] | None:
    """A planted bug: the capacity twin with no allocated threshold at all (only the
    over-provisioned capacity itself would refuse)."""
    unbounded = replace(asked.thresholds, allocated=float("inf"))
    return TWINS["allocated"](replace(asked, thresholds=unbounded))


def test_a_capacity_twin_that_ignores_the_threshold_is_caught(tmp_path) -> None:
    """Quality of the property above: with the bug planted, the same generated
    pools and requests find a pool the twin keeps and the filter refuses."""
    planted = {**TWINS, "allocated": _ignores_the_threshold}
    ledger = open_ledger(str(tmp_path / "ledger.db"))
    try:
        pools, names, args = find(
            st.tuples(pools_of_zones, st.permutations(NAMES), request_args),
            lambda ex: bool(disagreements(ledger, planted, *ex)),
            settings=settings(
                max_examples=500,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.generate],
            ),
        )
        found = disagreements(ledger, planted, pools, names, args)
        assert list(found) == ["allocated"]
        assert disagreements(ledger, TWINS, pools, names, args) == {}
    finally:
        ledger.close()
