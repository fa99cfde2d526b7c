"""The infrastructure an operator registers: hosts, primary pools, image stores, and
the global configuration.

CloudStack's `addHost`, `createStoragePool`, `updateStoragePool` (enable/disable),
`enableStorageMaintenance`/`cancelStorageMaintenance`, `deleteStoragePool`,
`addImageStore` and `updateConfiguration`. Each registration claims its name and adds
the object to its zone's inventory in the same save; a zone is opened by the first
object registered in it.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate

from ledger.aggregate import Ctx
from ledger.app import Ledger
from ledger.config import CONFIG_ID, Config
from ledger.errors import IllegalTransition, InvalidInput, NotFound
from ledger.host import Host
from ledger.image_store import ImageStore
from ledger.inventory import find_claim
from ledger.names import NameClaim, claim_id
from ledger.pool import StoragePool
from ledger.usecases.claims import claim_name
from ledger.values import HostState, Hypervisor, PoolStatus, PoolType, Scope, StoreRole
from ledger.zone import Zone


def zone_for_update(ledger: Ledger, ctx: Ctx, name: str) -> Zone:
    """The zone to add to, opened when this is its first object."""
    if not name or any(c in name for c in "\0\n\r/"):
        raise InvalidInput("zone", name, "a plain name")
    return ledger.zone(name) or Zone.open(ctx, name)


def register_host(
    ledger: Ledger, ctx: Ctx, name: str, zone: str, cluster: str, hypervisor: Hypervisor
) -> Host:
    if not cluster:
        raise InvalidInput("cluster", cluster, "a host belongs to a cluster")

    def decide() -> list[Aggregate]:
        zone_agg = zone_for_update(ledger, ctx, zone)
        host = Host.register(ctx, name, zone, cluster, hypervisor)
        zone_agg.add_host(ctx, host.id, cluster)
        return [host, claim_name(ledger, ctx, "host", name, host.id), zone_agg]

    return ledger.atomic(decide, what=f"host add {name}")[0]  # type: ignore[return-value]


def set_host_state(ledger: Ledger, ctx: Ctx, ref: str, state: HostState) -> Host:
    def decide() -> list[Aggregate]:
        host = ledger.resolve(Host, ref)
        host.set_state(ctx, state)
        return [host]

    return ledger.atomic(decide, what=f"host {ref}")[0]  # type: ignore[return-value]


def register_pool(
    ledger: Ledger,
    ctx: Ctx,
    *,
    name: str,
    zone: str,
    path: str,
    capacity: int,
    scope: Scope,
    pool_type: PoolType,
    cluster: str | None = None,
    host: str | None = None,
    tags: list[str] | None = None,
    overprovision: float | None = None,
    credentials: str | None = None,
    capabilities: dict[str, bool] | None = None,
    place: str | None = None,
) -> StoragePool:
    """CloudStack's createStoragePool. `path` is the location the pool's provider
    accepted (a directory, or a URL such as `rbd://...`); `credentials` names the
    secrets the executors resolve, and `capabilities` are what the provider
    declared (recorded, so decisions that depend on them are explained).

    `place` is where on the backend the pool keeps its objects, as the provider
    named it (`Location.place`: a directory with its symlinks resolved, a Ceph
    cluster's fsid and pool); None when its objects can never meet another
    pool's. Two pools on one place would be one set of objects under two names: a
    migration from one to the other finds the volume already there and deleting
    the source deletes the only copy. So a place held by a pool that is not
    Removed is refused (`_claim_place`)."""
    _check_reference(credentials)
    if capacity <= 0:
        raise InvalidInput("capacity", str(capacity), "must be positive")
    if overprovision is not None and not 0 < overprovision <= 100:
        raise InvalidInput("overprovision", str(overprovision), "a factor in (0, 100]")
    if not path or "\0" in path or "\n" in path:
        raise InvalidInput("path", path, "a directory path or a URL")
    clean_tags = _tags(tags)

    def decide() -> list[Aggregate | None]:
        zone_agg = ledger.zone(zone)
        host_id: UUID | None = None
        cluster_id: str | None = None
        if scope is Scope.HOST:
            if not host:
                raise InvalidInput("host", "", "a host-scope pool needs --host")
            host_agg = ledger.resolve(Host, host)
            if host_agg.zone_id != zone:
                raise InvalidInput("host", host, f"not in zone {zone}")
            host_id, cluster_id = host_agg.id, host_agg.cluster_id
        elif scope is Scope.CLUSTER:
            if not cluster:
                raise InvalidInput(
                    "cluster", "", "a cluster-scope pool needs --cluster"
                )
            if zone_agg is None or cluster not in zone_agg.clusters:
                raise NotFound("cluster", f"{cluster} (no host of zone {zone} in it)")
            cluster_id = cluster
        elif zone_agg is None:
            raise NotFound("zone", f"{zone} (no host registered in it)")
        assert zone_agg is not None
        pool = StoragePool.register(
            ctx,
            name=name,
            zone_id=zone,
            cluster_id=cluster_id,
            host_id=host_id,
            scope=scope,
            pool_type=pool_type,
            path=path,
            capacity=capacity,
            overprovision=overprovision,
            tags=clean_tags,
            credentials=credentials,
            capabilities=dict(capabilities or {}),
        )
        zone_agg.add_pool(ctx, pool.id)
        held = None if place is None else _claim_place(ledger, ctx, place, pool)
        name_claim = claim_name(ledger, ctx, "pool", name, pool.id)
        return [pool, name_claim, zone_agg, held]

    return ledger.atomic(decide, what=f"pool add {name}")[0]  # type: ignore[return-value]


#: The claim kind of a backend place (`register_pool`'s `place`).
PLACE = "pool location"


def _claim_place(ledger: Ledger, ctx: Ctx, place: str, pool: StoragePool) -> NameClaim:
    """The claim on `place` for `pool`: new, or taken over from a pool that is
    Removed. `delete_pool` does not release it (the pool records no place): a
    Removed pool holds nothing, so its place is free whatever the claim says.
    Saved with the pool, so two `pool add` on one place at once collide in the
    event store. A pool added before places were claimed holds no claim, so a
    second pool on its place is not caught here."""
    if not place or any(not c.isprintable() for c in place):
        raise InvalidInput("location", pool.path, "the provider named no place")
    existing = ledger.find(NameClaim, claim_id(PLACE, place))
    if existing is None:
        return NameClaim.claim(ctx, PLACE, place, pool.id)
    holder = ledger.find(StoragePool, existing.object_id)
    if holder is not None and holder.status is not PoolStatus.Removed:
        raise InvalidInput(
            "location",
            pool.path,
            f"pool {holder.name} is on the same backend location ({place}); "
            "two pools on one location would delete each other's data",
        )
    existing.reclaim(ctx, pool.id)
    return existing


def change_pool_status(ledger: Ledger, ctx: Ctx, ref: str, trigger: str) -> StoragePool:
    def decide() -> list[Aggregate]:
        pool = ledger.resolve(StoragePool, ref)
        pool.change_status(ctx, trigger)
        return [pool]

    return ledger.atomic(decide, what=f"pool {ref}")[0]  # type: ignore[return-value]


def record_pool_stats(
    ledger: Ledger, ctx: Ctx, pool_id: UUID, used: int, host: str
) -> StoragePool:
    """What a host measured of a pool's physical use, on record for the
    allocators' `pool.storage.capacity.disablethreshold` check."""

    def decide() -> list[Aggregate]:
        pool = ledger.load(StoragePool, pool_id)
        pool.report_stats(ctx, used, host)
        return [pool]

    return ledger.atomic(decide, what="pool stats")[0]  # type: ignore[return-value]


def pool_maintenance(
    ledger: Ledger, ctx: Ctx, ref: str, *, enable: bool
) -> StoragePool:
    """CloudStack's PrepareForMaintenance then Maintenance; or cancel it.

    storctl's pools hold no running VMs to stop, so preparation completes in the
    same save; no allocation lands on the pool from the first event on."""

    def decide() -> list[Aggregate]:
        pool = ledger.resolve(StoragePool, ref)
        if enable:
            pool.change_status(ctx, "PrepareForMaintenance")
            pool.change_status(ctx, "MaintenanceReached")
        else:
            pool.change_status(ctx, "CancelMaintenance")
        return [pool]

    return ledger.atomic(decide, what=f"pool {ref}")[0]  # type: ignore[return-value]


def delete_pool(ledger: Ledger, ctx: Ctx, ref: str) -> StoragePool:
    """Only a pool in Maintenance that holds nothing can go (CloudStack's rule)."""

    def decide() -> list[Aggregate | None]:
        pool = ledger.resolve(StoragePool, ref)
        if pool.objects:
            raise IllegalTransition(
                "StoragePool",
                str(pool.id),
                pool.status.name,
                "Remove",
                why=f"{pool.objects} volumes or template copies on it",
                name=pool.name,
            )
        pool.change_status(ctx, "Remove")
        zone_agg = ledger.zone(pool.zone_id)
        claim = find_claim(ledger, "pool", pool.name)
        if zone_agg is not None and str(pool.id) in zone_agg.pools:
            zone_agg.remove_pool(ctx, pool.id)
        if claim is not None:
            claim.release(ctx)
        return [pool, zone_agg, claim]

    return ledger.atomic(decide, what=f"pool {ref}")[0]  # type: ignore[return-value]


def register_store(
    ledger: Ledger,
    ctx: Ctx,
    name: str,
    zone: str,
    path: str,
    provider: str = "NFS",
    *,
    role: StoreRole = StoreRole.Image,
    credentials: str | None = None,
    capabilities: dict[str, bool] | None = None,
) -> ImageStore:
    """CloudStack's addImageStore, or (`role=ImageCache`) its secondary staging
    store: where an S3 or Swift store's data passes on its way to a pool."""
    _check_reference(credentials)
    if not path or "\0" in path or "\n" in path:
        raise InvalidInput("path", path, "a directory path or a URL")
    if role is StoreRole.Primary:
        raise InvalidInput("role", role.value, "an image store is Image or ImageCache")

    def decide() -> list[Aggregate]:
        zone_agg = zone_for_update(ledger, ctx, zone)
        store = ImageStore.register(
            ctx,
            name,
            zone,
            path,
            provider,
            role=role,
            credentials=credentials,
            capabilities=capabilities,
        )
        if role is StoreRole.ImageCache:
            zone_agg.add_cache(ctx, store.id)
        else:
            zone_agg.add_store(ctx, store.id)
        return [store, claim_name(ledger, ctx, "store", name, store.id), zone_agg]

    return ledger.atomic(decide, what=f"store add {name}")[0]  # type: ignore[return-value]


def set_config(ledger: Ledger, ctx: Ctx, key: str, value: str) -> Config:
    def decide() -> list[Aggregate]:
        config = ledger.find(Config, CONFIG_ID) or Config.start(ctx)
        config.set(ctx, key, value)
        return [config]

    return ledger.atomic(decide, what=f"config {key}")[0]  # type: ignore[return-value]


def _check_reference(credentials: str | None) -> None:
    """A credentials reference is a name (`lab-ceph`), never the secret itself:
    it goes into events, tables and messages."""
    if credentials is None:
        return
    if not credentials or not all(c.isalnum() or c in "-_." for c in credentials):
        raise InvalidInput(
            "credentials", "(not shown)", "a reference name: letters, digits, - _ ."
        )


def _tags(tags: list[str] | None) -> list[str]:
    out: list[str] = []
    for tag in tags or []:
        tag = tag.strip()
        if not tag:
            continue
        if not all(c.isalnum() or c in "-_." for c in tag):
            raise InvalidInput("tag", tag, "letters, digits, - _ . only")
        if tag not in out:
            out.append(tag)
    return out
