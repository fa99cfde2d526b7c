"""Time travel: the ledger as it was at a position (or a time), in a new file.

CloudStack can only show its tables as they are now; here every table is a fold of
the log, so a prefix of the log gives the tables as they were then. `replay_into`
copies the stored events of the prefix, byte for byte and in order, into a fresh
ledger, projects its tables and marks its followers (workflows, dispatchers) as done
so no command is sent to an agent again, all in one transaction: the whole CLI then
reads it with `--db FILE`. A prefix is always a consistent state (every save is one
transaction), which is why a time is turned into the prefix before the first event
after it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import Notification, StoredEvent, Tracking
from eventsourcing.postgres import PostgresApplicationRecorder

from ledger.errors import InvalidInput
from ledger.moments import parse_bound
from ledger.store.reader import Note, selector
from ledger.store.sealing import CopySealer
from projections import log_copy
from projections.db import Db
from projections.projector import Progress, decoder, fraction_of
from projections.view import APPLICATION_NAME, apply_items, view_for

BATCH = 500
#: stored events per insert statement (and per projected chunk) of a copy
CHUNK = 5000

#: followers whose tracking rows a replayed ledger marks as done
FOLLOWERS = ("workflow", "dispatcher")


def notifications(
    ledger: Application[Any], stop: int | None = None, batch: int = BATCH
) -> Iterator[Notification | Note]:
    """Every stored event (up to notification id `stop`), in log order."""
    select = selector(ledger)
    last = 0
    while True:
        notes = select(last, batch, stop)
        yield from notes
        if len(notes) < batch:
            return
        last = notes[-1].id


def resolve_until(ledger: Application[Any], until: str) -> int:
    """`until` as a notification position: a position as given, or for a time the
    last position before the first event stamped after it (0: nothing)."""
    at = parse_bound(until, "--until", datetime.now(UTC))
    if at.position is not None:
        return at.position
    moment = at.moment
    assert moment is not None
    last = 0
    decode = decoder(ledger)
    for note in notifications(ledger):
        event = decode(note)
        if event.timestamp > moment:
            break
        last = note.id
    return last


def copy_events(
    target: Application[Any],
    events: Iterable[StoredEvent | Note],
    source: Application[Any] | None = None,
    *,
    alone: str | None = None,
) -> int:
    """Insert `events` (in log order) into an empty ledger, apply them to its
    tables and mark its followers done at the head, all in one transaction;
    returns the head position.

    One transaction keeps the promise that a ledger holds a consistent prefix: a
    copy that fails or is killed midway leaves nothing, never events without
    their followers' tracking rows (which an engine would act on again). The
    events go in by chunks, not through the library's `insert_events` (one call
    for a whole prefix hung on PostgreSQL past about 20,000 events, in psycopg's
    pipeline), and each chunk is decoded and projected as it goes in, so a copy
    reads the source once and holds one chunk in memory. When `events` are the
    notifications of `source` and both ledgers are in reach of one connection
    (SQLite files, attached; PostgreSQL schemas of one database), each chunk is
    copied by one `INSERT ... SELECT` with its positions, in the database: the
    rows never go through Python to be written, and the database writes one chunk
    while Python projects it (the copy then costs about what a rebuild does).
    With `alone`, the target's SQLite file, on which no connection is open (the
    target closed: `replay_to_file`), the transaction runs on a connection of its
    own in rollback-journal mode (`log_copy.alone`).
    """
    view = view_for(target)
    recorder: Any = target.recorder
    decode = decoder(target)
    events = iter(events)
    with _copy_transaction(view, recorder, source, alone) as (db, insert, finish):
        view.drop_indexes(db)  # built once at the end, as a rebuild does
        head = 0
        seal = CopySealer(recorder)
        while chunk := list(islice(events, CHUNK)):
            positions = insert(chunk)
            seal(db.cursor, positions, chunk)
            apply_items(db, zip(positions, map(decode, chunk), strict=True))
            head = positions[-1]
        finish()
        view.create_indexes(db)
        if head:
            for name in FOLLOWERS:
                recorder._insert_tracking(db.cursor, Tracking(name, head))
            view.record_tracking(db, Tracking(APPLICATION_NAME, head))
    return head


@contextmanager
def _copy_transaction(
    view: Any, recorder: Any, source: Application[Any] | None, alone: str | None
) -> Iterator[tuple[Db, log_copy.Inserter, Callable[[], None]]]:
    """The copy's one transaction on the target, how it inserts a chunk, and
    what waits for every chunk to be in."""
    path = log_copy.sqlite_file(source) if view.dialect == "sqlite" else None
    if alone is not None:
        with log_copy.alone(alone, path) as cursor:
            db = Db(cursor, "sqlite")
            if path is None:
                yield db, log_copy.inserter(recorder, db), lambda: None
                return
            assert source is not None
            copy = log_copy.sqlite_copier(recorder, source.recorder, cursor.connection)
            with log_copy.copying(copy) as copier:
                yield db, copier, copier.finish
        return
    if path is not None:
        assert source is not None
        with log_copy.attached(view.datastore, path) as cursor:
            connection = cursor.sqlite_cursor.connection
            copy = log_copy.sqlite_copier(recorder, source.recorder, connection)
            with log_copy.copying(copy) as copier:
                yield Db(cursor, "sqlite"), copier, copier.finish
        return
    with view.view_transaction(commit=True) as db:
        if source is not None and log_copy.same_postgres(source, view):
            copy = log_copy.postgres_copier(recorder, source.recorder, db.cursor)
            with log_copy.copying(copy) as copier:
                yield db, copier, copier.finish
        else:
            yield db, log_copy.inserter(recorder, db), lambda: None


def _read_ahead(
    ledger: Application[Any], stop: int, batch: int
) -> Iterator[Notification | Note]:
    """`notifications`, each batch read by a worker thread while the one before
    is copied and projected: PostgreSQL's part of a read and its round trip then
    cost the copy nothing. (From SQLite, whose read is mostly Python building the
    rows, the two threads only took turns at the GIL: slower.)"""
    select = selector(ledger)
    with ThreadPoolExecutor(1, thread_name_prefix="replay-read") as worker:
        coming = worker.submit(select, 0, batch, stop)
        while True:
            notes = coming.result()
            if len(notes) == batch:
                coming = worker.submit(select, notes[-1].id, batch, stop)
            yield from notes
            if len(notes) < batch:
                return


def replay_into(source: Application[Any], target: Application[Any], stop: int) -> int:
    """Copy every event of `source` up to position `stop` into `target` (empty),
    with its tables, in one transaction; returns how many events were copied."""
    _refuse_nonempty(target)
    return _replay(source, target, stop, None)


def replay_to_file(
    source: Application[Any],
    open_target: Callable[[], Application[Any]],
    stop: int,
    *,
    on_progress: Callable[[float], None] | None = None,
) -> int:
    """`replay_into` the new, empty ledger that `open_target` opens, closed when
    this returns: what `storctl replay --until` does.

    Opening it creates its tables as the engine does. When it is a SQLite file,
    the copy then runs with the ledger closed, on a connection of its own and in
    rollback-journal mode (`log_copy.alone`): about a fifth faster on the bench's
    500,000 events than through the ledger's connections in WAL mode. `on_progress`
    hears the fraction of the way to `stop` read, every chunk.
    """
    on_chunk = None if on_progress is None else fraction_of(stop, on_progress)
    target = open_target()
    try:
        _refuse_nonempty(target)
        view_for(target)  # the projection tables, before the ledger closes
        alone = log_copy.sqlite_file(target)
        if alone is None:
            return _replay(source, target, stop, None, on_chunk)
    finally:
        target.close()
    return _replay(source, target, stop, alone, on_chunk)


def _refuse_nonempty(target: Application[Any]) -> None:
    if target.recorder.max_notification_id():
        raise InvalidInput("target", "ledger", "already holds events")


def _replay(
    source: Application[Any],
    target: Application[Any],
    stop: int,
    alone: str | None,
    on_chunk: Progress | None = None,
) -> int:
    copied = 0
    read = (
        _read_ahead
        if isinstance(source.recorder, PostgresApplicationRecorder)
        else notifications
    )

    def counted() -> Iterator[Notification | Note]:
        nonlocal copied
        for note in read(source, stop, CHUNK):
            copied += 1
            if on_chunk is not None and copied % CHUNK == 0:
                on_chunk(note.id)
            yield note  # a stored event, with its position

    if stop:
        copy_events(target, counted(), source, alone=alone)
    if on_chunk is not None:
        on_chunk(stop)  # committed
    return copied
