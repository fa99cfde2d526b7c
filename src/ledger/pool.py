"""The StoragePool aggregate: a primary storage pool and the guard of its capacity.

CloudStack computes a pool's allocated size from its tables each time
(`CapacityManagerImpl.getAllocatedPoolCapacity`) and checks it in
`StorageManagerImpl.storagePoolHasEnoughSpace`. Here the pool keeps the total it has
reserved, so the check and the reservation are one atomic save: two allocations racing
for the last space cannot both win.

What each object holds is kept by the object (the volume, the cached template copy:
a `CapacityHolder`), which is saved with the pool in that same save. A pool with
100,000 volumes on it is then two counters, not 100,000 entries to decode on every
load; the holder's record is what makes a retried reserve or release change nothing.
"""

from __future__ import annotations

from typing import Any, Protocol
from uuid import UUID

from ledger.aggregate import Ctx, StorctlAggregate
from ledger.capacity import CapacityCheck, UsedCheck
from ledger.errors import CapacityExceeded, InvalidInput
from ledger.fsm import POOL
from ledger.values import PoolStatus, PoolType, Scope

#: Pool types whose `StoragePoolType.supportsOverProvisioning` is true in CloudStack
#: (RBD's is; Iscsi's is not).
OVERPROVISIONING_TYPES = frozenset(
    {
        PoolType.Filesystem,
        PoolType.NetworkFilesystem,
        PoolType.SharedMountPoint,
        PoolType.Simulator,
        PoolType.RBD,
    }
)


class CapacityHolder(Protocol):
    """An object that reserves on pools (a Volume, a DataObjectInStore): it records
    what it holds on each, in its own stream, saved with the pool."""

    @property
    def id(self) -> UUID: ...

    def held_on(self, pool_id: UUID) -> int | None: ...

    def record_hold(self, ctx: Ctx, pool_id: UUID, size: int) -> None: ...

    def record_release(self, ctx: Ctx, pool_id: UUID) -> None: ...


class HoldsCapacity:
    """The `CapacityHolder` half kept by an aggregate: `holds` maps a pool id to the
    size held there (a migrating volume holds on two pools, anything else on at most
    one). The aggregate defines `CapacityHeld(pool_id, size)` and
    `CapacityGivenBack(pool_id)` events whose `apply` updates `holds`."""

    holds: dict[str, int]

    def held_on(self, pool_id: UUID) -> int | None:
        return self.holds.get(str(pool_id))

    def record_hold(self, ctx: Ctx, pool_id: UUID, size: int) -> None:
        aggregate: Any = self  # a StorctlAggregate with the two events
        aggregate.emit(aggregate.CapacityHeld, ctx, pool_id=pool_id, size=size)

    def record_release(self, ctx: Ctx, pool_id: UUID) -> None:
        aggregate: Any = self
        aggregate.emit(aggregate.CapacityGivenBack, ctx, pool_id=pool_id)


class StoragePool(StorctlAggregate):
    """v2 (snapshot state): `allocated` and `objects` instead of the per-object
    `reservations`, whose entries made before the holders kept their own record
    live on in `legacy` until released."""

    TOPIC = "storctl.StoragePool"
    SPEC = POOL
    class_version = 3
    used = 0  # for snapshots taken before StatsReported existed

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        legacy = state.pop("reservations", {})
        state["legacy"] = legacy
        state["objects"] = len(legacy)

    @staticmethod
    def upcast_v2_v3(state: dict[str, Any]) -> None:
        """v3 added `credentials` and `capabilities` (see `Registered`)."""
        state["credentials"] = None
        state["capabilities"] = {}

    class Event(StorctlAggregate.Event):
        TOPIC = "storctl.StoragePool.Event"

    class Registered(StorctlAggregate.Created, Event):
        TOPIC = "storctl.StoragePool.Registered"
        class_version = 2
        name: str
        zone_id: str
        cluster_id: str | None
        host_id: UUID | None
        scope: Scope
        pool_type: PoolType
        path: str
        capacity: int
        overprovision: float | None
        tags: list[str]
        credentials: str | None
        capabilities: dict[str, bool]

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """v2 added `credentials` (a reference the executors resolve, never a
            secret) and `capabilities` (what the pool's provider declared when it
            was added); a directory pool before them had neither."""
            state["credentials"] = None
            state["capabilities"] = {}

    class StatsReported(Event):
        """What a host that reaches the pool measured of its physical use (CloudStack's
        GetStorageStatsAnswer, kept as `storage_pool.used_bytes`)."""

        TOPIC = "storctl.StoragePool.StatsReported"
        used: int
        host: str

        def apply(self, aggregate: Any) -> None:
            aggregate.used = self.used

    class StatusChanged(Event):
        TOPIC = "storctl.StoragePool.StatusChanged"
        trigger: str
        from_status: PoolStatus
        to_status: PoolStatus

        def apply(self, aggregate: Any) -> None:
            aggregate.status = self.to_status

    class CapacityReserved(Event):
        """v2 added `kept_by_pool`: v1 reservations were recorded only by the pool,
        so the pool keeps them (in `legacy`) until they are released; from v2 on the
        holder keeps its own record and the pool only counts."""

        TOPIC = "storctl.StoragePool.CapacityReserved"
        class_version = 2
        object_id: str
        size: int
        kept_by_pool: bool

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["kept_by_pool"] = True

        def apply(self, aggregate: Any) -> None:
            if self.kept_by_pool:
                aggregate.legacy[self.object_id] = self.size
            aggregate.allocated += self.size
            aggregate.objects += 1

    class CapacityReleased(Event):
        TOPIC = "storctl.StoragePool.CapacityReleased"
        object_id: str
        size: int

        def apply(self, aggregate: Any) -> None:
            aggregate.legacy.pop(self.object_id, None)
            aggregate.allocated -= self.size
            aggregate.objects -= 1

    def __init__(
        self,
        *,
        name: str,
        zone_id: str,
        cluster_id: str | None,
        host_id: UUID | None,
        scope: Scope,
        pool_type: PoolType,
        path: str,
        capacity: int,
        overprovision: float | None,
        tags: list[str],
        credentials: str | None,
        capabilities: dict[str, bool],
        actor: str,
        job_id: str,
        causation_id: str,
    ) -> None:
        self.name = name
        self.credentials = credentials
        self.capabilities = dict(capabilities)
        self.zone_id = zone_id
        self.cluster_id = cluster_id
        self.host_id = host_id
        self.scope = scope
        self.pool_type = pool_type
        self.path = path
        self.capacity = capacity
        self.overprovision = overprovision
        self.tags = list(tags)
        self.status = PoolStatus.Up
        self.used = 0  # physical bytes in use, as last reported by a host
        self.allocated = 0  # bytes reserved, over every object on the pool
        self.objects = 0  # volumes and template copies holding a reservation
        # object id -> size, for reservations recorded before holders kept their own
        # (upcast v1 events and snapshots); empty on a pool registered since
        self.legacy: dict[str, int] = {}

    @classmethod
    def register(cls, ctx: Ctx, **fields: Any) -> StoragePool:
        fields.setdefault("credentials", None)
        fields.setdefault("capabilities", {})
        return cls.create(cls.Registered, ctx, **fields)

    def can(self, capability: str) -> bool:
        """What the pool's provider declared it can do (`native_snapshots`,
        `linked_clones`, `snapshots`, ...); a pool added before providers declared
        them is a directory pool, which clones and snapshots (with `qemu-img`)
        but keeps no native snapshots."""
        directory = capability in ("linked_clones", "snapshots")
        return bool(self.capabilities.get(capability, directory))

    # ------------------------------------------------------------ status

    def report_stats(self, ctx: Ctx, used: int, host: str) -> None:
        if used < 0:
            raise InvalidInput("used bytes", str(used), "a size of 0 or more")
        self.emit(self.StatsReported, ctx, used=used, host=host)

    def used_check(self, threshold: float) -> UsedCheck:
        return UsedCheck(capacity=self.capacity, used=self.used, threshold=threshold)

    def change_status(self, ctx: Ctx, trigger: str) -> None:
        """Move the pool's status as `trigger` asks, or `IllegalTransition`."""
        dest = self.SPEC.next_state(self.id, self.status, trigger, self.name)
        self.emit(
            self.StatusChanged,
            ctx,
            trigger=trigger,
            from_status=self.status,
            to_status=dest,
        )

    # ------------------------------------------------------------ capacity

    def factor(self, default_factor: float) -> float:
        if self.overprovision is not None:
            return self.overprovision
        return default_factor if self.pool_type in OVERPROVISIONING_TYPES else 1.0

    def check(
        self, size: int, threshold: float, default_factor: float
    ) -> CapacityCheck:
        return CapacityCheck(
            capacity=self.capacity,
            factor=self.factor(default_factor),
            threshold=threshold,
            allocated=self.allocated,
            asking=size,
        )

    def held_by(self, holder: CapacityHolder) -> int | None:
        """What `holder` holds here: its own record, or the pool's from before."""
        held = holder.held_on(self.id)
        if held is None:
            held = self.legacy.get(str(holder.id))
        return held

    def reserve(
        self,
        ctx: Ctx,
        holder: CapacityHolder,
        size: int,
        threshold: float,
        default_factor: float,
    ) -> None:
        """Reserve `size` for `holder`, or refuse past the disable threshold. The
        caller saves `holder` with the pool."""
        held = self.held_by(holder)
        if held is not None:
            if held == size:
                return  # already held: a retried request changes nothing
            raise CapacityExceeded(
                self.name, f"{holder.id} already holds a reservation"
            )
        if size < 0:
            raise CapacityExceeded(self.name, f"negative size {size}")
        check = self.check(size, threshold, default_factor)
        if not check.passes:
            raise CapacityExceeded(self.name, check.reason())
        self._reserve(ctx, holder, size)

    def grow(
        self,
        ctx: Ctx,
        holder: CapacityHolder,
        new_size: int,
        threshold: float,
        default_factor: float,
    ) -> None:
        """Reserve more for an object that grows (a resize), checked like a new one."""
        held = self.held_by(holder) or 0
        if new_size <= held:
            return
        check = self.check(new_size - held, threshold, default_factor)
        if not check.passes:
            raise CapacityExceeded(self.name, check.reason())
        self.release(ctx, holder)
        self._reserve(ctx, holder, new_size)

    def shrink(self, ctx: Ctx, holder: CapacityHolder, size: int) -> None:
        """Hold less for an object (a failed resize gives back what it reserved);
        less never overbooks, so there is nothing to check."""
        held = self.held_by(holder)
        if held is None or size >= held:
            return
        self.release(ctx, holder)
        self._reserve(ctx, holder, size)

    def release(self, ctx: Ctx, holder: CapacityHolder) -> None:
        """Release what `holder` holds; releasing nothing is a no-op."""
        size = self.held_by(holder)
        if size is None:
            return
        self.emit(self.CapacityReleased, ctx, object_id=str(holder.id), size=size)
        if holder.held_on(self.id) is not None:
            holder.record_release(ctx, self.id)

    def _reserve(self, ctx: Ctx, holder: CapacityHolder, size: int) -> None:
        self.emit(
            self.CapacityReserved,
            ctx,
            object_id=str(holder.id),
            size=size,
            kept_by_pool=False,
        )
        holder.record_hold(ctx, self.id, size)
