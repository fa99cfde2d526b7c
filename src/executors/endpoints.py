"""Endpoint selection: which host runs a command (CloudStack's `EndPointSelector`).

A host that is Up and reaches every store the command names: a host-scope pool is
reached by its host, a cluster-scope pool by the hosts of its cluster, a zone-wide
pool and an image store by every host of the zone. Among those, the first by name, so
that every worker computes the same answer and a per-host worker knows its commands.
No endpoint is not a crash: the dispatcher answers `result=false` with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from ledger.app import Ledger
from ledger.commands import ImageStoreTO, PrimaryDataStoreTO
from ledger.errors import NotFound
from ledger.host import Host
from ledger.image_store import ImageStore
from ledger.pool import StoragePool
from ledger.reach import pool_hosts, zone_hosts
from ledger.values import HostState
from ledger.vm import VirtualMachine
from ledger.zone import Zone, zone_id_for

NO_ENDPOINT = "No remote endpoint to send command"


@dataclass(frozen=True)
class Choice:
    host: Host | None
    reason: str


def stores_of(command: Any) -> list[PrimaryDataStoreTO | ImageStoreTO]:
    found: list[Any] = []
    for attr in ("data", "srcTO", "destTO", "store", "disk", "volume"):
        value = getattr(command, attr, None)
        if value is None:
            continue
        if attr == "disk":
            value = value.data
        store = value if attr == "store" else getattr(value, "dataStore", None)
        if store is not None:
            found.append(store)
    return found


def select(ledger: Ledger, command: Any) -> Choice:
    stores = stores_of(command)
    if not stores:
        return Choice(None, f"{NO_ENDPOINT}: the command names no data store")
    vm_id = getattr(command, "vmId", None)
    vm_ids = [UUID(vm_id)] if vm_id else []
    # Every aggregate here is only read (not copied from the cache), and read in
    # two queries: the stores, the VM and their zones as the cache knows them,
    # then the hosts; a zone the cache did not know costs one more.
    ids = [UUID(s.uuid) for s in stores]
    hinted = [ledger.cached(i) for i in ids]
    zone_ids = {
        zone_id_for(h.zone_id)
        for h in hinted
        if isinstance(h, ImageStore | StoragePool)
    }
    found = ledger.peek_many([*ids, *vm_ids, *zone_ids])
    try:
        objs = [_store(found, s, i) for s, i in zip(stores, ids, strict=True)]
    except NotFound as exc:
        return Choice(None, f"{NO_ENDPOINT}: {exc}")
    missing = {zone_id_for(o.zone_id) for o in objs} - zone_ids
    if missing:
        found.update(ledger.peek_many(missing))
    zones = {z.id: z for z in found.values() if isinstance(z, Zone)}
    candidates = set.intersection(*(_reach(o, zones) for o in objs))
    if not candidates:
        names = ", ".join(s.name for s in stores)
        return Choice(None, f"{NO_ENDPOINT}: no host reaches all of {names}")
    peeked = ledger.peek_many(candidates).values()
    hosts = sorted((h for h in peeked if isinstance(h, Host)), key=lambda h: h.name)
    up = [h for h in hosts if h.state is HostState.Up]
    if not up:
        return Choice(None, f"{NO_ENDPOINT}: no Up host reaches {stores[0].name}")
    if vm_ids:
        vm = found.get(vm_ids[0])
        for host in up:
            if isinstance(vm, VirtualMachine) and host.id == vm.host_id:
                return Choice(host, "the VM's host")
    return Choice(up[0], "first Up host that reaches every store")


def _store(
    found: dict[UUID, Any], store: PrimaryDataStoreTO | ImageStoreTO, obj_id: UUID
) -> ImageStore | StoragePool:
    obj = found.get(obj_id)
    if isinstance(store, ImageStoreTO):
        if not isinstance(obj, ImageStore):
            raise NotFound("store", str(obj_id))
        return obj
    if not isinstance(obj, StoragePool):
        raise NotFound("pool", str(obj_id))
    return obj


def _reach(obj: ImageStore | StoragePool, zones: dict[UUID, Zone]) -> set[UUID]:
    zone = zones.get(zone_id_for(obj.zone_id))
    if isinstance(obj, ImageStore):
        return zone_hosts(zone)
    return pool_hosts(obj, zone)
