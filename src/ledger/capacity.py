"""The numbers behind a capacity decision, kept for the words of the refusal.

CloudStack's `StorageManagerImpl.storagePoolHasEnoughSpace` (allocated bytes
against capacity x over-provisioning, refused past
`pool.storage.allocated.capacity.disablethreshold`) and `checkUsagedSpace` (what a
host measured, refused at `pool.storage.capacity.disablethreshold`). The pool
aggregate checks a reservation with them, and the allocation filters judge a
pool's view with the very same arithmetic and words.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.values import format_size


@dataclass(frozen=True)
class UsedCheck:
    """`pool.storage.capacity.disablethreshold` against what a host measured: CloudStack
    refuses a pool whose physical use reaches the threshold (`checkUsagedSpace`)."""

    capacity: int
    used: int
    threshold: float

    @property
    def share(self) -> float:
        return self.used / self.capacity if self.capacity else float("inf")

    @property
    def passes(self) -> bool:
        return self.used == 0 or self.share < self.threshold

    def reason(self) -> str:
        return (
            f"{self.share * 100:.0f}% used on disk ({format_size(self.used)} of "
            f"{format_size(self.capacity)}), at or over the "
            f"{self.threshold * 100:.0f}% used threshold"
        )


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
