"""The ledger service: the one eventsourcing Application, and its domain commands.

Every command loads the aggregates it touches, lets them decide (state machines,
capacity), and saves everything it changed in one atomic save; a version conflict
(another writer got there first) reloads and decides again, so callers never see a
race as an error. One Application holds every aggregate, so the whole storage history
is one notification log, and followers (workflows, dispatcher, projections) keep their
tracking rows in the same database (SQLite has no per-application table names).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import (
    AggregateNotFoundError,
    Application,
    ProcessingEvent,
)
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, JSONTranscoder, Tracking

from ledger.base import Ctx
from ledger.config import CONFIG_ID, Config, Settings
from ledger.copies import DataObjectInStore
from ledger.errors import (
    Conflict,
    Duplicate,
    IllegalTransition,
    InvalidInput,
    NotFound,
    StorctlError,
)
from ledger.host import Host
from ledger.image_store import ImageStore
from ledger.job import Job
from ledger.names import NameClaim, claim_id
from ledger.operations import Operations
from ledger.pool import StoragePool
from ledger.simulator import SimulatorPlan, plan_id
from ledger.snapshot import Snapshot
from ledger.template import Template
from ledger.values import (
    HostState,
    Hypervisor,
    PoolType,
    Scope,
    transcodings,
)
from ledger.vm import VirtualMachine
from ledger.volume import Volume
from ledger.zone import Zone, zone_id_for

A = TypeVar("A", bound=Aggregate)

#: How many times a save that lost a race is decided again before giving up.
RETRIES = 20

KIND_NAMES: dict[type[Aggregate], str] = {
    Host: "host",
    StoragePool: "pool",
    ImageStore: "store",
    Template: "template",
    VirtualMachine: "vm",
    Volume: "volume",
    Snapshot: "snapshot",
    Job: "job",
    DataObjectInStore: "copy",
    Zone: "zone",
    Config: "config",
    SimulatorPlan: "simulator plan",
}


class Ledger(Operations, Application[UUID]):
    """storctl's write side. Snapshots keep long-lived aggregates quick to load."""

    name = "storctl"
    snapshotting_intervals = {
        StoragePool: 100,
        Zone: 100,
        Config: 50,
        Volume: 100,
        DataObjectInStore: 100,
        Template: 100,
    }

    def construct_recorder(self) -> Any:
        # A process recorder: followers write their tracking row in the same
        # transaction as the events they produce (exactly-once state changes).
        return self.factory.process_recorder()

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        for transcoding in transcodings():
            transcoder.register(transcoding)

    # ------------------------------------------------------------ loading

    def load(self, cls: type[A], obj_id: UUID) -> A:
        try:
            obj = self.repository.get(obj_id)
        except AggregateNotFoundError:
            raise NotFound(KIND_NAMES.get(cls, cls.__name__), str(obj_id)) from None
        if not isinstance(obj, cls):
            raise NotFound(KIND_NAMES.get(cls, cls.__name__), str(obj_id))
        return obj

    def find(self, cls: type[A], obj_id: UUID) -> A | None:
        try:
            return self.load(cls, obj_id)
        except NotFound:
            return None

    def settings(self) -> Config | Settings:
        return self.find(Config, CONFIG_ID) or Settings()

    def zone(self, name: str) -> Zone | None:
        return self.find(Zone, zone_id_for(name))

    def resolve(self, cls: type[A], ref: str | UUID) -> A:
        """An object by id, or by its unique name for the kinds that claim names."""
        kind = KIND_NAMES.get(cls, cls.__name__)
        if isinstance(ref, UUID):
            return self.load(cls, ref)
        try:
            return self.load(cls, UUID(ref))
        except ValueError:
            pass
        claim = self.find(NameClaim, claim_id(kind, ref))
        if claim is None or claim.released:
            raise NotFound(kind, ref)
        return self.load(cls, claim.object_id)

    # ------------------------------------------------------------ saving

    def atomic(
        self,
        decide: Callable[[], Sequence[Aggregate | None]],
        tracking: Tracking | None = None,
        what: str = "save",
    ) -> list[Aggregate]:
        """Run `decide` (which loads and changes aggregates) and save what it
        returns in one transaction, deciding again after a lost race."""
        for _ in range(RETRIES):
            aggregates = [a for a in decide() if a is not None]
            if not any(a.pending_events for a in aggregates):
                return []  # nothing decided: nothing to save, not even tracking
            try:
                self.save_tracked(aggregates, tracking)
            except IntegrityError:
                if tracking is not None and self.recorder.has_tracking_id(  # type: ignore[attr-defined]
                    tracking.application_name, tracking.notification_id
                ):
                    return []  # another follower already processed this position
                continue
            return aggregates
        raise Conflict(what)

    def save_tracked(
        self, aggregates: Sequence[Aggregate], tracking: Tracking | None
    ) -> None:
        """Save with a follower's tracking row in the same transaction."""
        if tracking is None:
            self.save(*aggregates)
            return
        processing = ProcessingEvent[UUID](tracking)
        processing.collect_events(*aggregates)
        recordings = self._record(processing)
        self._take_snapshots(processing)
        self._notify(recordings)

    # ------------------------------------------------------------ registration

    def _claim(self, ctx: Ctx, kind: str, name: str, obj_id: UUID) -> NameClaim:
        if (
            not name
            or name != name.strip()
            or len(name) > 255
            or any(c in name for c in "\0\n\r")
        ):
            raise InvalidInput(f"{kind} name", name, "1-255 printable characters")
        existing = self.find(NameClaim, claim_id(kind, name))
        if existing is None:
            return NameClaim.claim(ctx, kind, name, obj_id)
        if not existing.released:
            raise Duplicate(kind, name)
        existing.reclaim(ctx, obj_id)  # the name of a deleted object is free again
        return existing

    def _zone_for_update(self, ctx: Ctx, name: str) -> Zone:
        if not name or any(c in name for c in "\0\n\r/"):
            raise InvalidInput("zone", name, "a plain name")
        return self.zone(name) or Zone.open(ctx, name)

    def _save_new(
        self, ctx: Ctx, kind: str, name: str, obj: Aggregate, *others: Aggregate
    ) -> None:
        claim = self._claim(ctx, kind, name, obj.id)
        try:
            self.save(obj, claim, *others)
        except IntegrityError:
            # The name claim or the zone moved under us: decide again from fresh state.
            raise Duplicate(kind, name) from None

    def register_host(
        self, ctx: Ctx, name: str, zone: str, cluster: str, hypervisor: Hypervisor
    ) -> Host:
        if not cluster:
            raise InvalidInput("cluster", cluster, "a host belongs to a cluster")
        for _ in range(RETRIES):
            zone_agg = self._zone_for_update(ctx, zone)
            host = Host.register(ctx, name, zone, cluster, hypervisor)
            zone_agg.add_host(ctx, host.id, cluster)
            claim = self._claim(ctx, "host", name, host.id)
            try:
                self.save(host, claim, zone_agg)
                return host
            except IntegrityError:
                continue
        raise Conflict(f"host add {name}")

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
        for _ in range(RETRIES):
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
            claim = self._claim(ctx, "pool", name, pool.id)
            try:
                self.save(pool, claim, zone_agg)
                return pool
            except IntegrityError:
                continue
        raise Conflict(f"pool add {name}")

    def change_pool_status(self, ctx: Ctx, ref: str, trigger: str) -> StoragePool:
        def decide() -> list[Aggregate]:
            pool = self.resolve(StoragePool, ref)
            pool.change_status(ctx, trigger)
            return [pool]

        return self.atomic(decide, what=f"pool {ref}")[0]  # type: ignore[return-value]

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

        def decide() -> list[Aggregate]:
            pool = self.resolve(StoragePool, ref)
            if pool.reservations:
                raise IllegalTransition(
                    "StoragePool",
                    str(pool.id),
                    pool.status.name,
                    "Remove",
                    why=f"{len(pool.reservations)} volumes or template copies on it",
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
        for _ in range(RETRIES):
            zone_agg = self._zone_for_update(ctx, zone)
            store = ImageStore.register(ctx, name, zone, path, provider)
            zone_agg.add_store(ctx, store.id)
            claim = self._claim(ctx, "store", name, store.id)
            try:
                self.save(store, claim, zone_agg)
                return store
            except IntegrityError:
                continue
        raise Conflict(f"store add {name}")

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
