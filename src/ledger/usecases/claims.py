"""Unique names: one `NameClaim` per (kind, name), saved beside the object it names.

CloudStack relies on unique keys in its tables; here two concurrent `pool add db1`
collide in the event store on the claim's derived id, whatever the projections say.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from ledger.aggregate import Ctx
from ledger.app import Ledger
from ledger.errors import Duplicate, InvalidInput
from ledger.inventory import find_claim
from ledger.job import Job
from ledger.names import NameClaim


def claim_name(
    ledger: Ledger, ctx: Ctx, kind: str, name: str, obj_id: UUID
) -> NameClaim:
    """The name's claim for `obj_id`, new or taken again from a deleted object;
    refused when the name is not printable or is in use."""
    if (
        not name
        or name != name.strip()
        or len(name) > 255
        or any(c in name for c in "\0\n\r")
    ):
        raise InvalidInput(f"{kind} name", name, "1-255 printable characters")
    existing = find_claim(ledger, kind, name)
    if existing is None:
        return NameClaim.claim(ctx, kind, name, obj_id)
    if not existing.released:
        raise Duplicate(kind, name)
    existing.reclaim(ctx, obj_id)  # the name of a deleted object is free again
    return existing


def save_new(
    ledger: Ledger, ctx: Ctx, kind: str, name: str, obj: Aggregate, *others: Aggregate
) -> None:
    """Save a new named object with its claim and what came with it, at once."""
    claim = claim_name(ledger, ctx, kind, name, obj.id)
    try:
        ledger.save(obj, claim, *others)
    except IntegrityError:
        # The name claim or the zone moved under us: decide again from fresh state.
        raise Duplicate(kind, name) from None


def job_in(saved: Iterable[Any]) -> Job:
    """The job among what an operation saved."""
    return next(a for a in saved if isinstance(a, Job))
