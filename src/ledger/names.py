"""Name claims: one aggregate per (kind, name), so a duplicate name loses the race.

CloudStack relies on unique keys in its tables; here the claim's id is derived from
the kind and the name, and saving it beside the object it names makes two concurrent
`pool add db1` calls collide in the event store, whatever the projections say.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from ledger.aggregate import Ctx, StorctlAggregate
from ledger.values import derived_id


def claim_id(kind: str, name: str) -> UUID:
    return derived_id("name", kind, name)


class NameClaim(StorctlAggregate):
    TOPIC = "storctl.NameClaim"

    class Event(StorctlAggregate.Event):
        TOPIC = "storctl.NameClaim.Event"

    class Claimed(StorctlAggregate.Created, Event):
        TOPIC = "storctl.NameClaim.Claimed"
        kind: str
        name: str
        object_id: UUID

    class Released(Event):
        TOPIC = "storctl.NameClaim.Released"

        def apply(self, aggregate: Any) -> None:
            aggregate.released = True

    class Reclaimed(Event):
        """A released name taken again by a new object."""

        TOPIC = "storctl.NameClaim.Reclaimed"
        object_id: UUID

        def apply(self, aggregate: Any) -> None:
            aggregate.object_id = self.object_id
            aggregate.released = False

    def __init__(
        self,
        *,
        kind: str,
        name: str,
        object_id: UUID,
        actor: str,
        job_id: str,
        causation_id: str,
    ) -> None:
        self.kind = kind
        self.name = name
        self.object_id = object_id
        self.released = False

    def release(self, ctx: Ctx) -> None:
        self.emit(self.Released, ctx)

    def reclaim(self, ctx: Ctx, object_id: UUID) -> None:
        self.emit(self.Reclaimed, ctx, object_id=object_id)

    @classmethod
    def claim(cls, ctx: Ctx, kind: str, name: str, object_id: UUID) -> NameClaim:
        return cls.create(
            cls.Claimed,
            ctx,
            id=claim_id(kind, name),
            kind=kind,
            name=name,
            object_id=object_id,
        )
