"""The ledger: one thin eventsourcing Application, its storage plumbing and no more.

Every storctl aggregate lives in this one application, so the whole storage history
is one notification log, and followers (workflows, dispatcher, projections) keep their
tracking rows beside the events (SQLite has no per-application table names). It
loads, resolves names, decides atomically (a save that lost a race is decided again
from fresh state, so callers never see a version conflict as an error), saves a
follower's batch with its tracking row, and reads settings. What storctl *does* is
elsewhere: the use cases (`ledger.usecases`) and the workflows (`ledger.workflows`)
are plain functions over this application, as in eventsourcing's `bankaccounts`.

The read side reaches a decision only through `candidates` (`ledger.ports`), given
by the composition root (`cli.bootstrap`); without one, placement reads the
aggregates themselves (`inventory.AggregateCandidates`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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
    Tracking,
)
from eventsourcing.sqlite import SQLiteDatastore

from ledger.config import CONFIG_ID, Config, Settings
from ledger.copies import DataObjectInStore
from ledger.errors import Ambiguous, Conflict, NotFound
from ledger.host import Host
from ledger.image_store import ImageStore
from ledger.job import Job
from ledger.names import NameClaim, claim_id
from ledger.pool import StoragePool
from ledger.ports import Candidates
from ledger.simulator_plan import SimulatorPlan
from ledger.snapshot import Snapshot
from ledger.store.repository import CACHE_SIZE, Batch, StrayChange, _Repository
from ledger.store.sqlite_reads import SQLiteReads
from ledger.template import Template
from ledger.transcodings import transcodings
from ledger.vm import VirtualMachine
from ledger.volume import Volume
from ledger.zone import Zone, zone_id_for

A = TypeVar("A", bound=Aggregate)

#: How many times a save that lost a race is decided again before giving up.
RETRIES = 20


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


def _stamp(events: Iterable[Any], principal: str | None) -> None:
    """Who did it is not a claim: each event's `actor` becomes who the store
    says appends it (the recorder's `principal`: PostgreSQL's `session_user`,
    the OS user on SQLite), and a different name the caller gave (`--actor`, or
    the actor a follow-up inherits) is kept beside it as `onbehalfof`. Stamped
    here, the one door every save goes through, just before encoding."""
    if principal is None:
        return
    for event in events:
        claimed = getattr(event, "actor", None)
        if claimed is None or claimed == principal:
            continue
        object.__setattr__(event, "actor", principal)
        object.__setattr__(event, "onbehalfof", claimed)


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


class Ledger(Application[UUID]):
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

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        candidates: Callable[[Ledger], Candidates] | None = None,
    ) -> None:
        """`candidates` builds the read side's answers for placement from this
        ledger (`projections.table_candidates.TableCandidates`); None: placement
        reads the aggregates (`inventory.AggregateCandidates`)."""
        super().__init__(env)
        self._scope = threading.local()
        self.candidates: Candidates | None = candidates(self) if candidates else None

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
        _stamp(processing_event.events, getattr(self.recorder, "principal", None))
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
        """The configuration, read only (every caller asks `.get(key)`): inside
        `one_settings_read` the read made at its start, else a read now."""
        held: Config | Settings | None = getattr(self._scope, "settings", None)
        return held if held is not None else self._read_settings()

    def _read_settings(self) -> Config | Settings:
        try:
            return self.peek(Config, CONFIG_ID)
        except NotFound:
            return Settings()

    @contextlib.contextmanager
    def one_settings_read(self) -> Iterator[None]:
        """Every `settings()` of this thread sees one read: a submission that checks
        a minimum size, places and sets a command's wait asked three times, each a
        query. Nested scopes keep the outer read."""
        if getattr(self._scope, "settings", None) is not None:
            yield
            return
        self._scope.settings = self._read_settings()
        try:
            yield
        finally:
            self._scope.settings = None

    def wait(self, key: str) -> int:
        """A command's wait in seconds, by its configuration key."""
        return int(self.settings().get(key))

    def zone(self, name: str) -> Zone | None:
        return self.find(Zone, zone_id_for(name))

    def resolve(self, cls: type[A], ref: str | UUID) -> A:
        """An object by id, by its unique name for the kinds that claim names, or
        by a unique id prefix (the read side's tables know the ids)."""
        kind = KIND_NAMES.get(cls, cls.__name__)
        if isinstance(ref, UUID):
            return self.load(cls, ref)
        try:
            return self.load(cls, UUID(ref))
        except ValueError:
            pass
        claim = self.find(NameClaim, claim_id(kind, ref))
        if claim is not None and not claim.released:
            return self.load(cls, claim.object_id)
        found = self.candidates.ids(kind, ref) if self.candidates else []
        if len(found) > 1:
            raise Ambiguous(kind, ref, [i for i, _ in found], [n for _, n in found])
        if not found:
            raise NotFound(kind, ref)
        return self.load(cls, UUID(found[0][0]))

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

    def save_batch(self, batch: Batch, tracking: Tracking | None) -> list[Aggregate]:
        """Save what a batch decided, with the follower's tracking row (if it
        moves), in one transaction; nothing (not even the row) when it decided
        nothing.

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
