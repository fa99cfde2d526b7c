"""An agent's answer, folded on the object that asked.

CloudStack's `AsyncCallbackDispatcher` hands each answer to the callback of the
request that sent it; here the answer becomes an `...Answered` event on the object
whose command it answers, exactly once per request: an answer for a command no
longer pending is refused as stale (`aggregate.StaleAnswer`).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Tracking

from ledger.aggregate import Ctx
from ledger.app import Ledger


def record_answer(
    ledger: Ledger,
    ctx: Ctx,
    object_id: UUID,
    answer: Any,
    tracking: Tracking | None = None,
) -> list[Aggregate]:
    """Fold `answer` on `object_id`, saved with the follower's `tracking` row."""

    def decide() -> list[Aggregate | None]:
        obj: Any = ledger.repository.get(object_id)
        obj.fold_answer(ctx, answer)
        return [obj]

    return ledger.atomic(decide, tracking=tracking, what="answer")
