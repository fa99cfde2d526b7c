"""`ledger.ports.Candidates` from the projected tables: what placement may consider.

The write side never calls the read side inside a decision: a use case calls
`refresh` once at its entry (the one place the tables catch up), then its decision
reads through the other methods, which only read. Every answer is a nomination;
the chosen pool's aggregate has the last word (`ledger.usecases.placement`).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from ledger.allocation.views import PoolView, Request, Suitable
from projections.candidates import pool_candidates, pool_names, unused_template_copies
from projections.placement import find_suitable
from projections.projector import catch_up
from projections.queries import find_ids
from projections.view import reader


class TableCandidates:
    """One per ledger (the composition root makes it). Pool names never change,
    so each is read once per process."""

    def __init__(self, ledger: Any) -> None:
        self.ledger = ledger
        self._names: dict[str, str] = {}

    def refresh(self) -> None:
        catch_up(self.ledger)

    def pools(self, zone_id: str, template_id: UUID | None) -> list[PoolView]:
        return pool_candidates(self.ledger, zone_id, template_id)

    def suitable(
        self,
        request: Request,
        template_id: UUID | None,
        threshold: float,
        used_threshold: float,
        algorithm: str,
        seed: int,
    ) -> tuple[list[Suitable], list[PoolView]]:
        return find_suitable(
            self.ledger,
            request,
            template_id,
            threshold,
            used_threshold,
            algorithm,
            seed,
        )

    def pool_names(self, zone_id: str, pool_ids: list[str]) -> dict[str, str]:
        if any(i not in self._names for i in pool_ids):
            self._names.update(pool_names(self.ledger, zone_id))
        return {i: self._names[i] for i in pool_ids if i in self._names}

    def unused_template_copies(
        self, zone_id: str, template_id: UUID | None
    ) -> dict[str, list[UUID]]:
        return unused_template_copies(self.ledger, zone_id, template_id)

    def ids(self, kind: str, prefix: str) -> list[tuple[str, str | None]]:
        with reader(self.ledger) as r:
            return find_ids(r, kind, prefix)
