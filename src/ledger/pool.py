"""The StoragePool aggregate: a primary storage pool and the guard of its capacity.

CloudStack computes a pool's allocated size from its tables each time
(`CapacityManagerImpl.getAllocatedPoolCapacity`) and checks it in
`StorageManagerImpl.storagePoolHasEnoughSpace`. Here the pool holds its reservations,
one per object (volume or cached template copy), so the check and the reservation are
one atomic save: two allocations racing for the last space cannot both win.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from ledger.base import Ctx, StorctlAggregate
from ledger.errors import CapacityExceeded, IllegalTransition
from ledger.values import PoolStatus, PoolType, Scope, format_size

#: Pool types whose `StoragePoolType.supportsOverProvisioning` is true in CloudStack.
OVERPROVISIONING_TYPES = frozenset(
    {
        PoolType.Filesystem,
        PoolType.NetworkFilesystem,
        PoolType.SharedMountPoint,
        PoolType.Simulator,
    }
)

# StoragePoolStatus moves an operator can ask for, as (from states, to state).
_STATUS_MOVES: dict[str, tuple[frozenset[PoolStatus], PoolStatus]] = {
    "Disable": (frozenset({PoolStatus.Up}), PoolStatus.Disabled),
    "Enable": (frozenset({PoolStatus.Disabled}), PoolStatus.Up),
    "PrepareForMaintenance": (
        frozenset({PoolStatus.Up, PoolStatus.Disabled, PoolStatus.ErrorInMaintenance}),
        PoolStatus.PrepareForMaintenance,
    ),
    "MaintenanceReached": (
        frozenset({PoolStatus.PrepareForMaintenance}),
        PoolStatus.Maintenance,
    ),
    "MaintenanceFailed": (
        frozenset({PoolStatus.PrepareForMaintenance}),
        PoolStatus.ErrorInMaintenance,
    ),
    "CancelMaintenance": (
        frozenset(
            {
                PoolStatus.Maintenance,
                PoolStatus.PrepareForMaintenance,
                PoolStatus.ErrorInMaintenance,
            }
        ),
        PoolStatus.Up,
    ),
    "Remove": (frozenset({PoolStatus.Maintenance}), PoolStatus.Removed),
}


@dataclass(frozen=True)
class CapacityCheck:
    """The numbers behind one capacity decision, kept for the words of the refusal."""

    capacity: int
    factor: float
    threshold: float
    allocated: int
    asking: int

    @property
    def limit(self) -> float:
        return self.capacity * self.factor

    @property
    def share(self) -> float:
        return (
            (self.allocated + self.asking) / self.limit if self.limit else float("inf")
        )

    @property
    def passes(self) -> bool:
        # CloudStack refuses when the share is strictly greater than the threshold
        # (exactly 0.85 is accepted), or when the total passes the over-provisioned max.
        return (
            self.share <= self.threshold and self.allocated + self.asking <= self.limit
        )

    def reason(self) -> str:
        pct = self.share * 100
        verdict = "over" if not self.passes else "within"
        return (
            f"would reach {pct:.0f}% of {format_size(int(self.limit))}, "
            f"{verdict} the {self.threshold * 100:.0f}% threshold"
        )


class StoragePool(StorctlAggregate):
    TOPIC = "storctl.StoragePool"

    class Event(StorctlAggregate.Event):
        TOPIC = "storctl.StoragePool.Event"

    class Registered(StorctlAggregate.Created, Event):
        TOPIC = "storctl.StoragePool.Registered"
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

    class StatusChanged(Event):
        TOPIC = "storctl.StoragePool.StatusChanged"
        trigger: str
        from_status: PoolStatus
        to_status: PoolStatus

        def apply(self, aggregate: Any) -> None:
            aggregate.status = self.to_status

    class CapacityReserved(Event):
        TOPIC = "storctl.StoragePool.CapacityReserved"
        object_id: str
        size: int

        def apply(self, aggregate: Any) -> None:
            aggregate.reservations[self.object_id] = self.size
            aggregate.allocated += self.size

    class CapacityReleased(Event):
        TOPIC = "storctl.StoragePool.CapacityReleased"
        object_id: str
        size: int

        def apply(self, aggregate: Any) -> None:
            aggregate.reservations.pop(self.object_id, None)
            aggregate.allocated -= self.size

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
        actor: str,
        job_id: str,
        causation_id: str,
    ) -> None:
        self.name = name
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
        self.reservations: dict[str, int] = {}
        self.allocated = 0

    @classmethod
    def register(cls, ctx: Ctx, **fields: Any) -> StoragePool:
        return cls.create(cls.Registered, ctx, **fields)

    # ------------------------------------------------------------ status

    def change_status(self, ctx: Ctx, trigger: str) -> None:
        sources, dest = _STATUS_MOVES[trigger]
        if self.status not in sources:
            raise IllegalTransition(
                "StoragePool", str(self.id), self.status.name, trigger
            )
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

    def reserve(
        self,
        ctx: Ctx,
        object_id: str,
        size: int,
        threshold: float,
        default_factor: float,
    ) -> None:
        """Reserve `size` for `object_id`, or refuse past the disable threshold."""
        if object_id in self.reservations:
            if self.reservations[object_id] == size:
                return  # already held: a retried request changes nothing
            raise CapacityExceeded(
                self.name, f"{object_id} already holds a reservation"
            )
        if size < 0:
            raise CapacityExceeded(self.name, f"negative size {size}")
        check = self.check(size, threshold, default_factor)
        if not check.passes:
            raise CapacityExceeded(self.name, check.reason())
        self.emit(self.CapacityReserved, ctx, object_id=object_id, size=size)

    def grow(
        self,
        ctx: Ctx,
        object_id: str,
        new_size: int,
        threshold: float,
        default_factor: float,
    ) -> None:
        """Reserve more for an object that grows (a resize), checked like a new one."""
        held = self.reservations.get(object_id, 0)
        if new_size <= held:
            return
        check = self.check(new_size - held, threshold, default_factor)
        if not check.passes:
            raise CapacityExceeded(self.name, check.reason())
        if held:
            self.emit(self.CapacityReleased, ctx, object_id=object_id, size=held)
        self.emit(self.CapacityReserved, ctx, object_id=object_id, size=new_size)

    def shrink(self, ctx: Ctx, object_id: str, size: int) -> None:
        """Hold less for an object (a failed resize gives back what it reserved);
        less never overbooks, so there is nothing to check."""
        held = self.reservations.get(object_id)
        if held is None or size >= held:
            return
        self.emit(self.CapacityReleased, ctx, object_id=object_id, size=held)
        self.emit(self.CapacityReserved, ctx, object_id=object_id, size=size)

    def release(self, ctx: Ctx, object_id: str) -> None:
        """Release what `object_id` holds; releasing nothing is a no-op."""
        size = self.reservations.get(object_id)
        if size is not None:
            self.emit(self.CapacityReleased, ctx, object_id=object_id, size=size)
