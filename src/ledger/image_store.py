"""The ImageStore aggregate: CloudStack's secondary storage (`image_store`).

Templates are downloaded here first, and snapshots are backed up here.
"""

from __future__ import annotations

from typing import Any

from ledger.aggregate import Ctx, StorctlAggregate
from ledger.values import StoreRole


class ImageStore(StorctlAggregate):
    """v2 (snapshot state) added `role`, `credentials` and `capabilities`."""

    TOPIC = "storctl.ImageStore"
    class_version = 2

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["role"] = StoreRole.Image
        state["credentials"] = None
        state["capabilities"] = {}

    class Event(StorctlAggregate.Event):
        TOPIC = "storctl.ImageStore.Event"

    class Registered(StorctlAggregate.Created, Event):
        TOPIC = "storctl.ImageStore.Registered"
        class_version = 2
        name: str
        zone_id: str
        provider: str
        path: str
        role: StoreRole
        credentials: str | None
        capabilities: dict[str, bool]

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """v2 added `role` (an image store, or CloudStack's staging cache),
            `credentials` (a reference the executors resolve, never a secret) and
            `capabilities` (what its provider declared: an S3 store's data needs
            the staging cache on its way to a pool)."""
            state["role"] = StoreRole.Image
            state["credentials"] = None
            state["capabilities"] = {}

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
        role: StoreRole,
        credentials: str | None,
        capabilities: dict[str, bool],
        actor: str,
        job_id: str,
        causation_id: str,
    ) -> None:
        self.name = name
        self.zone_id = zone_id
        self.provider = provider
        self.path = path
        self.role = role
        self.credentials = credentials
        self.capabilities = dict(capabilities)
        self.readonly = False

    @classmethod
    def register(
        cls,
        ctx: Ctx,
        name: str,
        zone_id: str,
        path: str,
        provider: str = "NFS",
        *,
        role: StoreRole = StoreRole.Image,
        credentials: str | None = None,
        capabilities: dict[str, bool] | None = None,
    ) -> ImageStore:
        return cls.create(
            cls.Registered,
            ctx,
            name=name,
            zone_id=zone_id,
            provider=provider,
            path=path,
            role=role,
            credentials=credentials,
            capabilities=dict(capabilities or {}),
        )

    def can(self, capability: str) -> bool:
        """What the store's provider declared (`needs_staging_cache`); a store
        added before providers declared it is a directory, which needs none."""
        return bool(self.capabilities.get(capability, False))
