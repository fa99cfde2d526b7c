"""The ImageStore aggregate: CloudStack's secondary storage (`image_store`).

Templates are downloaded here first, and snapshots are backed up here.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

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
        state["cached"] = {}
        state["clock"] = 0

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

    class CopyCached(Event):
        """A copy is now in this staging cache, `size` bytes of it."""

        TOPIC = "storctl.ImageStore.CopyCached"
        copy_id: UUID
        size: int

        def apply(self, aggregate: Any) -> None:
            aggregate.clock += 1
            aggregate.cached[str(self.copy_id)] = [self.size, aggregate.clock]

    class CopyServed(Event):
        """A cached copy was read on its way to a pool: it is the most recently
        used (what eviction goes by)."""

        TOPIC = "storctl.ImageStore.CopyServed"
        copy_id: UUID

        def apply(self, aggregate: Any) -> None:
            aggregate.clock += 1
            entry = aggregate.cached.get(str(self.copy_id))
            if entry is not None:
                entry[1] = aggregate.clock

    class CopyEvicted(Event):
        TOPIC = "storctl.ImageStore.CopyEvicted"
        copy_id: UUID

        def apply(self, aggregate: Any) -> None:
            aggregate.cached.pop(str(self.copy_id), None)

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
        #: a staging cache's copies: copy id -> [bytes, last use (a counter)]
        self.cached: dict[str, list[int]] = {}
        self.clock = 0

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

    # ------------------------------------------------------------ staging cache

    def cache(self, ctx: Ctx, copy_id: UUID, size: int) -> None:
        if str(copy_id) not in self.cached:
            self.emit(self.CopyCached, ctx, copy_id=copy_id, size=size)

    def serve(self, ctx: Ctx, copy_id: UUID) -> None:
        if str(copy_id) in self.cached:
            self.emit(self.CopyServed, ctx, copy_id=copy_id)

    def evict(self, ctx: Ctx, copy_id: UUID) -> None:
        if str(copy_id) in self.cached:
            self.emit(self.CopyEvicted, ctx, copy_id=copy_id)

    @property
    def cached_bytes(self) -> int:
        return sum(size for size, _ in self.cached.values())

    def eviction(self, limit: int, busy: set[str]) -> list[UUID]:
        """The copies to evict, least recently used first, until what stays fits
        in `limit` bytes; never one in `busy` (read or waited for right now)."""
        over = self.cached_bytes - limit
        victims: list[UUID] = []
        for copy_id, (size, _) in sorted(self.cached.items(), key=lambda kv: kv[1][1]):
            if over <= 0:
                break
            if copy_id in busy:
                continue
            victims.append(UUID(copy_id))
            over -= size
        return victims

    def can(self, capability: str) -> bool:
        """What the store's provider declared (`needs_staging_cache`); a store
        added before providers declared it is a directory, which needs none."""
        return bool(self.capabilities.get(capability, False))
