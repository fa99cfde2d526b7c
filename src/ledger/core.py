"""The ledger's core: one eventsourcing Application, loading, resolving and saving.

Every storctl aggregate lives in this one application, so the whole storage history
is one notification log, and followers (workflows, dispatcher, projections) keep their
tracking rows beside the events (SQLite has no per-application table names). Saves
that lost a race are decided again from fresh state (`atomic`), so callers never see
a version conflict as an error.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
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
from eventsourcing.sqlite import SQLiteDatastore

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
from ledger.sqlite_reads import SQLiteReads
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


#: Attributes that hold an event's own command or answer record: assigned whole
#: from the event that carried it (`ledger.base`), read, never changed in place
#: (a retry builds a new dict), so a copy shares them as the events do. They are
#: most of what copying a volume cost.
_SHARED = frozenset({"pending", "last_command", "last_answer"})


def copy_aggregate(aggregate: Any) -> Any:
    copied = object.__new__(type(aggregate))
    memo: dict[int, Any] = {}
    copied.__dict__.update(
        {k: v if k in _SHARED else _copy(v, memo) for k, v in vars(aggregate).items()}
    )
    return copied


#: Ids last found to have no events, remembered (at most this many) so that asking
#: again costs one query instead of two: the Config of a ledger that never had
#: `config set`, a simulator host without a fault plan.
ABSENT_SIZE = 1000


class Batch:
    """A follower's unit of work: the decisions about a batch of notifications,
    saved in one transaction with the tracking row of the last one.

    Every aggregate loaded during the batch is kept (`loaded`), so the decision
    about a later notification sees what the earlier ones decided before any is
    saved; `decided` are those a decision returned, the ones to save."""

    def __init__(self) -> None:
        self.loaded: dict[UUID, Any] = {}
        self.decided: dict[UUID, Any] = {}
        #: A decision raised (and its caller went on): what it changed before
        #: raising must not be saved.
        self.tainted = False

    def discard(self, repository: Any) -> None:
        """The batch is not saved: what it loaded (the cached aggregates
        themselves, maybe changed) leaves the cache, to be read again."""
        for aggregate_id in self.loaded:
            repository.evict(aggregate_id)
        self.loaded.clear()
        self.decided.clear()


class StrayChange(RuntimeError):
    """A decision changed an aggregate it did not return: a batch would save what
    deciding one notification at a time would not, so the batch is undone."""


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
        #: Every cached aggregate (but those in `stale`) holds every event up to
        #: this notification id: the engine's followers keep it so (`follow`).
        self.horizon = 0
        self.stale: set[UUID] = set()
        #: While a follower decides a batch: its aggregates, and whether the cache
        #: may be trusted without asking the database (see `follow`).
        self.batch: Batch | None = None
        self.trusted = False

    def get(  # type: ignore[override]
        self,
        aggregate_id: UUID,
        *,
        version: int | None = None,
        projector_func: Any = _project,
        fastforward_skipping: bool = False,
        deepcopy_from_cache: bool = True,
    ) -> Any:
        batch = self.batch if version is None else None
        if batch is not None:
            mine = batch.loaded.get(aggregate_id)
            if mine is not None:
                return mine  # as this batch's decisions left it
        if self.trusted and version is None and aggregate_id not in self.stale:
            hint = self.cached(aggregate_id)
            if hint is not None:
                if batch is not None:
                    # Not copied: the batch changes the cached aggregate itself,
                    # which it evicts if it is not saved (`Batch.discard`).
                    batch.loaded[aggregate_id] = hint
                    return hint
                return copy_aggregate(hint) if deepcopy_from_cache else hint
            if aggregate_id in self.absent:
                raise AggregateNotFoundError(aggregate_id)
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
        if version is None:
            self.stale.discard(aggregate_id)  # read up to now: holds the horizon
            if batch is not None and (self.trusted or self.cache is None):
                # The cached one, as above (or, without a cache, a fresh one).
                batch.loaded[aggregate_id] = aggregate
            elif deepcopy_from_cache and self.cache is not None:
                aggregate = copy_aggregate(aggregate)
        return aggregate

    def evict(self, aggregate_id: UUID) -> None:
        """Forget the cached aggregate (if any): its next load reads it again."""
        if self.cache is not None:
            with contextlib.suppress(KeyError):
                self.cache.get(aggregate_id, evict=True)

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
        batch = self.batch
        for aggregate_id in dict.fromkeys(aggregate_ids):
            if batch is not None and aggregate_id in batch.loaded:
                found[aggregate_id] = batch.loaded[aggregate_id]
                continue
            aggregate = self.cached(aggregate_id)
            if aggregate is not None:
                if self.trusted and aggregate_id not in self.stale:
                    found[aggregate_id] = aggregate
                else:
                    stale[aggregate_id] = aggregate
                continue
            if self.trusted and aggregate_id in self.absent:
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
            self.stale.discard(aggregate_id)
            found[aggregate_id] = aggregate
        return found

    def saved(self, aggregates: Iterable[Any]) -> None:
        """After a save: new aggregates go into the cache as saved (a copy, the
        caller keeps its own), so their first load is a fast-forward (one query)
        instead of a miss (two). The library caches saves only without
        fast-forward; with it, a cached version older than the database is
        harmless, as every load reads the events after it (and inside a
        follower's batch, `follow` has moved it on by the log)."""
        for aggregate in aggregates:
            self.absent.pop(aggregate.id, None)
            if self.cache is not None and aggregate.id not in self.cache.cache:
                self.cache.put(aggregate.id, copy_aggregate(aggregate))
                self.stale.discard(aggregate.id)

    def follow(self, start: int, notes: Sequence[Any], decode: Any) -> None:
        """Keep the cache as the notification log says, so that a follower may
        trust it (`trusted`) without a query per load.

        `notes` are every notification after `start`, in order (as a follower
        reads them; ids are assigned in commit order on both stores, so none
        can appear later below the last). Each event moves its cached aggregate
        on, or evicts it when the cache missed some of its events; then every
        entry holds every event up to the last note. Notes that do not start
        within the horizon leave a gap: every entry is then read again before
        it is trusted (`stale`). Trusting the cache is safe for decisions that
        save (a version the database moved past fails the save, which is then
        decided again from fresh state) and only a hint for the others, as any
        read is the moment after it."""
        if not notes:
            return
        if start > self.horizon:
            self.stale = set(self.cache.cache) if self.cache is not None else set()
            self.absent.clear()
            self.horizon = notes[-1].id
            return
        for note in notes:
            if note.id <= self.horizon:
                continue
            self.absent.pop(note.originator_id, None)
            cached = self.cached(note.originator_id)
            if cached is None or cached.version >= note.originator_version:
                continue
            if cached.version + 1 != note.originator_version:
                self.evict(note.originator_id)
                continue
            lock = self._use_fastforward_lock(note.originator_id)
            try:
                with lock:
                    if cached.version + 1 == note.originator_version:
                        decode(note).mutate(cached)
            finally:
                self._disuse_fastforward_lock(note.originator_id)
        self.horizon = notes[-1].id


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


def _collected(objs: Iterable[Any], tracking: Tracking | None) -> ProcessingEvent[UUID]:
    """`ProcessingEvent.collect_events` for what storctl saves (aggregates, or
    anything else by the library's way)."""
    processing = ProcessingEvent[UUID](tracking)
    for obj in objs:
        if isinstance(obj, Aggregate):  # a class check, not a Protocol's
            processing.events.extend(obj.collect_events())
            processing.aggregates[obj.id] = obj
        elif obj is not None:
            processing.collect_events(obj)
    return processing


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
        recorder = self.factory.process_recorder()
        self._reads = self._sqlite_reads(recorder)
        return recorder

    def construct_snapshot_store(self) -> Any:
        store = super().construct_snapshot_store()
        if store is not None and getattr(self, "_reads", None) is not None:
            self._reads.install(store.recorder)  # type: ignore[union-attr]
        return store

    @staticmethod
    def _sqlite_reads(recorder: Any) -> SQLiteReads | None:
        """Aggregate reads in one statement on SQLite files (`sqlite_reads`)."""
        datastore = getattr(recorder, "datastore", None)
        if not isinstance(datastore, SQLiteDatastore) or not SQLiteReads.usable(
            datastore
        ):
            return None
        reads = SQLiteReads(datastore)
        reads.install(recorder)
        return reads

    def close(self) -> None:
        if getattr(self, "_reads", None) is not None:
            self._reads.close()  # type: ignore[union-attr]
        super().close()

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
        returns in one transaction, deciding again after a lost race.

        Within a follower's batch (`following`) nothing is saved here: what was
        decided joins the batch, saved by `save_batch` with the batch's tracking
        row."""
        batch = self._cache_repository().batch
        if batch is not None:
            try:
                decided = [a for a in decide() if a is not None]
            except BaseException:
                batch.tainted = True  # it may have changed what it loaded
                raise
            if not any(a.pending_events for a in decided):
                return []
            for a in decided:
                batch.loaded[a.id] = batch.decided[a.id] = a
            return decided
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

    @contextlib.contextmanager
    def following(
        self, start: int, notes: Sequence[Any], decode: Callable[[Any], Any]
    ) -> Iterator[Batch]:
        """Decide a follower's batch: `notes` are what it read after `start`.
        The cache is brought up to the last note and trusted, so loads ask the
        database only for what it does not hold; `atomic` gathers decisions in
        the batch instead of saving each (see `save_batch`)."""
        repository = self._cache_repository()
        repository.follow(start, notes, decode)
        batch = Batch()
        repository.batch, repository.trusted = batch, repository.cache is not None
        try:
            yield batch
        except BaseException:
            batch.discard(repository)
            raise
        finally:
            repository.batch, repository.trusted = None, False

    def save_batch(self, batch: Batch, tracking: Tracking) -> list[Aggregate]:
        """Save what a batch decided, with the follower's tracking row, in one
        transaction; nothing (not even the row) when it decided nothing.

        A lost race raises IntegrityError and a decision that changed an
        aggregate without returning it raises StrayChange: the caller then
        decides the batch again, one notification at a time, from fresh state."""
        try:
            stray = [
                a.id
                for a in batch.loaded.values()
                if a.pending_events and a.id not in batch.decided
            ]
            if stray:
                raise StrayChange(f"changed without being returned: {stray}")
            if batch.tainted:
                raise StrayChange("a decision raised after changing what it loaded")
            aggregates = [a for a in batch.decided.values() if a.pending_events]
            if aggregates:
                self.save_tracked(aggregates, tracking)
        except BaseException:
            batch.discard(self._cache_repository())
            raise
        return aggregates

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        """The library's save, collecting events without its two runtime-Protocol
        `isinstance` checks per aggregate (~15 µs each, more than a save's
        encoding of a small event)."""
        if kwargs:
            return super().save(*objs, **kwargs)
        processing, recordings = self._save(objs, None)
        self.notify(processing.events)  # the library's deprecated hook, as it does
        return recordings

    def save_tracked(
        self, aggregates: Sequence[Aggregate], tracking: Tracking | None
    ) -> None:
        """Save with a follower's tracking row in the same transaction."""
        if tracking is None:
            self.save(*aggregates)
            return
        self._save(aggregates, tracking)

    def _save(
        self, objs: Iterable[Any], tracking: Tracking | None
    ) -> tuple[ProcessingEvent[UUID], Any]:
        processing = _collected(objs, tracking)
        recordings = self._record(processing)
        self._take_snapshots(processing)
        self._notify(recordings)
        return processing, recordings

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
