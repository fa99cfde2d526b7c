"""The aggregate repository: eventsourcing's, with a cache a follower can trust.

Loads copy cached aggregates cheaply (`copy_aggregate`), remember ids found absent,
bring several cached aggregates up to date in one query (`get_many`), and keep the
cache as the notification log says while a follower decides a batch (`follow`), so
its loads need no query at all.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Sequence
from copy import deepcopy
from datetime import date, datetime
from enum import Enum
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Repository
from eventsourcing.persistence import StoredEvent

from ledger.store.reader import events_after

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
#: from the event that carried it (`ledger.aggregate`), read, never changed in place
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
        # `batch` and `trusted` belong to the follower's thread alone: the host
        # commands it starts run in threads of their own (`command_pool`), and one
        # that loads an aggregate (the simulator's fault plan) must get its own
        # copy, not the batch's uncopied cached one. Two threads sharing that
        # object appended its events out of order (found by the soak, issue 19).
        self._local = threading.local()

    @property
    def batch(self) -> Batch | None:
        """While a follower decides a batch (in its thread): its aggregates."""
        batch: Batch | None = getattr(self._local, "batch", None)
        return batch

    @batch.setter
    def batch(self, value: Batch | None) -> None:
        self._local.batch = value

    @property
    def trusted(self) -> bool:
        """Whether this thread's follower may trust the cache without asking the
        database (see `follow`)."""
        return bool(getattr(self._local, "trusted", False))

    @trusted.setter
    def trusted(self, value: bool) -> None:
        self._local.trusted = value

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
        for stored in events_after(
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
