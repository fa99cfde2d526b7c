"""CloudStack's StoragePoolAllocator chain, pure, with every verdict kept.

CloudStack tries `LocalStoragePoolAllocator` (host-scope pools of the VM's host, when
the offering asks for local storage), `ClusterScopeStoragePoolAllocator`, then
`ZoneWideStoragePoolAllocator`; the first that returns any pool wins. When none does,
`GarbageCollectingStoragePoolAllocator` cleans up the template copies no volume uses
and tries again (`collect_garbage`). Each asks small
questions in order (avoid set, `Up`, storage tags, capacity) and, unlike CloudStack,
says why a pool was refused in words an operator understands, so "No suitable pool" is
explained from the ledger alone: every pool of the zone gets a verdict.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ledger.pool import CapacityCheck, UsedCheck
from ledger.values import PoolStatus, Scope, format_size

ALGORITHMS = (
    "random",
    "firstfit",
    "userdispersing",
    "firstfitleastconsumed",
    "userconcentratedpod_random",
    "userconcentratedpod_firstfit",
)


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
    used: int = 0  # physical bytes a host last reported; 0 when never measured


@dataclass(frozen=True)
class Request:
    """A disk to place: its size, tags and where the VM runs (CloudStack's
    DiskProfile + DeploymentPlan)."""

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
        # by hand: dataclasses.asdict deep-copies, and 10,000 pools made it the
        # largest cost of a decision (docs/performance.md)
        return [
            {
                "pool_id": v.pool_id,
                "pool": v.pool,
                "allocator": v.allocator,
                "taken": v.taken,
                "reason": v.reason,
            }
            for v in self.verdicts
        ]

    def summary(self) -> str:
        if self.chosen:
            return f"pool {self.chosen} chosen"
        if not self.verdicts:
            return f"no pool in zone {self.request.zone_id}"
        return "; ".join(f"{v.pool}: {v.reason}" for v in self.verdicts)


def refusal(
    pool: PoolView, request: Request, threshold: float, used_threshold: float = 0.85
) -> str | None:
    """Why `pool` cannot take `request`, or None when it can (CloudStack's order).
    `threshold` is the allocated one, `used_threshold` the physical one."""
    if pool.id in request.avoid:
        return "in the avoid set"
    if pool.status is not PoolStatus.Up:
        return f"in {pool.status.name}"
    missing = [t for t in request.tags if t not in pool.tags]
    if missing:
        return f"tags {','.join(missing)} missing"
    used = UsedCheck(capacity=pool.capacity, used=pool.used, threshold=used_threshold)
    if not used.passes:
        return used.reason()
    template = 0 if pool.has_template else request.template_size
    check = CapacityCheck(
        capacity=pool.capacity,
        factor=pool.factor,
        threshold=threshold,
        allocated=pool.allocated,
        asking=request.size + template,
    )
    if not check.passes:
        extra = f" (with the template, {format_size(template)})" if template else ""
        return check.reason() + extra
    return None


def scope_refusal(pool: PoolView, request: Request, allocator: str) -> str | None:
    """Why `allocator` does not even consider `pool`, or None when in its scope."""
    if pool.zone_id != request.zone_id:
        return f"in zone {pool.zone_id}"
    if request.pool_id is not None:
        return None if pool.id == request.pool_id else "not the requested pool"
    if allocator == "local":
        if pool.scope is not Scope.HOST:
            return "not local storage"
        return None if pool.host_id == request.host_id else "local to another host"
    if allocator == "cluster":
        if pool.scope is not Scope.CLUSTER:
            return "not cluster scope"
        if request.cluster_id is not None and pool.cluster_id != request.cluster_id:
            return f"in cluster {pool.cluster_id}, the host is in {request.cluster_id}"
        return None
    return None if pool.scope is Scope.ZONE else "not zone-wide"


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
    return list(pools)  # firstfit and userconcentratedpod_firstfit: as listed


def chain(request: Request) -> list[str]:
    if request.pool_id is not None:
        return ["requested"]
    return (["local"] if request.local else []) + ["cluster", "zone"]


def allocate(
    request: Request,
    pools: Sequence[PoolView],
    threshold: float,
    algorithm: str = "firstfit",
    seed: int = 0,
    used_threshold: float = 0.85,
) -> Decision:
    """Run the chain; the first allocator with a suitable pool wins. Every pool of
    the zone ends with exactly one verdict, taken or refused, and why."""
    decision = Decision(request=request)
    listed = sorted(pools, key=lambda p: (p.name, p.id))
    judged: dict[str, Verdict] = {}
    rng = random.Random(seed)
    for allocator in chain(request):
        if allocator == "requested":
            candidates = [p for p in listed if p.id == request.pool_id]
        else:
            candidates = [
                p
                for p in listed
                if p.id not in judged and scope_refusal(p, request, allocator) is None
            ]
        for pool in order(candidates, algorithm, rng):
            why = refusal(pool, request, threshold, used_threshold)
            if why is None and decision.chosen is None:
                decision.chosen = pool.id
                judged[pool.id] = Verdict(
                    pool.id, pool.name, allocator, taken=True, reason="taken"
                )
            elif why is None:
                judged[pool.id] = Verdict(
                    pool.id,
                    pool.name,
                    allocator,
                    taken=False,
                    reason="suitable, another was first",
                )
            else:
                judged[pool.id] = Verdict(
                    pool.id, pool.name, allocator, taken=False, reason=why
                )
        if decision.chosen is not None:
            break
    for pool in listed:
        if pool.id not in judged:
            judged[pool.id] = Verdict(
                pool.id,
                pool.name,
                "scope",
                taken=False,
                reason=_unreached(pool, request, decided=decision.chosen is not None),
            )
    decision.verdicts = [judged[p.id] for p in listed]
    return decision


def _unreached(pool: PoolView, request: Request, *, decided: bool) -> str:
    """Why no allocator of the chain judged `pool`."""
    if pool.zone_id != request.zone_id:
        return f"in zone {pool.zone_id}"
    if request.pool_id is not None:
        return "not the requested pool"
    in_some_scope = any(
        scope_refusal(pool, request, a) is None for a in ("cluster", "zone")
    ) or (request.local and scope_refusal(pool, request, "local") is None)
    if decided and in_some_scope:
        return "not reached: an earlier allocator found a pool"
    if pool.scope is Scope.HOST:
        if not request.local:
            return "local storage, and the disk does not ask for it"
        return "local to another host"
    return f"in cluster {pool.cluster_id}, the host is in {request.cluster_id}"


def collect_garbage(
    request: Request,
    pools: Sequence[PoolView],
    reclaimable: Mapping[str, int],
    threshold: float,
    refused: Decision,
    algorithm: str = "firstfit",
    seed: int = 0,
    used_threshold: float = 0.85,
) -> Decision:
    """CloudStack's GarbageCollectingStoragePoolAllocator, the last of the chain: run
    the chain again as if every unused template copy (`reclaimable`: bytes per pool)
    were cleaned up. Only a pool that cleanup would free can change its verdict; the
    verdicts of the others stand as `refused` gave them."""
    if refused.chosen is not None or not reclaimable:
        return refused
    freed = [
        replace(p, allocated=max(0, p.allocated - reclaimable[p.id]))
        for p in pools
        if reclaimable.get(p.id, 0) > 0
    ]
    retry = allocate(request, freed, threshold, algorithm, seed, used_threshold)
    if retry.chosen is None:
        return refused
    size = format_size(reclaimable[retry.chosen])
    verdicts = [
        Verdict(
            v.pool_id,
            v.pool,
            "garbage",
            taken=True,
            reason=f"taken after cleaning up unused template copies ({size})",
        )
        if v.pool_id == retry.chosen
        else v
        for v in refused.verdicts
    ]
    return Decision(request=request, verdicts=verdicts, chosen=retry.chosen)
