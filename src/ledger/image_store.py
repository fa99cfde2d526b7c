"""The ImageStore aggregate: CloudStack's secondary storage (`image_store`).

Templates are downloaded here first, and snapshots are backed up here.
"""

from __future__ import annotations

from typing import Any

from ledger.aggregate import Ctx, StorctlAggregate


class ImageStore(StorctlAggregate):
    TOPIC = "storctl.ImageStore"

    class Event(StorctlAggregate.Event):
        TOPIC = "storctl.ImageStore.Event"

    class Registered(StorctlAggregate.Created, Event):
        TOPIC = "storctl.ImageStore.Registered"
        name: str
        zone_id: str
        provider: str
        path: str

    class ReadonlyChanged(Event):
        TOPIC = "storctl.ImageStore.ReadonlyChanged"
        readonly: bool

        def apply(self, aggregate: Any) -> None:
            aggregate.readonly = self.readonly

    def __init__(
        self,
        *,
        name: str,
        zone_id: str,
        provider: str,
        path: str,
        actor: str,
        job_id: str,
        causation_id: str,
    ) -> None:
        self.name = name
        self.zone_id = zone_id
        self.provider = provider
        self.path = path
        self.readonly = False

    @classmethod
    def register(
        cls, ctx: Ctx, name: str, zone_id: str, path: str, provider: str = "NFS"
    ) -> ImageStore:
        return cls.create(
            cls.Registered,
            ctx,
            name=name,
            zone_id=zone_id,
            provider=provider,
            path=path,
        )
