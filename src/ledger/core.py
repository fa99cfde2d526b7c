"""The ledger's core: one eventsourcing Application, loading, resolving and saving.

Every storctl aggregate lives in this one application, so the whole storage history
is one notification log, and followers (workflows, dispatcher, projections) keep their
tracking rows beside the events (SQLite has no per-application table names). Saves
that lost a race are decided again from fresh state (`atomic`), so callers never see
a version conflict as an error.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from copy import deepcopy
from datetime import date, datetime
from enum import Enum
from typing import Any, TypeVar, cast
from uuid import UUID

from eventsourcing.application import (
    AggregateNotFoundError,
    Application,
    ProcessingEvent,
    Repository,
)
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    IntegrityError,
    JSONTranscoder,
    StoredEvent,
    Tracking,
)

from ledger.base import Ctx
from ledger.config import CONFIG_ID, Config, Settings
from ledger.copies import DataObjectInStore
from ledger.errors import (
    Conflict,
    Duplicate,
    InvalidInput,
    NotFound,
)
from ledger.host import Host
from ledger.image_store import ImageStore
from ledger.job import Job
from ledger.names import NameClaim, claim_id
from ledger.pool import StoragePool
from ledger.simulator import SimulatorPlan
from ledger.snapshot import Snapshot
from ledger.template import Template
from ledger.values import (
    transcodings,
)
from ledger.vm import VirtualMachine
from ledger.volume import Volume
from ledger.zone import Zone, zone_id_for

A = TypeVar("A", bound=Aggregate)

#: How many times a save that lost a race is decided again before giving up.
RETRIES = 20

#: Aggregates kept in memory by the repository. Each load still reads the events
#: recorded after the cached version (fast-forward), so other processes' writes are
#: seen, but a pool or VM with a long history is not replayed on every load.
CACHE_SIZE = 2000


def _project(aggregate: Any, events: Iterable[Any]) -> Any:
    """eventsourcing's `project_aggregate` without its per-event
    `isinstance(event, CanMutateProtocol)` assert: a runtime-checkable Protocol
    check costs more than the mutation itself (every stored event of ours is an
    aggregate event, which can mutate)."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


#: Values that never change in place: a copy may share them.
_ATOMS = (str, int, float, bool, type(None), UUID, Enum, datetime, date, bytes)


def _copy(value: Any, memo: dict[int, Any]) -> Any:
    """`copy.deepcopy` for what aggregates hold (JSON-like containers of atoms),
    without its reduce protocol for every UUID and datetime. Containers shared
    inside one aggregate stay shared in the copy, as deepcopy keeps them."""
    if isinstance(value, _ATOMS):
        return value
    kind = type(value)
    if kind not in (dict, list, set, tuple):
        return deepcopy(value, memo)
    done = memo.get(id(value))
    if done is not None:
        return done
    if kind is dict:
        out: Any = {k: _copy(v, memo) for k, v in value.items()}
    elif kind is list:
        out = [_copy(v, memo) for v in value]
    elif kind is set:
        out = {_copy(v, memo) for v in value}
    else:
        out = tuple(_copy(v, memo) for v in value)
    memo[id(value)] = out  # the source holds `value`, so its id stays unique
    return out


def copy_aggregate(aggregate: Any) -> Any:
    copied = object.__new__(type(aggregate))
    memo: dict[int, Any] = {}
    copied.__dict__.update({k: _copy(v, memo) for k, v in vars(aggregate).items()})
    return copied


#: Ids last found to have no events, remembered (at most this many) so that asking
#: again costs one query instead of two: the Config of a ledger that never had
#: `config set`, a simulator host without a fault plan.
ABSENT_SIZE = 1000


class _Repository(Repository[UUID]):
    """The library's repository, projecting with `_project` and copying cached
    aggregates with `copy_aggregate` by default.

    A miss costs two queries (snapshot, then events). For an id found absent
    before, one query for its first event decides: none means still absent (a
    snapshot is only ever taken of saved events, and events are never deleted);
    any means the full load, so an aggregate another process created since is
    seen at once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.absent: dict[UUID, None] = {}

    def get(  # type: ignore[override]
        self,
        aggregate_id: UUID,
        *,
        version: int | None = None,
        projector_func: Any = _project,
        fastforward_skipping: bool = False,
        deepcopy_from_cache: bool = True,
    ) -> Any:
        if version is None and aggregate_id in self.absent:
            if not self.event_store.recorder.select_events(aggregate_id, limit=1):
                raise AggregateNotFoundError(aggregate_id)
            self.absent.pop(aggregate_id, None)
        try:
            aggregate = super().get(
                aggregate_id,
                version=version,
                projector_func=projector_func,
                fastforward_skipping=fastforward_skipping,
                deepcopy_from_cache=False,
            )
        except AggregateNotFoundError:
            if version is None:
                if len(self.absent) >= ABSENT_SIZE:
                    self.absent.clear()  # cheaper than an LRU; misses are rare
                self.absent[aggregate_id] = None
            raise
        if deepcopy_from_cache and self.cache is not None and version is None:
            aggregate = copy_aggregate(aggregate)
        return aggregate

    def cached(self, aggregate_id: UUID) -> Any | None:
        """The cached aggregate as it is, without asking the database: a hint
        (which zone a store is in), never an answer."""
        if self.cache is None:
            return None
        link = self.cache.cache.get(aggregate_id)
        return link[3] if isinstance(link, list) else link

    def get_many(self, aggregate_ids: Iterable[UUID]) -> dict[UUID, Any]:
        """Several aggregates, read only (not copied): the cached ones brought up to
        date by one query for the events after each one's version, the others
        loaded one by one. Absent ids are left out."""
        found: dict[UUID, Any] = {}
        stale: dict[UUID, Any] = {}
        for aggregate_id in dict.fromkeys(aggregate_ids):
            aggregate = self.cached(aggregate_id)
            if aggregate is not None:
                stale[aggregate_id] = aggregate
                continue
            with contextlib.suppress(AggregateNotFoundError):
                found[aggregate_id] = self.get(aggregate_id, deepcopy_from_cache=False)
        if not stale:
            return found
        new: dict[Any, list[StoredEvent]] = {}
        for stored in _events_after(
            self.event_store.recorder, {i: a.version for i, a in stale.items()}
        ):
            new.setdefault(stored.originator_id, []).append(stored)
        mapper = self.event_store.mapper
        for aggregate_id, aggregate in stale.items():
            events = new.get(aggregate_id)
            if events:
                # As the library's fast-forward: one thread at a time moves a cached
                # aggregate, and what another moved it by already is skipped.
                lock = self._use_fastforward_lock(aggregate_id)
                try:
                    with lock:
                        for stored in events:
                            if stored.originator_version > aggregate.version:
                                event: Any = mapper.to_domain_event(stored)
                                event.mutate(aggregate)
                finally:
                    self._disuse_fastforward_lock(aggregate_id)
            found[aggregate_id] = aggregate
        return found

    def saved(self, aggregates: Iterable[Any]) -> None:
        """After a save: new aggregates go into the cache as saved (a copy, the
        caller keeps its own), so their first load is a fast-forward (one query)
        instead of a miss (two). The library caches saves only without
        fast-forward; with it, a cached version older than the database is
        harmless, as every load reads the events after it."""
        for aggregate in aggregates:
            self.absent.pop(aggregate.id, None)
            if self.cache is not None and aggregate.id not in self.cache.cache:
                self.cache.put(aggregate.id, copy_aggregate(aggregate))


def _events_after(recorder: Any, versions: dict[UUID, int]) -> list[StoredEvent]:
    """The stored events of each aggregate after the given version, in one query
    (each term is a range of the events table's primary key)."""
    ids = list(versions)
    if hasattr(recorder, "convert_originator_id"):  # SQLite
        terms = " OR ".join(["(originator_id=? AND originator_version>?)"] * len(ids))
        params: list[Any] = []
        for i in ids:
            params += [i.hex, versions[i]]
        with recorder.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT * FROM {recorder.events_table_name} WHERE {terms}"
                " ORDER BY originator_version",
                params,
            )
            return [
                StoredEvent(
                    originator_id=recorder.convert_originator_id(row["originator_id"]),
                    originator_version=row["originator_version"],
                    topic=row["topic"],
                    state=row["state"],
                )
                for row in c.fetchall()
            ]
    from psycopg.sql import SQL, Identifier

    term = SQL("(originator_id = %s AND originator_version > %s)")
    statement = SQL(
        "SELECT * FROM {schema}.{table} WHERE {terms} ORDER BY originator_version"
    )
    params = []
    for i in ids:
        params += [i, versions[i]]
    with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
        curs.execute(
            statement.format(
                schema=Identifier(recorder.datastore.schema),
                table=Identifier(recorder.events_table_name),
                terms=SQL(" OR ").join([term] * len(ids)),
            ),
            params,
        )
        return [
            StoredEvent(
                originator_id=row["originator_id"],
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=bytes(row["state"]),
            )
            for row in curs.fetchall()
        ]


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


class LedgerCore(Application[UUID]):
    """The write side's plumbing. Snapshots keep long-lived aggregates quick to load."""

    name = "storctl"
    snapshotting_intervals = {
        StoragePool: 100,
        Zone: 100,
        Config: 50,
        Volume: 100,
        DataObjectInStore: 100,
        Template: 100,
        VirtualMachine: 100,
        Host: 100,
        Snapshot: 100,
    }

    #: Where allocators read candidate pools; None reads the aggregates. The CLI sets
    #: it to the projected table, so the ledger never imports the read side.
    pool_source: Callable[[Any, str, UUID | None], list[Any]] | None = None
    #: Where allocators find the suitable pools without judging each in Python
    #: (`projections.placement.find_suitable`); None judges every pool.
    suitable_source: Callable[..., tuple[list[Any], list[Any]]] | None = None
    #: Where storage cleanup finds template copies on the zone's pools that no volume
    #: uses, as {pool id: [copy id]}; None finds none. Each is confirmed on its
    #: aggregate before it is destroyed.
    copy_source: Callable[[Any, str, UUID | None], dict[str, list[UUID]]] | None = None

    def construct_recorder(self) -> Any:
        # A process recorder: followers write their tracking row in the same
        # transaction as the events they produce (exactly-once state changes).
        return self.factory.process_recorder()

    def construct_repository(self) -> Repository[UUID]:
        # The cache with fast-forward, always (without it a cache would not see
        # other processes' saves). AGGREGATE_CACHE_MAXSIZE=0 turns it off (the
        # library would keep every aggregate ever loaded): cold loads, as a CLI's
        # first, for the benchmarks that time them.
        size = int(self.env.get(self.AGGREGATE_CACHE_MAXSIZE) or CACHE_SIZE)
        return _Repository(
            event_store=self.events,
            snapshot_store=self.snapshots,
            cache_maxsize=size if size > 0 else None,
            fastforward=True,
        )

    def _record(self, processing_event: ProcessingEvent[UUID]) -> Any:
        recordings = super()._record(processing_event)
        self._cache_repository().saved(processing_event.aggregates.values())
        return recordings

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        for transcoding in transcodings():
            transcoder.register(transcoding)

    # ------------------------------------------------------------ loading

    def load(self, cls: type[A], obj_id: UUID) -> A:
        try:
            obj: Aggregate = self.repository.get(obj_id)
        except AggregateNotFoundError:
            raise NotFound(KIND_NAMES.get(cls, cls.__name__), str(obj_id)) from None
        if not isinstance(obj, cls):
            raise NotFound(KIND_NAMES.get(cls, cls.__name__), str(obj_id))
        return obj

    def peek(self, cls: type[A], obj_id: UUID) -> A:
        """`load` for reading only: the cached aggregate itself, not a copy, so the
        caller must not change it (endpoint choice, a pending check)."""
        try:
            obj: Aggregate = self.repository.get(obj_id, deepcopy_from_cache=False)
        except AggregateNotFoundError:
            raise NotFound(KIND_NAMES.get(cls, cls.__name__), str(obj_id)) from None
        if not isinstance(obj, cls):
            raise NotFound(KIND_NAMES.get(cls, cls.__name__), str(obj_id))
        return obj

    def peek_many(self, obj_ids: Iterable[UUID]) -> dict[UUID, Aggregate]:
        """`peek` of several aggregates at once (one query for the cached ones),
        whatever their kinds; the absent are left out. The caller checks kinds."""
        found: dict[UUID, Aggregate] = self._cache_repository().get_many(obj_ids)
        return found

    def cached(self, obj_id: UUID) -> Aggregate | None:
        """What the cache holds, maybe behind the database: a hint only."""
        hint: Aggregate | None = self._cache_repository().cached(obj_id)
        return hint

    def _cache_repository(self) -> _Repository:
        return cast(_Repository, self.repository)

    def find(self, cls: type[A], obj_id: UUID) -> A | None:
        try:
            return self.load(cls, obj_id)
        except NotFound:
            return None

    def settings(self) -> Config | Settings:
        """Read only (every caller asks `.get(key)`): not copied from the cache."""
        try:
            return self.peek(Config, CONFIG_ID)
        except NotFound:
            return Settings()

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
