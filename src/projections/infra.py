"""Infrastructure tables: `host`, `storage_pool` (+ `storage_pool_tags`),
`image_store` and `configuration`.

CloudStack keeps these as `host`, `storage_pool`, `storage_pool_tags`, `image_store`
and `configuration`. `storage_pool.allocated_bytes` follows the pool's own
`CapacityReserved` / `CapacityReleased` events; `overprovision_factor` is the factor
in force: the pool's own (`overprovision_set` = 1) or, for the pool types that
over-provision, `storage.overprovisioning.factor` from `configuration`, updated when
that key changes. `id` columns are the notification position of the registering
event: integer, stable under a rebuild.
"""

from __future__ import annotations

import json

from ledger.config import DEFAULTS, Config
from ledger.host import Host
from ledger.image_store import ImageStore
from ledger.pool import OVERPROVISIONING_TYPES, StoragePool
from ledger.values import PoolStatus
from projections.db import Counter, Db, iso, text, to_json, uuid_text
from projections.routing import project

FACTOR_KEY = "storage.overprovisioning.factor"
#: summed per batch: one UPDATE per pool, not one per reservation (see `Db.add`)
ALLOCATED: Counter = ("storage_pool", "uuid", "allocated_bytes")
_OVERPROVISIONING = tuple(t.value for t in OVERPROVISIONING_TYPES)


# ---------------------------------------------------------------- host


@project.register
def _host_registered(event: Host.Registered, db: Db) -> None:
    db.insert(
        "host",
        {
            "id": db.position,
            "uuid": str(event.originator_id),
            "name": event.name,
            "data_center_id": event.zone_id,
            "cluster_id": event.cluster_id,
            "hypervisor_type": text(event.hypervisor),
            "status": "Up",
            "created": iso(event.timestamp),
        },
        key="uuid",
    )


@project.register
def _host_state(event: Host.StateChanged, db: Db) -> None:
    db.update("host", "uuid", str(event.originator_id), status=text(event.to_state))


# ---------------------------------------------------------------- storage_pool


def configured_factor(db: Db) -> float:
    value = db.scalar("SELECT value FROM configuration WHERE name = ?", [FACTOR_KEY])
    return (
        float(json.loads(value))
        if value is not None
        else float(DEFAULTS[FACTOR_KEY][0])
    )


@project.register
def _pool_registered(event: StoragePool.Registered, db: Db) -> None:
    pool_id = str(event.originator_id)
    if event.overprovision is not None:
        factor, explicit = float(event.overprovision), 1
    elif event.pool_type in OVERPROVISIONING_TYPES:
        factor, explicit = configured_factor(db), 0
    else:
        factor, explicit = 1.0, 0
    db.insert(
        "storage_pool",
        {
            "id": db.position,
            "uuid": pool_id,
            "name": event.name,
            "pool_type": text(event.pool_type),
            "scope": text(event.scope),
            "data_center_id": event.zone_id,
            "cluster_id": event.cluster_id,
            "host_id": text(event.host_id),
            "path": event.path,
            "capacity_bytes": event.capacity,
            "used_bytes": 0,
            "allocated_bytes": 0,
            "overprovision_factor": factor,
            "overprovision_set": explicit,
            "status": PoolStatus.Up.value,
            "created": iso(event.timestamp),
            "removed": None,
        },
        key="uuid",
    )
    db.execute("DELETE FROM storage_pool_tags WHERE pool_id = ?", [pool_id])
    db.executemany(
        "INSERT INTO storage_pool_tags (pool_id, tag) VALUES (?, ?)",
        [(pool_id, tag) for tag in dict.fromkeys(event.tags)],
    )


@project.register
def _pool_status(event: StoragePool.StatusChanged, db: Db) -> None:
    removed = iso(event.timestamp) if event.to_status is PoolStatus.Removed else None
    db.update(
        "storage_pool",
        "uuid",
        str(event.originator_id),
        status=text(event.to_status),
        removed=removed,
    )


@project.register
def _pool_stats(event: StoragePool.StatsReported, db: Db) -> None:
    db.update("storage_pool", "uuid", str(event.originator_id), used_bytes=event.used)


@project.register
def _pool_reserved(event: StoragePool.CapacityReserved, db: Db) -> None:
    db.add(ALLOCATED, uuid_text(event.originator_id), event.size)


@project.register
def _pool_released(event: StoragePool.CapacityReleased, db: Db) -> None:
    db.add(ALLOCATED, uuid_text(event.originator_id), -event.size)


# ---------------------------------------------------------------- image_store


@project.register
def _store_registered(event: ImageStore.Registered, db: Db) -> None:
    db.insert(
        "image_store",
        {
            "id": db.position,
            "uuid": str(event.originator_id),
            "name": event.name,
            "data_center_id": event.zone_id,
            "protocol": event.provider.lower(),
            "url": event.path,
            "image_provider_name": event.provider,
            "role": event.role.value,
            "readonly": 0,
            "created": iso(event.timestamp),
        },
        key="uuid",
    )


@project.register
def _store_readonly(event: ImageStore.ReadonlyChanged, db: Db) -> None:
    db.update(
        "image_store", "uuid", str(event.originator_id), readonly=int(event.readonly)
    )


# ---------------------------------------------------------------- configuration


@project.register
def _config_set(event: Config.ValueSet, db: Db) -> None:
    db.insert(
        "configuration",
        {
            "name": event.key,
            "value": to_json(event.value),
            "updated": iso(event.timestamp),
            "actor": event.actor,
        },
        key="name",
    )
    if event.key == FACTOR_KEY:
        marks = ", ".join("?" for _ in _OVERPROVISIONING)
        db.execute(
            "UPDATE storage_pool SET overprovision_factor = ? "
            f"WHERE overprovision_set = 0 AND pool_type IN ({marks})",
            [float(event.value), *_OVERPROVISIONING],
        )
