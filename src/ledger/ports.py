"""What the write side needs from outside, as protocols: the read side's candidates.

CloudStack's allocators read the `storage_pool` table directly. Here the decision is
the ledger's, and the tables are a projection a moment behind, so the write side
asks through `Candidates` and treats every answer as a nomination: the chosen
pool's own aggregate has the last word (`usecases.placement`). The read side
implements it (`projections.candidates.TableCandidates`); the composition root
(`cli.bootstrap`) plugs it in. A use case calls `refresh` once, at its entry,
outside `Ledger.atomic`: nothing inside a decision ever writes a table.
"""

from __future__ import annotations

from typing import Protocol
from uuid import UUID

from ledger.allocation.views import PoolView, Request, Suitable


class Candidates(Protocol):
    """The pools a placement may consider, as the read side sees them."""

    def refresh(self) -> None:
        """Bring what the other calls read up to the log (writes the tables)."""

    def pools(self, zone_id: str, template_id: UUID | None) -> list[PoolView]:
        """Every pool of the zone, as the allocator sees it."""

    def suitable(
        self,
        request: Request,
        template_id: UUID | None,
        threshold: float,
        used_threshold: float,
        algorithm: str,
        seed: int,
    ) -> tuple[list[Suitable], list[PoolView]] | None:
        """Per allocator of the chain, the suitable pools and the one taken, and
        every other pool of the zone to be judged one by one; None when this side
        cannot find them itself (the caller then judges every pool)."""

    def pool_names(self, zone_id: str, pool_ids: list[str]) -> dict[str, str]:
        """{id: name} of those pools it knows (a pool's name never changes, so a
        table behind is right about every pool it holds)."""

    def unused_template_copies(
        self, zone_id: str, template_id: UUID | None
    ) -> dict[str, list[UUID]]:
        """Template copies on the zone's pools that no volume uses, per pool
        (storage cleanup's nominees; each is confirmed on its aggregate)."""

    def ids(self, kind: str, prefix: str) -> list[tuple[str, str | None]]:
        """(id, name) of the objects of `kind` (`Ledger.resolve`'s kinds) whose id
        starts with `prefix`: an operator's abbreviated id (`vm stop 9925b89f`),
        as the tables stand; read only."""
