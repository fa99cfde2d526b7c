"""The Zone aggregate: a zone's inventory of clusters, hosts, pools and image stores.

CloudStack answers "which hosts can reach this pool" and "is there such a cluster"
from its tables; here the zone's own stream answers them, so validation and endpoint
selection never wait for a projection to catch up. A zone is created by the first
object registered in it.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from ledger.aggregate import Ctx, StorctlAggregate
from ledger.values import derived_id


def zone_id_for(name: str) -> UUID:
    return derived_id("zone", name)


class Zone(StorctlAggregate):
    """v2 (snapshot state) added `caches`."""

    TOPIC = "storctl.Zone"
    class_version = 2

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["caches"] = []

    class Event(StorctlAggregate.Event):
        TOPIC = "storctl.Zone.Event"

    class Opened(StorctlAggregate.Created, Event):
        TOPIC = "storctl.Zone.Opened"
        name: str

    class HostAdded(Event):
        TOPIC = "storctl.Zone.HostAdded"
        host_id: UUID
        cluster_id: str

        def apply(self, aggregate: Any) -> None:
            aggregate.hosts[str(self.host_id)] = self.cluster_id

    class PoolAdded(Event):
        TOPIC = "storctl.Zone.PoolAdded"
        pool_id: UUID

        def apply(self, aggregate: Any) -> None:
            aggregate.pools.append(str(self.pool_id))

    class PoolRemoved(Event):
        TOPIC = "storctl.Zone.PoolRemoved"
        pool_id: UUID

        def apply(self, aggregate: Any) -> None:
            aggregate.pools.remove(str(self.pool_id))

    class StoreAdded(Event):
        TOPIC = "storctl.Zone.StoreAdded"
        store_id: UUID

        def apply(self, aggregate: Any) -> None:
            aggregate.stores.append(str(self.store_id))

    class CacheAdded(Event):
        """A staging store (CloudStack's `ImageCache` role): what an S3 or Swift
        image store's data passes through on its way to a pool."""

        TOPIC = "storctl.Zone.CacheAdded"
        store_id: UUID

        def apply(self, aggregate: Any) -> None:
            aggregate.caches.append(str(self.store_id))

    def __init__(
        self, *, name: str, actor: str, job_id: str, causation_id: str
    ) -> None:
        self.name = name
        self.hosts: dict[str, str] = {}
        self.pools: list[str] = []
        self.stores: list[str] = []
        self.caches: list[str] = []

    @classmethod
    def open(cls, ctx: Ctx, name: str) -> Zone:
        return cls.create(cls.Opened, ctx, id=zone_id_for(name), name=name)

    @property
    def clusters(self) -> set[str]:
        return set(self.hosts.values())

    def hosts_of_cluster(self, cluster_id: str) -> list[UUID]:
        return [UUID(h) for h, c in self.hosts.items() if c == cluster_id]

    def add_host(self, ctx: Ctx, host_id: UUID, cluster_id: str) -> None:
        self.emit(self.HostAdded, ctx, host_id=host_id, cluster_id=cluster_id)

    def add_pool(self, ctx: Ctx, pool_id: UUID) -> None:
        self.emit(self.PoolAdded, ctx, pool_id=pool_id)

    def remove_pool(self, ctx: Ctx, pool_id: UUID) -> None:
        self.emit(self.PoolRemoved, ctx, pool_id=pool_id)

    def add_store(self, ctx: Ctx, store_id: UUID) -> None:
        self.emit(self.StoreAdded, ctx, store_id=store_id)

    def add_cache(self, ctx: Ctx, store_id: UUID) -> None:
        self.emit(self.CacheAdded, ctx, store_id=store_id)
