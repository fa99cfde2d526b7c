"""Which hosts reach which store: the scope rules CloudStack's endpoint selector uses.

A host-scope pool is reached by its host, a cluster-scope pool by the hosts of its
cluster, a zone-wide pool and an image store by every host of the zone. Pure over the
zone inventory, so the ledger can decide "copy directly, or stage through the image
store" and the dispatcher can pick an endpoint by the same rule.
"""

from __future__ import annotations

from uuid import UUID

from ledger.pool import StoragePool
from ledger.values import Scope
from ledger.zone import Zone


def pool_hosts(pool: StoragePool, zone: Zone | None) -> set[UUID]:
    if pool.scope is Scope.HOST:
        return {pool.host_id} if pool.host_id else set()
    if zone is None:
        return set()
    if pool.scope is Scope.CLUSTER:
        return set(zone.hosts_of_cluster(pool.cluster_id or ""))
    return {UUID(h) for h in zone.hosts}


def zone_hosts(zone: Zone | None) -> set[UUID]:
    return {UUID(h) for h in zone.hosts} if zone else set()
