"""What the allocators read and what they write: CloudStack's DiskProfile and
DeploymentPlan (`Request`), a pool as an allocator sees it (`PoolView`), and the
decision with every pool's verdict (`Verdict`, `Group`, `Decision`), which the
volume records as one event so "No suitable pool" is explained from the ledger.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

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
    """One pool's fate in one decision: which allocator judged it, whether it was
    taken, and why (the words a filter or the chain gave)."""

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
    """The chain's answer for one request: the pool chosen (or None) and a verdict
    for every pool of the zone, one by one or in groups."""

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


@dataclass(frozen=True)
class Suitable:
    """What the read side found for one allocator of the chain: the ids of every
    pool in its scope that passes every rule, and the one `pick` takes among them."""

    allocator: str
    pool_ids: tuple[str, ...]
    taken: PoolView | None
