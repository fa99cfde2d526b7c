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

from ledger.commands import ImageStoreTO, PrimaryDataStoreTO
from ledger.errors import NotFound
from ledger.host import Host
from ledger.image_store import ImageStore
from ledger.pool import StoragePool
from ledger.reach import pool_hosts, zone_hosts
from ledger.service import Ledger
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


def _zone(ledger: Ledger, name: str) -> Zone | None:
    try:
        return ledger.peek(Zone, zone_id_for(name))
    except NotFound:
        return None


def _reach(ledger: Ledger, store: PrimaryDataStoreTO | ImageStoreTO) -> set[UUID]:
    # Every aggregate here is only read: `peek` spares copying them from the cache.
    if isinstance(store, ImageStoreTO):
        image = ledger.peek(ImageStore, UUID(store.uuid))
        return zone_hosts(_zone(ledger, image.zone_id))
    pool = ledger.peek(StoragePool, UUID(store.uuid))
    return pool_hosts(pool, _zone(ledger, pool.zone_id))


def select(ledger: Ledger, command: Any) -> Choice:
    stores = stores_of(command)
    if not stores:
        return Choice(None, f"{NO_ENDPOINT}: the command names no data store")
    try:
        candidates = set.intersection(*(_reach(ledger, s) for s in stores))
    except NotFound as exc:
        return Choice(None, f"{NO_ENDPOINT}: {exc}")
    if not candidates:
        names = ", ".join(s.name for s in stores)
        return Choice(None, f"{NO_ENDPOINT}: no host reaches all of {names}")
    hosts = sorted((ledger.peek(Host, h) for h in candidates), key=lambda h: h.name)
    up = [h for h in hosts if h.state is HostState.Up]
    if not up:
        return Choice(None, f"{NO_ENDPOINT}: no Up host reaches {stores[0].name}")
    vm_id = getattr(command, "vmId", None)
    if vm_id:
        try:
            vm: VirtualMachine | None = ledger.peek(VirtualMachine, UUID(vm_id))
        except NotFound:
            vm = None
        for host in up:
            if vm is not None and host.id == vm.host_id:
                return Choice(host, "the VM's host")
    return Choice(up[0], "first Up host that reaches every store")
