"""CloudStack's StoragePoolAllocator chain: the allocators in order, the ordering
`vm.allocation.algorithm` names, and the verdict of every pool of the zone.

CloudStack tries `LocalStoragePoolAllocator` (when the offering asks for local
storage), `ClusterScopeStoragePoolAllocator`, then `ZoneWideStoragePoolAllocator`;
the first that returns any pool wins (`allocate`). Each allocator keeps the pools in
its scope (`filters.scope_refusal`) and judges them (`filters.refusal`); the words of
a pool no allocator judged, or one suitable but not taken, are here. Two cheaper
paths make the very same decision: `allocate_found`, when the read side already
found the suitable pools in SQL, and `allocate_requested`, for an operator's `--pool`.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from ledger.allocation.filters import (
    LOCAL_ELSEWHERE,
    NO_THRESHOLDS,
    NOT_REQUESTED,
    Thresholds,
    first_refusal,
    refusal,
    scope_filters,
    scope_refusal,
)
from ledger.allocation.views import (
    Decision,
    Group,
    PoolView,
    Request,
    Suitable,
    Verdict,
)
from ledger.values import Scope

#: `vm.allocation.algorithm`'s values (CloudStack's `DeploymentPlanner` orderings).
ALGORITHMS = (
    "random",
    "firstfit",
    "userdispersing",
    "firstfitleastconsumed",
    "userconcentratedpod_random",
    "userconcentratedpod_firstfit",
)

# The words of a verdict no filter gave.
TAKEN = "taken"
SUITABLE = "suitable, another was first"
NOT_REACHED = "not reached: an earlier allocator found a pool"
LOCAL_NOT_ASKED = "local storage, and the disk does not ask for it"


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


def chain(request: Request) -> list[str]:
    """The allocators asked, in order: an operator's `--pool` alone, else local
    storage (only when the disk asks for it), the cluster, the zone."""
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
    thresholds = Thresholds(threshold, used_threshold)
    for allocator in chain(request):
        if allocator == "requested":
            # taken by id, as CloudStack takes the plan's pool
            candidates = [p for p in listed if p.id == request.pool_id]
        else:
            zone_question, own = scope_filters(request, allocator)
            in_zone, in_scope = zone_question.refuses, own.refuses  # the hot loop
            candidates = [
                p
                for p in listed
                if p.id not in judged
                and in_zone(p, request, NO_THRESHOLDS) is None
                and in_scope(p, request, NO_THRESHOLDS) is None
            ]
        suitable: list[PoolView] = []
        for pool in candidates:
            why = first_refusal(pool, request, thresholds)
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
                    reason=TAKEN if taken else SUITABLE,
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
        won.taken.id, won.taken.name, won.allocator, taken=True, reason=TAKEN
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
        Verdict(pid, name, "scope", taken=False, reason=NOT_REQUESTED)
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
            requested.id, requested.name, "requested", taken=True, reason=TAKEN
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
        return NOT_REQUESTED
    in_some_scope = any(
        scope_refusal(pool, request, a) is None for a in ("cluster", "zone")
    ) or (request.local and scope_refusal(pool, request, "local") is None)
    if decided and in_some_scope:
        return NOT_REACHED
    if pool.scope is Scope.HOST:
        if not request.local:
            return LOCAL_NOT_ASKED
        return LOCAL_ELSEWHERE
    return f"in cluster {pool.cluster_id}, the host is in {request.cluster_id}"
