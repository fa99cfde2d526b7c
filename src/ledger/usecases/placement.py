"""Choosing a pool for a volume: CloudStack's allocator chain, with the why recorded.

The read side nominates (`ports.Candidates`: one query finds the suitable pools
among 10,000); the chosen pool's own aggregate has the last word, and when it refuses
(the tables were behind) its fresh view replaces the stale one and the chain runs
again, so the recorded decision is the true one. The decision (every pool of the
zone, taken or refused, and why) is an event on the volume; the reservation is an
event on the pool, saved with it: two allocations cannot both take the last space.
Callers bring the candidates up to date once (`refresh`), before `Ledger.atomic`.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from ledger import requests, transfer
from ledger.aggregate import Ctx
from ledger.allocation.chain import allocate, allocate_found, allocate_requested
from ledger.allocation.cleanup import collect_garbage
from ledger.allocation.filters import refusal
from ledger.allocation.views import Decision, PoolView, Request
from ledger.app import Ledger
from ledger.copies import DataObjectInStore
from ledger.errors import NotFound
from ledger.inventory import AggregateCandidates, view_of
from ledger.pool import StoragePool
from ledger.ports import Candidates
from ledger.template import Template
from ledger.values import DataObjectType, StoreRole
from ledger.volume import Volume
from ledger.zone import Zone, zone_id_for


def no_pool_message(decision: Decision) -> str:
    return (
        "Unable to find suitable primary storage "
        f"({decision.summary()}; `storctl why` shows the decision)"
    )


def limits(ledger: Ledger) -> tuple[float, float]:
    """The allocated-capacity disable threshold and the over-provisioning factor
    every reservation is checked against."""
    settings = ledger.settings()
    return (
        float(settings.get("pool.storage.allocated.capacity.disablethreshold")),
        float(settings.get("storage.overprovisioning.factor")),
    )


def candidates_of(ledger: Ledger) -> Candidates:
    """The read side's candidates, or the aggregates' own without one."""
    return ledger.candidates or AggregateCandidates(ledger)


class _Rules:
    """`place()`'s settings, read once: each read loads the Config aggregate."""

    def __init__(self, ledger: Ledger, volume: Volume) -> None:
        settings = ledger.settings()
        self.algorithm = str(settings.get("vm.allocation.algorithm"))
        self.threshold = float(
            settings.get("pool.storage.allocated.capacity.disablethreshold")
        )
        self.factor = float(settings.get("storage.overprovisioning.factor"))
        self.used_threshold = float(
            settings.get("pool.storage.capacity.disablethreshold")
        )
        self.cleanup = bool(settings.get("storage.cleanup.enabled"))
        self.seed = volume.id.int & 0xFFFF


def place(
    ledger: Ledger,
    ctx: Ctx,
    volume: Volume,
    request: Request,
    template: Template | None = None,
) -> tuple[Decision, StoragePool | None, list[Aggregate]]:
    """Choose a pool, record the decision, reserve, and move the volume onto it;
    also return the template copies storage cleanup destroyed to make room (to be
    saved with the rest). A `--pool` request needs no candidates: its pool's
    aggregate decides (`_judge_requested`)."""
    candidates = candidates_of(ledger)
    template_id = template.id if template else None
    rules = _Rules(ledger, volume)
    decision: Decision | None = None
    pool: StoragePool | None = None
    views: dict[str, PoolView] | None = None
    if request.pool_id is not None:
        decision, pool, views = _judge_requested(ledger, request, template_id, rules)
    else:
        found = candidates.suitable(
            request,
            template_id,
            rules.threshold,
            rules.used_threshold,
            rules.algorithm,
            rules.seed,
        )
        if found is not None:
            suitable, others = found
            quick = allocate_found(
                request, suitable, others, rules.threshold, rules.used_threshold
            )
            if quick is not None and quick.chosen is not None:
                pool = ledger.load(StoragePool, UUID(quick.chosen))
                fresh = view_of(ledger, pool, template_id, rules.factor)
                if (
                    refusal(fresh, request, rules.threshold, rules.used_threshold)
                    is None
                ):
                    decision = quick
            elif quick is not None:
                views = {v.id: v for v in others}  # nothing suitable: all are here
    if decision is None:
        if views is None:
            views = {v.id: v for v in candidates.pools(volume.zone_id, template_id)}
        for _ in range(len(views) + 1):
            decision = allocate(
                request,
                list(views.values()),
                rules.threshold,
                rules.algorithm,
                seed=rules.seed,
                used_threshold=rules.used_threshold,
            )
            if decision.chosen is None:
                break
            pool = ledger.load(StoragePool, UUID(decision.chosen))
            fresh = view_of(ledger, pool, template_id, rules.factor)
            if fresh == views[decision.chosen]:
                break
            views[decision.chosen] = fresh  # the projection was behind: again
    assert decision is not None
    cleaned: list[Aggregate] = []
    if decision.chosen is None and views is not None and rules.cleanup:
        decision, pool, cleaned = _collect_garbage(
            ledger, ctx, volume, request, template_id, list(views.values()), decision,
            rules,
        )  # fmt: skip
    chosen = UUID(decision.chosen) if decision.chosen else None
    volume.record_decision(ctx, request.as_dict(), decision.verdict_dicts(), chosen)
    if chosen is None:
        return decision, None, []
    assert pool is not None  # every path that chooses loaded the chosen pool
    pool.reserve(ctx, volume, volume.size, rules.threshold, rules.factor)
    volume.change_pool(ctx, pool.id)
    return decision, pool, cleaned


def _judge_requested(
    ledger: Ledger, request: Request, template_id: UUID | None, rules: _Rules
) -> tuple[Decision, StoragePool | None, dict[str, PoolView]]:
    """An operator's `--pool`: the requested pool's own aggregate decides, and
    the zone's other pools are only named (`allocate_requested`). So nothing
    waits for the read side to catch up: the zone's stream says which pools it
    has, and a pool's name never changes. Also return the loaded pool and the
    views `_collect_garbage` may need (only the requested pool's)."""
    assert request.pool_id is not None
    try:
        pool_ids = list(ledger.peek(Zone, zone_id_for(request.zone_id)).pools)
    except NotFound:
        pool_ids = []
    pool: StoragePool | None = None
    views: dict[str, PoolView] = {}
    if request.pool_id in pool_ids:
        pool = ledger.load(StoragePool, UUID(request.pool_id))
        views[request.pool_id] = view_of(ledger, pool, template_id, rules.factor)
    others = pool_names(ledger, request.zone_id, pool_ids)
    decision = allocate_requested(
        request,
        views.get(request.pool_id),
        others,
        rules.threshold,
        rules.used_threshold,
    )
    return decision, pool, views


def pool_names(ledger: Ledger, zone_id: str, pool_ids: list[str]) -> dict[str, str]:
    """{id: name} of the given pools of a zone, in their order: from the read side
    where it knows them, else (a pool it has not seen yet) from the aggregate."""
    known = candidates_of(ledger).pool_names(zone_id, pool_ids)
    return {
        i: known[i] if i in known else ledger.peek(StoragePool, UUID(i)).name
        for i in pool_ids
    }


def _collect_garbage(
    ledger: Ledger,
    ctx: Ctx,
    volume: Volume,
    request: Request,
    template_id: UUID | None,
    views: list[PoolView],
    refused: Decision,
    rules: _Rules,
) -> tuple[Decision, Any, list[Aggregate]]:
    """The GarbageCollectingStoragePoolAllocator (`storage.cleanup.enabled`):
    destroy the unused template copies of the pool that cleanup makes suitable,
    give their reservations back, and take that pool. Each copy is confirmed on
    its own aggregate (saved with the volume, so a clone that starts reading it
    meanwhile makes the save conflict and the whole choice is made again)."""
    found: dict[str, list[DataObjectInStore]] = {}
    reclaimable: dict[str, int] = {}
    pools: dict[str, StoragePool] = {}
    nominated = candidates_of(ledger).unused_template_copies(
        volume.zone_id, template_id
    )
    for pool_id, ids in nominated.items():
        # the pool knows holds recorded before holders kept their own
        holding = pools[pool_id] = ledger.load(StoragePool, UUID(pool_id))
        for cid in ids:
            copy = ledger.find(DataObjectInStore, cid)
            if (
                copy is not None
                and copy.unused
                and copy.object_type is DataObjectType.TEMPLATE
                and copy.store_role is StoreRole.Primary
                and str(copy.store_id) == pool_id
            ):
                found.setdefault(pool_id, []).append(copy)
                held = holding.held_by(copy) or 0
                reclaimable[pool_id] = reclaimable.get(pool_id, 0) + held
    decision = collect_garbage(
        request,
        views,
        reclaimable,
        rules.threshold,
        refused,
        rules.algorithm,
        seed=rules.seed,
        used_threshold=rules.used_threshold,
    )
    if decision.chosen is None:
        return refused, None, []
    pool = pools[decision.chosen]
    cleaned: list[Aggregate] = []
    for copy in found[decision.chosen]:
        template = ledger.load(Template, copy.object_id)
        requests.delete_template_copy(
            ctx, ledger.wait("wait"), copy, template, transfer.primary_to(pool)
        )
        pool.release(ctx, copy)
        cleaned.append(copy)
    check = pool.check(volume.size, rules.threshold, rules.factor)
    if not check.passes:
        return refused, None, []  # the projection overstated what cleanup frees
    return decision, pool, cleaned
