"""Where things are, read from the aggregates: which image store serves a zone, which
copy of a template is on a pool, which backup a snapshot has, which hosts reach two
pools at once.

CloudStack answers these from its tables (`template_spool_ref`, `snapshot_store_ref`,
`image_store`); storctl's write side answers them from the aggregates' own streams,
so a decision never waits for a projection. Nothing here writes: use cases and
workflow steps load through these, then decide.
"""

from __future__ import annotations

from uuid import UUID

from ledger.allocation.views import PoolView, Request, Suitable
from ledger.app import Ledger
from ledger.copies import GONE, DataObjectInStore, copy_id
from ledger.errors import NotFound
from ledger.host import Host
from ledger.image_store import ImageStore
from ledger.names import NameClaim, claim_id
from ledger.pool import StoragePool
from ledger.reach import pool_hosts
from ledger.snapshot import Snapshot
from ledger.template import Template
from ledger.values import HostState, SnapshotState
from ledger.volume import Volume


def image_store_for(ledger: Ledger, zone_id: str) -> ImageStore:
    """The zone's image store (its first): where backups and staged copies go."""
    zone = ledger.zone(zone_id)
    if zone is None or not zone.stores:
        raise NotFound("image store", f"in zone {zone_id}")
    return ledger.load(ImageStore, UUID(zone.stores[0]))


def cache_store_for(ledger: Ledger, zone_id: str) -> ImageStore:
    """The zone's staging cache (CloudStack's `ImageCache` store), which an S3 or
    Swift store's data passes through; refused when the zone has none."""
    zone = ledger.zone(zone_id)
    if zone is None or not zone.caches:
        raise NotFound("staging cache", f"in zone {zone_id} (store add --role cache)")
    return ledger.load(ImageStore, UUID(zone.caches[0]))


def staging_for(ledger: Ledger, store: ImageStore) -> ImageStore | None:
    """The cache a copy to or from `store` stages through, or None when the store
    is read and written directly (its provider needs no staging)."""
    if not store.can("needs_staging_cache"):
        return None
    return cache_store_for(ledger, store.zone_id)


def parking_store(ledger: Ledger, zone_id: str) -> ImageStore:
    """Where a migration between pools no host reaches both of parks the volume:
    the zone's image store, or its staging cache when the image store is S3 or
    Swift (CloudStack's `copyVolumeFromImageCacheToPrimary`)."""
    store = image_store_for(ledger, zone_id)
    return staging_for(ledger, store) or store


def ready_image_copy(
    ledger: Ledger, template: Template
) -> tuple[ImageStore, DataObjectInStore] | None:
    """An image store of the template's zone where the template is Ready."""
    zone = ledger.zone(template.zone_id)
    for sid in zone.stores if zone else []:
        copy = ledger.find(DataObjectInStore, copy_id(template.id, UUID(sid)))
        if copy is not None and copy.is_ready:
            return ledger.load(ImageStore, UUID(sid)), copy
    return None


def template_copy(
    ledger: Ledger, template_id: UUID, pool_id: UUID
) -> tuple[int, DataObjectInStore | None]:
    """The live copy of a template on a pool with its generation, or the
    generation a new copy takes: storage cleanup leaves a copy Destroyed for
    good, so the next one gets the next derived id."""
    generation = 0
    while True:
        copy = ledger.find(DataObjectInStore, copy_id(template_id, pool_id, generation))
        if copy is None or copy.state not in GONE:
            return generation, copy
        generation += 1


def backup_of(ledger: Ledger, snapshot: Snapshot) -> DataObjectInStore | None:
    """The snapshot's copy on an image store (`snapshot_store_ref`, Image)."""
    volume = ledger.load(Volume, snapshot.volume_id)
    zone = ledger.zone(volume.zone_id)
    for sid in zone.stores if zone else []:
        copy = ledger.find(DataObjectInStore, copy_id(snapshot.id, UUID(sid)))
        if copy is not None:
            return copy
    return None


def delta_parent(ledger: Ledger, snapshot: Snapshot) -> DataObjectInStore | None:
    """The previous snapshot's backup, while the chain is shorter than
    `snapshot.delta.max`; None means a full backup, which is every backup of a
    pool whose provider snapshots natively (CloudStack backs RBD snapshots up
    whole: the snapshot itself stays on the pool)."""
    if snapshot.prev_snapshot_id is None:
        return None
    volume = ledger.load(Volume, snapshot.volume_id)
    pool_id = volume.pool_id or volume.last_pool_id
    if pool_id is not None and ledger.peek(StoragePool, pool_id).can(
        "native_snapshots"
    ):
        return None
    prev = ledger.find(Snapshot, snapshot.prev_snapshot_id)
    if prev is None or prev.state is not SnapshotState.BackedUp:
        return None
    if prev.depth + 1 > int(ledger.settings().get("snapshot.delta.max")):
        return None
    parent = backup_of(ledger, prev)
    if parent is None or not parent.is_ready or parent.install_path is None:
        return None
    return parent


def pool_of(ledger: Ledger, volume: Volume) -> StoragePool | None:
    """The pool a volume is on, loaded to be changed; None for one never placed."""
    return ledger.load(StoragePool, volume.pool_id) if volume.pool_id else None


def find_claim(ledger: Ledger, kind: str, name: str) -> NameClaim | None:
    return ledger.find(NameClaim, claim_id(kind, name))


def common_host(ledger: Ledger, a: StoragePool, b: StoragePool) -> bool:
    """Whether an Up host reaches both pools (a direct copy), or the copy must be
    staged through the image store."""
    hosts = pool_hosts(a, ledger.zone(a.zone_id)) & pool_hosts(
        b, ledger.zone(b.zone_id)
    )
    return any(ledger.load(Host, h).state is HostState.Up for h in hosts)


def view_of(
    ledger: Ledger,
    pool: StoragePool,
    template_id: UUID | None,
    factor: float | None = None,
) -> PoolView:
    """A pool as the allocator sees it, from its own aggregate (the last word on a
    pool the read side nominated)."""
    copy = template_copy(ledger, template_id, pool.id)[1] if template_id else None
    # a copy holds its reservation while it is being made or is ready
    has_template = copy is not None and copy.held_on(pool.id) is not None
    if factor is None:
        factor = float(ledger.settings().get("storage.overprovisioning.factor"))
    return PoolView(
        id=str(pool.id),
        name=pool.name,
        scope=pool.scope,
        zone_id=pool.zone_id,
        cluster_id=pool.cluster_id,
        host_id=str(pool.host_id) if pool.host_id else None,
        status=pool.status,
        tags=tuple(pool.tags),
        capacity=pool.capacity,
        allocated=pool.allocated,
        factor=pool.factor(factor),
        volumes=pool.objects,
        has_template=has_template,
        used=pool.used,
    )


class AggregateCandidates:
    """`ports.Candidates` for a ledger without a read side (an in-memory ledger):
    every pool read from its aggregate, judged one by one; no storage cleanup."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def refresh(self) -> None:
        """The aggregates are always current."""

    def pools(self, zone_id: str, template_id: UUID | None) -> list[PoolView]:
        zone = self.ledger.zone(zone_id)
        if zone is None:
            return []
        return [
            view_of(self.ledger, self.ledger.load(StoragePool, UUID(pid)), template_id)
            for pid in zone.pools
        ]

    def suitable(
        self,
        request: Request,
        template_id: UUID | None,
        threshold: float,
        used_threshold: float,
        algorithm: str,
        seed: int,
    ) -> tuple[list[Suitable], list[PoolView]] | None:
        return None

    def pool_names(self, zone_id: str, pool_ids: list[str]) -> dict[str, str]:
        return {i: self.ledger.peek(StoragePool, UUID(i)).name for i in pool_ids}

    def unused_template_copies(
        self, zone_id: str, template_id: UUID | None
    ) -> dict[str, list[UUID]]:
        return {}

    def ids(self, kind: str, prefix: str) -> list[tuple[str, str | None]]:
        return []  # the log has no index of ids: only full ids and names resolve
