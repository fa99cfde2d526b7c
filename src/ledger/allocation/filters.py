"""One filter per question an allocator asks of a pool, Cinder's shape.

Each filter has a `name` and answers with why it refuses the pool, in the words the
decision records, or None when the pool passes. CloudStack asks these inside
`AbstractStoragePoolAllocator.filter` and the DAO queries each allocator lists its
candidates with; here each is one small function, so that the read side can hold an
SQL twin of each, keyed by the same `name` (`projections.placement`), and a test can
hold every twin to its filter, one question at a time.

Two families, applied in CloudStack's order:

- `SUITABILITY`, whether a pool can take the disk at all: avoid set, `Up`, storage
  tags, physical use, allocated capacity. `refusal` asks them in that order.
- the scope questions, whether an allocator considers the pool: the zone (its
  data center), the requested pool, local storage of the VM's host, the host's
  cluster, zone-wide. `scope_refusal` asks the data center, then the one its
  allocator stands for (`SCOPES`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ledger.allocation.views import PoolView, Request
from ledger.capacity import CapacityCheck, UsedCheck
from ledger.values import PoolStatus, Scope, format_size


@dataclass(frozen=True)
class Thresholds:
    """The two disable thresholds a capacity question needs: the allocated share
    (`pool.storage.allocated.capacity.disablethreshold`) and the physical one
    (`pool.storage.capacity.disablethreshold`). The scope questions ignore them."""

    allocated: float
    used: float = 0.85


Refuses = Callable[[PoolView, Request, Thresholds], str | None]


@dataclass(frozen=True)
class Filter:
    """One question: `refuses(pool, request, thresholds)` says why the pool fails
    it, or None when it passes. `name` keys its SQL twin on the read side."""

    name: str
    refuses: Refuses

    def __call__(
        self, pool: PoolView, request: Request, thresholds: Thresholds
    ) -> str | None:
        return self.refuses(pool, request, thresholds)


def question(name: str) -> Callable[[Refuses], Filter]:
    """Make the decorated function the filter called `name`."""

    def make(refuses: Refuses) -> Filter:
        return Filter(name, refuses)

    return make


# ------------------------------------------------------------ can it take the disk


@question("avoid")
def avoid(pool: PoolView, request: Request, thresholds: Thresholds) -> str | None:
    """`ExcludeList.shouldAvoid(pool)`: the caller ruled the pool out (a failed
    attempt, a migration's own source)."""
    return "in the avoid set" if pool.id in request.avoid else None


@question("status")
def status(pool: PoolView, request: Request, thresholds: Thresholds) -> str | None:
    """Only `Up` pools are candidates (`StoragePoolStatus`): not in maintenance,
    not disabled."""
    return None if pool.status is PoolStatus.Up else f"in {pool.status.name}"


@question("tags")
def tags(pool: PoolView, request: Request, thresholds: Thresholds) -> str | None:
    """`StoragePoolDao.findPoolsByTags`: every storage tag of the disk offering is
    on the pool (the pool may have more)."""
    missing = [t for t in request.tags if t not in pool.tags]
    return f"tags {','.join(missing)} missing" if missing else None


@question("used")
def used(pool: PoolView, request: Request, thresholds: Thresholds) -> str | None:
    """`StorageManagerImpl.checkUsagedSpace`: the physical use a host last reported
    reaches `pool.storage.capacity.disablethreshold` (never measured passes)."""
    check = UsedCheck(capacity=pool.capacity, used=pool.used, threshold=thresholds.used)
    return None if check.passes else check.reason()


@question("allocated")
def allocated(pool: PoolView, request: Request, thresholds: Thresholds) -> str | None:
    """`StorageManagerImpl.storagePoolHasEnoughSpace`: what the pool has allocated,
    plus the disk, plus the template's size unless a copy is already cached there,
    passes `pool.storage.allocated.capacity.disablethreshold` of the over-provisioned
    capacity, or the capacity itself."""
    template = 0 if pool.has_template else request.template_size
    check = CapacityCheck(
        capacity=pool.capacity,
        factor=pool.factor,
        threshold=thresholds.allocated,
        allocated=pool.allocated,
        asking=request.size + template,
    )
    if check.passes:
        return None
    extra = f" (with the template, {format_size(template)})" if template else ""
    return check.reason() + extra


#: CloudStack's order: the first refusal is the one recorded.
SUITABILITY: tuple[Filter, ...] = (avoid, status, tags, used, allocated)
_SUITABILITY = tuple(f.refuses for f in SUITABILITY)  # plain calls: the hot loop


# ------------------------------------------------------------ is it in scope

# words the chain also gives a pool no allocator reached (`chain._unreached`)
NOT_REQUESTED = "not the requested pool"
LOCAL_ELSEWHERE = "local to another host"


@question("data_center")
def data_center(pool: PoolView, request: Request, thresholds: Thresholds) -> str | None:
    """Every allocator lists the pools of the plan's data center (`dcId`), the
    zone, only."""
    return None if pool.zone_id == request.zone_id else f"in zone {pool.zone_id}"


@question("requested")
def requested(pool: PoolView, request: Request, thresholds: Thresholds) -> str | None:
    """`DeploymentPlan.getPoolId()`: an operator's `--pool` is the only candidate;
    without one, no pool is refused here."""
    if request.pool_id is None or pool.id == request.pool_id:
        return None
    return NOT_REQUESTED


@question("local")
def local(pool: PoolView, request: Request, thresholds: Thresholds) -> str | None:
    """`LocalStoragePoolAllocator`: host-scope pools of the VM's host."""
    if pool.scope is not Scope.HOST:
        return "not local storage"
    return None if pool.host_id == request.host_id else LOCAL_ELSEWHERE


@question("cluster")
def cluster(pool: PoolView, request: Request, thresholds: Thresholds) -> str | None:
    """`ClusterScopeStoragePoolAllocator`: cluster-scope pools of the host's cluster
    (any cluster when the plan names none)."""
    if pool.scope is not Scope.CLUSTER:
        return "not cluster scope"
    if request.cluster_id is not None and pool.cluster_id != request.cluster_id:
        return f"in cluster {pool.cluster_id}, the host is in {request.cluster_id}"
    return None


@question("zone_wide")
def zone_wide(pool: PoolView, request: Request, thresholds: Thresholds) -> str | None:
    """`ZoneWideStoragePoolAllocator`: zone-scope pools."""
    return None if pool.scope is Scope.ZONE else "not zone-wide"


#: allocator of the chain -> the scope question it stands for
SCOPES: dict[str, Filter] = {
    "requested": requested,
    "local": local,
    "cluster": cluster,
    "zone": zone_wide,
}

#: every question, each once: the read side's twins are checked against these names
FILTERS: tuple[Filter, ...] = (*SUITABILITY, data_center, *SCOPES.values())


def refusal(
    pool: PoolView, request: Request, threshold: float, used_threshold: float = 0.85
) -> str | None:
    """Why `pool` cannot take `request`, or None when it can: the `SUITABILITY`
    filters in CloudStack's order, the first refusal kept. `threshold` is the
    allocated one, `used_threshold` the physical one."""
    return first_refusal(pool, request, Thresholds(threshold, used_threshold))


def first_refusal(
    pool: PoolView, request: Request, thresholds: Thresholds
) -> str | None:
    """`refusal` with its thresholds made once (the chain judges pool after pool)."""
    for refuses in _SUITABILITY:
        why = refuses(pool, request, thresholds)
        if why is not None:
            return why
    return None


NO_THRESHOLDS = Thresholds(0.0, 0.0)  # the scope questions read none


def scope_filters(request: Request, allocator: str) -> tuple[Filter, Filter]:
    """The questions that decide whether `allocator` considers a pool: the data
    center, then the requested pool when there is one (it is every allocator's only
    candidate), else the allocator's own scope (zone-wide for a name the chain does
    not know)."""
    if request.pool_id is not None:
        return data_center, requested
    return data_center, SCOPES.get(allocator, zone_wide)


def scope_refusal(pool: PoolView, request: Request, allocator: str) -> str | None:
    """Why `allocator` does not even consider `pool`, or None when in its scope:
    the first refusal of its `scope_filters`."""
    zone_question, own = scope_filters(request, allocator)
    why = zone_question.refuses(pool, request, NO_THRESHOLDS)
    return why if why is not None else own.refuses(pool, request, NO_THRESHOLDS)
