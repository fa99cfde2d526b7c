"""The ledger service: `Ledger`, the Application storctl's CLI and followers use.

Registration of hosts, pools, image stores and configuration lives here; the
operations on templates, VMs and volumes in `operations.py`; loading and atomic saving
in `core.py`. Every command checks what an operator can get wrong before it writes
anything, and saves what it changed in one atomic save.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate

from ledger.aggregate import Ctx
from ledger.config import CONFIG_ID, Config
from ledger.errors import (
    IllegalTransition,
    InvalidInput,
    NotFound,
    StorctlError,
)
from ledger.host import Host
from ledger.image_store import ImageStore
from ledger.migration import MigrationOperations
from ledger.names import NameClaim, claim_id
from ledger.pool import StoragePool
from ledger.simulator_plan import SimulatorPlan, plan_id
from ledger.values import (
    HostState,
    Hypervisor,
    PoolType,
    Scope,
)
from ledger.zone import Zone


class Ledger(MigrationOperations):
    """storctl's write side: registration here, operations in `Operations`."""

    def register_host(
        self, ctx: Ctx, name: str, zone: str, cluster: str, hypervisor: Hypervisor
    ) -> Host:
        if not cluster:
            raise InvalidInput("cluster", cluster, "a host belongs to a cluster")

        def decide() -> list[Aggregate]:
            zone_agg = self._zone_for_update(ctx, zone)
            host = Host.register(ctx, name, zone, cluster, hypervisor)
            zone_agg.add_host(ctx, host.id, cluster)
            return [host, self._claim(ctx, "host", name, host.id), zone_agg]

        return self.atomic(decide, what=f"host add {name}")[0]  # type: ignore[return-value]

    def set_host_state(self, ctx: Ctx, ref: str, state: HostState) -> Host:
        def decide() -> list[Aggregate]:
            host = self.resolve(Host, ref)
            host.set_state(ctx, state)
            return [host]

        return self.atomic(decide, what=f"host {ref}")[0]  # type: ignore[return-value]

    def register_pool(
        self,
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
    ) -> StoragePool:
        if capacity <= 0:
            raise InvalidInput("capacity", str(capacity), "must be positive")
        if overprovision is not None and not 0 < overprovision <= 100:
            raise InvalidInput(
                "overprovision", str(overprovision), "a factor in (0, 100]"
            )
        if not path or "\0" in path or "\n" in path:
            raise InvalidInput("path", path, "a directory path")
        clean_tags = _tags(tags)

        def decide() -> list[Aggregate]:
            zone_agg = self.zone(zone)
            host_id: UUID | None = None
            cluster_id: str | None = None
            if scope is Scope.HOST:
                if not host:
                    raise InvalidInput("host", "", "a host-scope pool needs --host")
                host_agg = self.resolve(Host, host)
                if host_agg.zone_id != zone:
                    raise InvalidInput("host", host, f"not in zone {zone}")
                host_id, cluster_id = host_agg.id, host_agg.cluster_id
            elif scope is Scope.CLUSTER:
                if not cluster:
                    raise InvalidInput(
                        "cluster", "", "a cluster-scope pool needs --cluster"
                    )
                if zone_agg is None or cluster not in zone_agg.clusters:
                    raise NotFound(
                        "cluster", f"{cluster} (no host of zone {zone} in it)"
                    )
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
            )
            zone_agg.add_pool(ctx, pool.id)
            return [pool, self._claim(ctx, "pool", name, pool.id), zone_agg]

        return self.atomic(decide, what=f"pool add {name}")[0]  # type: ignore[return-value]

    def change_pool_status(self, ctx: Ctx, ref: str, trigger: str) -> StoragePool:
        def decide() -> list[Aggregate]:
            pool = self.resolve(StoragePool, ref)
            pool.change_status(ctx, trigger)
            return [pool]

        return self.atomic(decide, what=f"pool {ref}")[0]  # type: ignore[return-value]

    def record_pool_stats(
        self, ctx: Ctx, pool_id: UUID, used: int, host: str
    ) -> StoragePool:
        """What a host measured of a pool's physical use, on record for the
        allocators' `pool.storage.capacity.disablethreshold` check."""

        def decide() -> list[Aggregate]:
            pool = self.load(StoragePool, pool_id)
            pool.report_stats(ctx, used, host)
            return [pool]

        return self.atomic(decide, what="pool stats")[0]  # type: ignore[return-value]

    def pool_maintenance(self, ctx: Ctx, ref: str, *, enable: bool) -> StoragePool:
        """CloudStack's PrepareForMaintenance then Maintenance; or cancel it.

        storctl's pools hold no running VMs to stop, so preparation completes in the
        same save; no allocation lands on the pool from the first event on."""

        def decide() -> list[Aggregate]:
            pool = self.resolve(StoragePool, ref)
            if enable:
                pool.change_status(ctx, "PrepareForMaintenance")
                pool.change_status(ctx, "MaintenanceReached")
            else:
                pool.change_status(ctx, "CancelMaintenance")
            return [pool]

        return self.atomic(decide, what=f"pool {ref}")[0]  # type: ignore[return-value]

    def delete_pool(self, ctx: Ctx, ref: str) -> StoragePool:
        """Only a pool in Maintenance that holds nothing can go (CloudStack's rule)."""

        def decide() -> list[Aggregate | None]:
            pool = self.resolve(StoragePool, ref)
            if pool.objects:
                raise IllegalTransition(
                    "StoragePool",
                    str(pool.id),
                    pool.status.name,
                    "Remove",
                    why=f"{pool.objects} volumes or template copies on it",
                )
            pool.change_status(ctx, "Remove")
            zone_agg = self.zone(pool.zone_id)
            claim = self.find(NameClaim, claim_id("pool", pool.name))
            if zone_agg is not None and str(pool.id) in zone_agg.pools:
                zone_agg.remove_pool(ctx, pool.id)
            if claim is not None:
                claim.release(ctx)
            return [pool, zone_agg, claim]

        return self.atomic(decide, what=f"pool {ref}")[0]  # type: ignore[return-value]

    def register_store(
        self, ctx: Ctx, name: str, zone: str, path: str, provider: str = "NFS"
    ) -> ImageStore:
        if not path or "\0" in path or "\n" in path:
            raise InvalidInput("path", path, "a directory path")

        def decide() -> list[Aggregate]:
            zone_agg = self._zone_for_update(ctx, zone)
            store = ImageStore.register(ctx, name, zone, path, provider)
            zone_agg.add_store(ctx, store.id)
            return [store, self._claim(ctx, "store", name, store.id), zone_agg]

        return self.atomic(decide, what=f"store add {name}")[0]  # type: ignore[return-value]

    def configure_simulator(
        self,
        ctx: Ctx,
        host_ref: str,
        command: str,
        mode: str,
        *,
        details: str = "",
        delay: float = 0.0,
        count: int | None = None,
    ) -> SimulatorPlan:
        def decide() -> list[Aggregate]:
            host = self.resolve(Host, host_ref)
            if host.hypervisor is not Hypervisor.Simulator:
                raise InvalidInput("host", host_ref, "is not a simulator host")
            plan = self.find(SimulatorPlan, plan_id(host.id)) or SimulatorPlan.start(
                ctx, host.id
            )
            plan.configure(ctx, command, mode, details, delay, count)
            return [plan]

        return self.atomic(decide, what="simulator configure")[0]  # type: ignore[return-value]

    def clear_simulator(self, ctx: Ctx, host_ref: str | None) -> list[str]:
        """Clear the plans of one simulator host, or of all; the names cleared."""
        cleared: list[str] = []

        def decide() -> list[Aggregate]:
            cleared.clear()
            if host_ref is not None:
                hosts = [self.resolve(Host, host_ref)]
            else:
                hosts = [
                    self.load(Host, UUID(h))
                    for zone_id in self.zone_names()
                    for h in self.load(Zone, zone_id).hosts
                ]
            out: list[Aggregate] = []
            for host in hosts:
                plan = self.find(SimulatorPlan, plan_id(host.id))
                if plan is not None and plan.faults:
                    plan.clear(ctx)
                    out.append(plan)
                    cleared.append(host.name)
            return out

        self.atomic(decide, what="simulator clear")
        return cleared

    def zone_names(self) -> list[UUID]:
        """Every zone's id, from the log (zones are few and never removed)."""
        topic = "storctl.Zone.Opened"
        ids: list[UUID] = []
        start: int | None = None
        while True:
            notes = self.recorder.select_notifications(
                start=start, limit=1000, topics=[topic], inclusive_of_start=False
            )
            if not notes:
                return ids
            ids += [n.originator_id for n in notes]  # type: ignore[misc]
            start = notes[-1].id

    def set_config(self, ctx: Ctx, key: str, value: str) -> Config:
        def decide() -> list[Aggregate]:
            config = self.find(Config, CONFIG_ID) or Config.start(ctx)
            config.set(ctx, key, value)
            return [config]

        return self.atomic(decide, what=f"config {key}")[0]  # type: ignore[return-value]


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


def is_refusal(exc: BaseException) -> bool:
    return isinstance(exc, StorctlError)
