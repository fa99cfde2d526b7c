"""CloudStack's StoragePoolAllocator chain, pure, with every verdict kept.

CloudStack tries `LocalStoragePoolAllocator` (host-scope pools of the VM's host),
`ClusterScopeStoragePoolAllocator`, then `ZoneWideStoragePoolAllocator`; the first that
returns any pool wins. Each asks small questions in order (avoid set, `Up`, tags,
capacity) and, unlike CloudStack, says why a pool was refused in words an operator
understands, so "No suitable pool" is explained from the ledger alone.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ledger.pool import CapacityCheck
from ledger.values import PoolStatus, Scope


@dataclass(frozen=True)
class PoolView:
    """What an allocator needs to know of a pool (from the aggregate or the table)."""

    id: str
    name: str
    scope: Scope
    zone_id: str
    cluster_id: str | None
    host_id: str | None
    status: PoolStatus
    tags: tuple[str, ...]
    capacity: int
    allocated: int
    factor: float
    volumes: int = 0
    has_template: bool = False


@dataclass(frozen=True)
class Request:
    size: int
    zone_id: str
    cluster_id: str | None = None
    host_id: str | None = None
    tags: tuple[str, ...] = ()
    template_size: int = 0
    avoid: tuple[str, ...] = ()
    local: bool = False
    pool_id: str | None = None  # an operator's --pool: the only candidate

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["tags"], d["avoid"] = list(self.tags), list(self.avoid)
        return d


@dataclass(frozen=True)
class Verdict:
    pool_id: str
    pool: str
    allocator: str
    taken: bool
    reason: str


@dataclass
class Decision:
    request: Request
    verdicts: list[Verdict] = field(default_factory=list)
    chosen: str | None = None

    def verdict_dicts(self) -> list[dict[str, Any]]:
        return [asdict(v) for v in self.verdicts]

    def summary(self) -> str:
        if self.chosen:
            return f"pool {self.chosen} chosen"
        if not self.verdicts:
            return "no pool in scope"
        return "; ".join(f"{v.pool}: {v.reason}" for v in self.verdicts)


def refusal(pool: PoolView, request: Request, threshold: float) -> str | None:
    """Why `pool` cannot take `request`, or None when it can (CloudStack's order)."""
    if pool.id in request.avoid:
        return "in the avoid set"
    if pool.status is not PoolStatus.Up:
        return f"in {pool.status.name}"
    missing = [t for t in request.tags if t not in pool.tags]
    if missing:
        return f"tags {','.join(missing)} missing"
    asking = request.size + (0 if pool.has_template else request.template_size)
    check = CapacityCheck(
        capacity=pool.capacity,
        factor=pool.factor,
        threshold=threshold,
        allocated=pool.allocated,
        asking=asking,
    )
    if not check.passes:
        return check.reason()
    return None


def _in_scope(pool: PoolView, request: Request, allocator: str) -> bool:
    if pool.zone_id != request.zone_id:
        return False
    if allocator == "local":
        return pool.scope is Scope.HOST and pool.host_id == request.host_id
    if allocator == "cluster":
        return pool.scope is Scope.CLUSTER and (
            request.cluster_id is None or pool.cluster_id == request.cluster_id
        )
    return pool.scope is Scope.ZONE


def order(pools: list[PoolView], algorithm: str, rng: random.Random) -> list[PoolView]:
    """`vm.allocation.algorithm`: CloudStack's orderings of the candidates."""
    if algorithm in ("random", "userconcentratedpod_random"):
        shuffled = list(pools)
        rng.shuffle(shuffled)
        return shuffled
    if algorithm == "firstfitleastconsumed":
        return sorted(
            pools, key=lambda p: (p.allocated / (p.capacity * p.factor), p.name)
        )
    if algorithm == "userdispersing":
        return sorted(pools, key=lambda p: (p.volumes, p.name))
    return list(pools)  # firstfit: as listed


def allocate(
    request: Request,
    pools: Sequence[PoolView],
    threshold: float,
    algorithm: str = "firstfit",
    seed: int = 0,
) -> Decision:
    """Run the chain; the first allocator with a suitable pool wins."""
    decision = Decision(request=request)
    listed = sorted(pools, key=lambda p: (p.name, p.id))
    if request.pool_id is not None:
        listed = [p for p in listed if p.id == request.pool_id]
    chain = (["local"] if request.local else []) + ["cluster", "zone"]
    rng = random.Random(seed)
    for allocator in chain:
        candidates = [p for p in listed if _in_scope(p, request, allocator)]
        if request.pool_id is not None and allocator == "zone":
            # an operator's --pool is taken whatever its scope, if it can reach
            candidates = [
                p
                for p in listed
                if (p.scope is not Scope.CLUSTER and p.scope is not Scope.HOST)
                or request.host_id is None
            ]
            candidates = [
                c
                for c in candidates
                if c.id not in {v.pool_id for v in decision.verdicts}
            ]
        for pool in order(candidates, algorithm, rng):
            why = refusal(pool, request, threshold)
            if why is None and decision.chosen is None:
                decision.chosen = pool.id
                decision.verdicts.append(
                    Verdict(pool.id, pool.name, allocator, taken=True, reason="taken")
                )
            elif why is None:
                decision.verdicts.append(
                    Verdict(
                        pool.id,
                        pool.name,
                        allocator,
                        taken=False,
                        reason="suitable, not first",
                    )
                )
            else:
                decision.verdicts.append(
                    Verdict(pool.id, pool.name, allocator, taken=False, reason=why)
                )
        if decision.chosen is not None:
            return decision
    return decision
