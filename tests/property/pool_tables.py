"""Zones of pools as projected rows, and requests, for the property tests that hold
the allocators' SQL (`projections.placement`) to their Python
(`ledger.allocation`): scopes, clusters, hosts, states, tags, capacities, allocated
and used sizes, factors, cached templates, volume counts, and names that sort
differently by byte and by locale.
"""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import strategies as st

from ledger.allocation.chain import ALGORITHMS
from ledger.app import Ledger
from ledger.values import GiB, PoolStatus, Scope
from projections.view import view_for

NAMES = ["a", "B", "b", "Z", "é", "ä", "a-1", "a_1", "A", "z9", "Ω", "pool 10"]
CLUSTERS = ["c1", "c2", None]
HOSTS = ["h1", "h2"]
TAGS = ["ssd", "hdd", "fast"]
TEMPLATE = uuid.UUID(int=7)

pool_row = st.fixed_dictionaries(
    {
        "scope": st.sampled_from([Scope.CLUSTER, Scope.ZONE, Scope.HOST]),
        "cluster": st.sampled_from(CLUSTERS),
        "host": st.sampled_from(HOSTS),
        "status": st.sampled_from(
            [PoolStatus.Up] * 4 + [PoolStatus.Maintenance, PoolStatus.Disabled]
        ),
        "tags": st.lists(st.sampled_from(TAGS), unique=True, max_size=2),
        "capacity": st.sampled_from([0, 1, 10 * GiB, 100 * GiB, 3 * GiB + 7]),
        "allocated": st.integers(0, 12).map(lambda n: n * GiB // 2),
        "used": st.sampled_from([0, 0, GiB, 8 * GiB, int(8.5 * GiB)]),
        "factor": st.sampled_from([1.0, 1.0, 2.0, 0.5, 1.7]),
        "cached": st.booleans(),
        "volumes": st.integers(0, 3),
    }
)

request_args = st.fixed_dictionaries(
    {
        "size": st.sampled_from([GiB // 4, GiB, 5 * GiB]),
        "tags": st.lists(st.sampled_from(TAGS), unique=True, max_size=2),
        "cluster": st.sampled_from(CLUSTERS),
        "host": st.sampled_from([*HOSTS, None]),
        "local": st.booleans(),
        "template_size": st.sampled_from([0, GiB]),
        "avoid": st.lists(st.integers(0, 11), max_size=2),
        "requested": st.one_of(st.none(), st.integers(0, 11)),
        "threshold": st.sampled_from([0.85, 0.5, 1.0, 1.5]),
        "used_threshold": st.sampled_from([0.85, 0.9]),
        "algorithm": st.sampled_from(ALGORITHMS),
        "seed": st.integers(0, 0xFFFF),
    }
)


def load_pools(
    ledger: Ledger, pools: list[dict[str, Any]], names: list[str]
) -> list[str]:
    """The pools as projected rows (storage_pool, tags, cached copies, volumes),
    every earlier row gone; each in zone `z1` unless its row says `zone`."""
    ids = [str(uuid.UUID(int=i + 1000)) for i in range(len(pools))]
    with view_for(ledger).view_transaction(commit=True) as db:
        for table in ("storage_pool", "storage_pool_tags", "template_spool_ref"):
            db.execute(f"DELETE FROM {table}")
        db.execute("DELETE FROM volumes")
        for i, (pid, pool) in enumerate(zip(ids, pools, strict=True)):
            db.execute(
                "INSERT INTO storage_pool (uuid, name, pool_type, scope,"
                " data_center_id, cluster_id, host_id, path, capacity_bytes,"
                " used_bytes, allocated_bytes, overprovision_factor,"
                " overprovision_set, status) VALUES"
                " (?, ?, 'Simulator', ?, ?, ?, ?, '/p', ?, ?, ?, ?, 1, ?)",
                [
                    pid,
                    names[i],
                    pool["scope"].value,
                    pool.get("zone", "z1"),
                    pool["cluster"],
                    pool["host"] if pool["scope"] is Scope.HOST else None,
                    pool["capacity"],
                    pool["used"],
                    pool["allocated"],
                    pool["factor"],
                    pool["status"].value,
                ],
            )
            for tag in pool["tags"]:
                db.execute(
                    "INSERT INTO storage_pool_tags (pool_id, tag) VALUES (?, ?)",
                    [pid, tag],
                )
            if pool["cached"]:
                db.execute(
                    "INSERT INTO template_spool_ref (id, pool_id, template_id, state)"
                    " VALUES (?, ?, ?, 'Ready')",
                    [str(uuid.uuid4()), pid, str(TEMPLATE)],
                )
            for n in range(pool["volumes"]):
                db.execute(
                    "INSERT INTO volumes (uuid, name, pool_id, data_center_id,"
                    " state) VALUES (?, ?, ?, ?, 'Ready')",
                    [str(uuid.uuid4()), f"v{n}", pid, pool.get("zone", "z1")],
                )
    return ids


def boundary_pool(**kw: Any) -> dict[str, Any]:
    """A row of `pool_row`'s shape: an empty, `Up`, 10 GiB cluster-scope pool of c1,
    but for `kw` (the edges of a threshold are tested one pool at a time)."""
    return {
        "scope": Scope.CLUSTER,
        "cluster": "c1",
        "host": "h1",
        "status": PoolStatus.Up,
        "tags": [],
        "capacity": 10 * GiB,
        "allocated": 0,
        "used": 0,
        "factor": 1.0,
        "cached": False,
        "volumes": 0,
        **kw,
    }
