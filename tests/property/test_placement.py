"""Property: the allocators' rules in SQL (`projections.placement`) decide exactly as
the allocators in Python (`ledger.allocation.chain.allocate`), on SQLite and PostgreSQL.

Any zone of pools (scopes, clusters, hosts, states, tags, capacities, allocated and
used sizes, factors, cached templates, volume counts, names that sort differently by
byte and by locale) and any request (size, tags, cluster, host, local, avoid set,
a requested pool, a template to cache): the pool taken and every pool's verdict are
the same, whether every pool is judged in Python or the database finds the suitable
ones and Python judges the rest.
"""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.allocation.chain import (
    allocate,
    allocate_found,
    allocate_requested,
)
from ledger.allocation.views import Request
from ledger.app import Ledger
from ledger.values import GiB
from projections.candidates import pool_candidates
from projections.placement import find_suitable
from tests.property.pool_tables import (
    NAMES,
    TEMPLATE,
    boundary_pool,
    load_pools,
    pool_row,
    request_args,
)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    pools=st.lists(pool_row, min_size=0, max_size=12),
    names=st.permutations(NAMES),
    args=request_args,
)
def test_sql_and_python_take_the_same_pool_with_the_same_verdicts(
    ledger: Ledger,
    pools: list[dict[str, Any]],
    names: list[str],
    args: dict[str, Any],
) -> None:
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
    threshold, used_threshold = args["threshold"], args["used_threshold"]
    views = pool_candidates(ledger, "z1", template)
    assert len(views) == len(pools)
    python = allocate(
        request, views, threshold, args["algorithm"], args["seed"], used_threshold
    )
    found, others = find_suitable(
        ledger,
        request,
        template,
        threshold,
        used_threshold,
        args["algorithm"],
        args["seed"],
    )
    sql = allocate_found(request, found, others, threshold, used_threshold)
    assert sql is not None, "a pool the database refused is suitable in Python"
    assert sql.chosen == python.chosen
    assert sql.expanded() == python.expanded()
    assert set(sql.expanded()) == set(ids)  # every pool of the zone, once


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    pools=st.lists(pool_row, min_size=1, max_size=12),
    names=st.permutations(NAMES),
    args=request_args,
    requested=st.integers(0, 12),
)
def test_a_requested_pool_is_judged_alone_as_the_read_side_judges_it(
    ledger: Ledger,
    pools: list[dict[str, Any]],
    names: list[str],
    args: dict[str, Any],
    requested: int,
) -> None:
    """`allocate_requested` (the `--pool` path of `usecases.placement.place`, which
    reads only the requested pool and the others' names) makes the very decision, every
    verdict in the same order, that the read side makes over every pool: taken,
    refused, or not a pool of the zone at all (`requested` past the last)."""
    ids = load_pools(ledger, pools, names)
    pool_id = ids[requested] if requested < len(ids) else str(uuid.UUID(int=99))
    template = TEMPLATE if args["template_size"] else None
    request = Request(
        size=args["size"],
        zone_id="z1",
        tags=tuple(args["tags"]),
        template_size=args["template_size"],
        avoid=tuple(ids[i] for i in args["avoid"] if i < len(ids)),
        pool_id=pool_id,
    )
    threshold, used_threshold = args["threshold"], args["used_threshold"]
    views = {v.id: v for v in pool_candidates(ledger, "z1", template)}
    found, others = find_suitable(
        ledger, request, template, threshold, used_threshold, "firstfit", 0
    )
    sql = allocate_found(request, found, others, threshold, used_threshold)
    assert sql is not None
    if sql.chosen is None:  # place() judges the read side's views itself
        sql = allocate(request, others, threshold, "firstfit", 0, used_threshold)
    alone = allocate_requested(
        request,
        views.get(pool_id),
        {v.id: v.name for v in views.values()},
        threshold,
        used_threshold,
    )
    assert alone == sql


def test_the_thresholds_exact_edges_agree(ledger: Ledger) -> None:
    """At exactly the threshold the allocated check accepts and the used check
    refuses (CloudStack's > and >=); just past it both refuse. The SQL side must
    do the same float arithmetic to land on the same side of each edge."""
    pools = [
        boundary_pool(allocated=int(7.5 * GiB)),  # + 1 GiB: exactly 85%: taken
        boundary_pool(allocated=int(7.5 * GiB) + 1),  # just over: refused
        boundary_pool(used=int(8.5 * GiB)),  # used exactly 85%: refused
        boundary_pool(used=int(8.5 * GiB) - 1),  # just under: suitable
        boundary_pool(capacity=0),  # no limit at all: refused
    ]
    names = ["p0", "p1", "p2", "p3", "p4"]
    ids = load_pools(ledger, pools, names)
    request = Request(size=GiB, zone_id="z1", cluster_id="c1")
    views = pool_candidates(ledger, "z1", None)
    python = allocate(request, views, 0.85, "firstfit", 0, 0.85)
    found, others = find_suitable(ledger, request, None, 0.85, 0.85, "firstfit", 0)
    sql = allocate_found(request, found, others, 0.85, 0.85)
    assert sql is not None
    verdicts = sql.expanded()
    assert verdicts == python.expanded()
    assert sql.chosen == ids[0]
    assert verdicts[ids[1]][2].startswith("would reach 85% of 10 GiB, over")
    assert "at or over the 85% used threshold" in verdicts[ids[2]][2]
    assert verdicts[ids[3]][2] == "suitable, another was first"
    assert verdicts[ids[4]][1] is False
