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


@dataclass(frozen=True)
class Group:
    """Pools that share one verdict and were judged together by the read side (every
    suitable pool but the one taken, say), named by id: with 10,000 pools a line per
    pool would make each decision a megabyte of events."""

    allocator: str
    reason: str
    pool_ids: tuple[str, ...]


@dataclass
class Decision:
    request: Request
    verdicts: list[Verdict] = field(default_factory=list)
    chosen: str | None = None
    groups: list[Group] = field(default_factory=list)

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
        ] + [
            {
                "pools": len(g.pool_ids),
                "pool_ids": list(g.pool_ids),
                "allocator": g.allocator,
                "taken": False,
                "reason": g.reason,
            }
            for g in self.groups
            if g.pool_ids
        ]

    def expanded(self) -> dict[str, tuple[str, bool, str]]:
        """pool id -> (allocator, taken, reason), groups spelled out."""
        out = {v.pool_id: (v.allocator, v.taken, v.reason) for v in self.verdicts}
        for g in self.groups:
            out.update({pid: (g.allocator, False, g.reason) for pid in g.pool_ids})
        return out

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


def pick(suitable: Sequence[PoolView], algorithm: str, rng: random.Random) -> PoolView:
    """`vm.allocation.algorithm`: which of the suitable pools (listed by name) is
    taken. The same rule the read side applies in SQL (`projections.placement`)."""
    if algorithm in ("random", "userconcentratedpod_random"):
        # by id: the read side draws from the ids it already holds
        return sorted(suitable, key=lambda p: p.id)[rng.randrange(len(suitable))]
    if algorithm == "firstfitleastconsumed":
        return min(suitable, key=lambda p: p.allocated / (p.capacity * p.factor))
    if algorithm == "userdispersing":
        return min(suitable, key=lambda p: p.volumes)
    return suitable[0]  # firstfit and userconcentratedpod_firstfit


SUITABLE = "suitable, another was first"
NOT_REACHED = "not reached: an earlier allocator found a pool"


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
        suitable: list[PoolView] = []
        for pool in candidates:
            why = refusal(pool, request, threshold, used_threshold)
            if why is None:
                suitable.append(pool)
            else:
                judged[pool.id] = Verdict(
                    pool.id, pool.name, allocator, taken=False, reason=why
                )
        if suitable:
            decision.chosen = pick(suitable, algorithm, rng).id
            for pool in suitable:
                taken = pool.id == decision.chosen
                judged[pool.id] = Verdict(
                    pool.id,
                    pool.name,
                    allocator,
                    taken=taken,
                    reason="taken" if taken else SUITABLE,
                )
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


@dataclass(frozen=True)
class Suitable:
    """What the read side found for one allocator of the chain: the ids of every
    pool in its scope that passes every rule, and the one `pick` takes among them."""

    allocator: str
    pool_ids: tuple[str, ...]
    taken: PoolView | None


def allocate_found(
    request: Request,
    found: Sequence[Suitable],
    others: Sequence[PoolView],
    threshold: float,
    used_threshold: float = 0.85,
) -> Decision | None:
    """The chain's decision when the read side found the suitable pools (`found`,
    per allocator, in chain order) and handed over every other pool of the zone
    (`others`) to be judged here, one by one, in the same words as `allocate`.
    The result names every pool exactly as `allocate` over all of them would; None
    when `others` holds a suitable pool after all (the two sides disagree: the
    caller judges every pool itself)."""
    stages = chain(request)
    winner = next((i for i, s in enumerate(found) if s.taken is not None), None)
    judged = allocate(request, others, threshold, used_threshold=used_threshold)
    if judged.chosen is not None:
        return None
    if winner is None:
        return judged
    won = found[winner]
    assert won.taken is not None
    later = stages[stages.index(won.allocator) + 1 :]
    by_id = {p.id: p for p in others}
    verdicts = []
    for v in judged.verdicts:
        if any(scope_refusal(by_id[v.pool_id], request, a) is None for a in later):
            v = Verdict(v.pool_id, v.pool, "scope", taken=False, reason=NOT_REACHED)
        verdicts.append(v)
    taken = Verdict(
        won.taken.id, won.taken.name, won.allocator, taken=True, reason="taken"
    )
    rest = list(won.pool_ids)
    if taken.pool_id in rest:
        rest.remove(taken.pool_id)
    groups = [Group(won.allocator, SUITABLE, tuple(rest))] + [
        Group("scope", NOT_REACHED, s.pool_ids) for s in found[winner + 1 :]
    ]
    return Decision(
        request=request,
        verdicts=[taken, *verdicts],
        chosen=taken.pool_id,
        groups=[g for g in groups if g.pool_ids],
    )


def allocate_requested(
    request: Request,
    requested: PoolView | None,
    others: Mapping[str, str],
    threshold: float,
    used_threshold: float = 0.85,
) -> Decision:
    """The decision for an operator's `--pool`: only `requested` (the pool's own
    view, or None when it is not a pool of the zone) is judged; every other pool of
    the zone (`others`, id -> name) is "not the requested pool", which needs nothing
    but its name. The same decision, verdicts in the same order, as the read side's
    (`allocate_found`) when the pool is taken, and as `allocate` when it is refused,
    without reading any pool but the requested one."""
    assert request.pool_id is not None
    refused = [
        Verdict(pid, name, "scope", taken=False, reason="not the requested pool")
        for pid, name in others.items()
        if pid != request.pool_id
    ]
    if requested is None:
        refused.sort(key=lambda v: (v.pool, v.pool_id))
        return Decision(request=request, verdicts=refused)
    why = refusal(requested, request, threshold, used_threshold)
    if why is None:
        refused.sort(key=lambda v: (v.pool, v.pool_id))
        taken = Verdict(
            requested.id, requested.name, "requested", taken=True, reason="taken"
        )
        return Decision(
            request=request, verdicts=[taken, *refused], chosen=taken.pool_id
        )
    own = Verdict(requested.id, requested.name, "requested", taken=False, reason=why)
    verdicts = sorted([own, *refused], key=lambda v: (v.pool, v.pool_id))
    return Decision(request=request, verdicts=verdicts)


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
        return NOT_REACHED
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
