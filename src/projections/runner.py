"""Driving the projections: pull from the Ledger's notification log, apply, track.

SQLite's recorder cannot subscribe, so the follower always pulls: the notifications
after the tracked position (`selector`: the library's query, read more cheaply), a
batch at a time, each batch applied with its one tracking row in one transaction
(batching is what makes a rebuild fast). PostgreSQL ids may have gaps: the position
is the last id seen, never "the previous one plus one". Writes every table of
`schema.py`.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple, cast
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import (
    DatetimeAsISO,
    IntegrityError,
    InterfaceError,
    JSONTranscoder,
    Mapper,
    OperationalError,
    StoredEvent,
    Tracking,
    UUIDAsHex,
    find_id_convertor,
)
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from eventsourcing.utils import resolve_topic, retry
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

from projections import journal_stage
from projections.db import Db, immediate, known_iso
from projections.view import (
    APPLICATION_NAME,
    SQLiteProjectionView,
    View,
    apply_batch,
    apply_items,
    view_for,
)

#: (after, limit, stop) -> the notifications after position `after`, in order
Select = Callable[[int, int, int | None], Sequence[Any]]


class Note(NamedTuple):
    """A notification as the mapper reads it (a stored event and its position)."""

    id: int
    originator_id: UUID
    originator_version: int
    topic: str
    state: bytes


def decoder(ledger: Application[Any]) -> Callable[[StoredEvent | Note], Any]:
    """The mapper's `to_domain_event` (which reads a `Note` as it reads a stored
    event, its four fields by name), or the same decode done more cheaply.

    The library's JSON object hook is a chain of lookups and `try`s per object,
    and each event pays for its class and id convertor being found again.
    `_fast_decoder` takes the same steps with what is found once per class, and
    hands the journal each event time's text as stored (`db.known_iso`): writing
    a time costs more than the rest of its journal row. Any event it is not sure
    to decode exactly as the mapper does (an upcast, an odd state) goes to the
    mapper, errors included; with a cipher or a compressor, another transcoder or
    mapper, the mapper does it all.
    """
    mapper: Any = ledger.mapper
    transcoder = mapper.transcoder
    if (
        mapper.cipher is None
        and mapper.compressor is None
        and type(transcoder) is JSONTranscoder
        and type(mapper) is Mapper
    ):
        return _fast_decoder(mapper, transcoder)
    return mapper.to_domain_event  # type: ignore[no-any-return]


def _fast_decoder(
    mapper: Any, transcoder: JSONTranscoder
) -> Callable[[StoredEvent | Note], Any]:
    by_name: dict[str, Callable[[Any], Any]] = {}
    for name, transcoding in transcoder.names.items():
        kind = type(transcoding)
        if kind is DatetimeAsISO:
            by_name[name] = _datetime_iso
        elif kind is UUIDAsHex:
            by_name[name] = _uuid_hex
        else:
            by_name[name] = transcoding.decode
    library_hook = transcoder._decode_obj

    def hook(d: dict[str, Any]) -> Any:
        if len(d) == 2 and "_type_" in d and "_data_" in d:
            decode = by_name.get(d["_type_"])
            if decode is None:
                return library_hook(d)  # its error
            return decode(d["_data_"])
        return d

    scan = json.JSONDecoder(object_hook=hook).scan_once  # type: ignore[attr-defined]
    #: (topic, type of the stored id) -> (event class, id convertor, version)
    classes: dict[
        tuple[str, type[Any]], tuple[type[Any], Callable[[Any], Any], int]
    ] = {}
    slow = mapper.to_domain_event
    new = object.__new__
    set_dict = object.__setattr__

    def decode(stored: StoredEvent | Note) -> Any:
        oid = stored.originator_id
        found = classes.get((stored.topic, type(oid)))
        if found is None:
            cls = resolve_topic(stored.topic)
            convert = find_id_convertor(cls, cast(Any, type(oid)))
            version = getattr(cls, "class_version", 1)
            found = classes[stored.topic, type(oid)] = (cls, convert, version)
        try:
            text = stored.state.decode("utf8")
            state, end = scan(text, 0)
        except Exception:  # the mapper raises its own error
            return slow(stored)
        if end != len(text) or type(state) is not dict:
            return slow(stored)  # whitespace after, not an object
        cls, convert, version = found
        if state.pop("class_version", 1) < version:
            return slow(stored)  # upcasts: the mapper's
        state["originator_id"] = convert(oid)
        state["originator_version"] = stored.originator_version
        event = new(cls)
        set_dict(event, "__dict__", state)
        return event

    return decode


def _datetime_iso(data: Any) -> datetime:
    """`DatetimeAsISO.decode` (its assertion an error here too), the text of a
    UTC time with microseconds kept for `iso`."""
    if type(data) is not str:
        raise TypeError(data)
    moment = datetime.fromisoformat(data)
    if len(data) == 32 and data.endswith("+00:00") and data[19] == ".":
        known_iso(moment, data[:26] + "Z")
    return moment


def _uuid_hex(data: Any) -> UUID:
    """`UUIDAsHex.decode`."""
    if type(data) is not str:
        raise TypeError(data)
    return UUID(data)


def selector(ledger: Application[Any]) -> Select:
    """`select_notifications`, the same query read more cheaply.

    The library builds a frozen dataclass for every row, from a dict on
    PostgreSQL, and on SQLite parses a new UUID for each: on SQLite 4 us of the
    8 us a rebuild's read and decode costs per event. Here the same rows (the
    position is `rowid` on SQLite, `notification_id` on PostgreSQL, as in the
    library) become named tuples, and on SQLite each object's id is parsed once
    per call.
    """
    recorder: Any = ledger.recorder
    if isinstance(recorder, PostgresApplicationRecorder):
        return _postgres_selector(recorder)
    if not (
        isinstance(recorder, SQLiteApplicationRecorder)
        and recorder.datastore.originator_id_type == "uuid"
    ):

        def select(after: int, limit: int, stop: int | None) -> Sequence[Any]:
            return recorder.select_notifications(  # type: ignore[no-any-return]
                start=after, limit=limit, stop=stop, inclusive_of_start=False
            )

        return select

    columns = "rowid, originator_id, originator_version, topic, state"
    query = f"SELECT {columns} FROM {recorder.events_table_name} WHERE rowid>? "
    ids: dict[str, UUID] = {}

    def select_sqlite(after: int, limit: int, stop: int | None) -> Sequence[Any]:
        with recorder.datastore.transaction(commit=False) as cursor:
            if stop is None:
                cursor.execute(query + "ORDER BY rowid LIMIT ?", (after, limit))
            else:
                cursor.execute(
                    query + "AND rowid<=? ORDER BY rowid LIMIT ?", (after, stop, limit)
                )
            rows = cursor.fetchall()
        if len(ids) > 10_000:
            ids.clear()
        notes = []
        for position, hex_id, version, topic, state in rows:
            uuid = ids.get(hex_id)
            if uuid is None:
                uuid = ids[hex_id] = UUID(hex_id)
            notes.append(Note(position, uuid, version, topic, state))
        return notes

    return select_sqlite


def _postgres_selector(recorder: PostgresApplicationRecorder) -> Select:
    table = SQL("{0}.{1}").format(
        Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name)
    )
    # Only the lower bound goes to the server, even with a stop. Given a range,
    # a table whose statistics are stale (never analyzed: autovacuum off, or just
    # after a large write) is estimated to hold a few thousand rows in it, and the
    # planner sorts the whole range for every batch: 200 ms per batch of 5,000
    # at the start of a 200,000-event range, against 14 ms by the index. Ids are
    # unique, so (after, stop] holds at most stop - after rows: the limit cut to
    # that reads past the stop only across gaps, and those rows are dropped.
    query = SQL(
        "SELECT notification_id, originator_id, originator_version, topic, state"
        " FROM {0} WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
    ).format(table)

    def select_postgres(after: int, limit: int, stop: int | None) -> Sequence[Any]:
        if stop is not None:
            limit = min(limit, stop - after)
            if limit <= 0:
                return []
        with (
            recorder.datastore.get_connection() as conn,
            conn.cursor(row_factory=tuple_row) as cursor,
        ):
            cursor.execute(query, (after, limit), prepare=True)
            rows = cursor.fetchall()
        if stop is not None and rows and rows[-1][0] > stop:
            rows = [row for row in rows if row[0] <= stop]
        return [
            Note(position, oid, version, topic, bytes(state))
            for position, oid, version, topic, state in rows
        ]

    # retried as the library retries its own select (a connection of the pool
    # that went away)
    retried = retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    return cast(Select, retried(select_postgres))


def position(ledger: Application[Any]) -> int:
    """The last notification id the tables reflect (0: none)."""
    return view_for(ledger).max_tracking_id(APPLICATION_NAME) or 0


#: hears the notification position a piece of long work has reached
Progress = Callable[[int], None]


def fraction_of(head: int, report: Callable[[float], None]) -> Progress:
    """A `Progress` that reports its position as a fraction of `head`."""

    def progress(at: int) -> None:
        report(min(at / head, 1.0) if head else 1.0)

    return progress


def catch_up(
    ledger: Application[Any],
    batch: int = 500,
    stop: int | None = None,
    *,
    known: Mapping[int, Any] | None = None,
    on_batch: Progress | None = None,
) -> int:
    """Apply every notification after the tracked position (up to `stop`, if
    given); returns how many this call applied. `known` are events a caller
    already decoded (the engine's followers), by notification id; `on_batch`
    hears the position each committed batch reached."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    view = view_for(ledger)
    decode = decoder(ledger)
    select = selector(ledger)
    applied = 0
    while True:
        last = view.max_tracking_id(APPLICATION_NAME) or 0
        if stop is not None and last >= stop:
            return applied
        notifications = select(last, batch, stop)
        if not notifications:
            return applied
        # Decoded one at a time as applied: a batch of decoded events held at once
        # costs the garbage collector more than the decoding itself.
        items: Iterator[tuple[int, Any]]
        if known:
            items = (
                (n.id, event if (event := known.get(n.id)) is not None else decode(n))
                for n in notifications
            )
        else:
            items = ((n.id, decode(n)) for n in notifications)
        try:
            apply_batch(view, items, notifications[-1].id)
        except IntegrityError:
            # Another follower applied (part of) this batch first: go on from
            # where it got to; a failure with the position unmoved is real.
            if (view.max_tracking_id(APPLICATION_NAME) or 0) > last:
                continue
            raise
        applied += len(notifications)
        if on_batch is not None:
            on_batch(notifications[-1].id)
        if len(notifications) < batch:
            return applied


def status(ledger: Application[Any]) -> dict[str, int]:
    """`position` (tracked), `head` (newest notification id) and `lag` (their gap
    in ids; PostgreSQL's rolled-back ids can make it overstate, never understate)."""
    at = position(ledger)
    head = ledger.recorder.max_notification_id() or 0
    return {"position": at, "head": head, "lag": max(head - at, 0)}


def rebuild(
    ledger: Application[Any],
    batch: int = 5000,
    *,
    stage_from: int | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> int:
    """Drop the tables and this follower's tracking row, then apply every event.

    Batches are ten times `catch_up`'s: nobody waits on a rebuild's next batch, and
    each batch pays a commit and a tracking read. The secondary indexes are built
    once at the end, cheaper than kept up row by row (a rebuild that stops midway
    still builds them, or the next process start does). On a SQLite file with at
    least `journal_stage.MIN_EVENTS` events and two cores, a child process writes
    the journal rows of the log's tail meanwhile (`journal_stage`); `stage_from`
    forces that, the child taking the events after that position.
    `on_progress` hears the fraction of the log applied after each batch (a
    rebuild of a million events takes a quarter of a minute)."""
    view = view_for(ledger)
    view.reset(indexes=False)
    head = ledger.recorder.max_notification_id() or 0
    on_batch = None
    if on_progress is not None:
        # 99 % once every batch is in: the index build comes after
        on_batch = fraction_of(head, lambda done: on_progress(min(done, 0.99)))
    try:
        stage = _stage(ledger, view, head, stage_from)
        if stage is None:
            applied = catch_up(ledger, batch=batch, on_batch=on_batch)
        else:
            applied = _rebuild_staged(ledger, view, batch, stage, on_batch)
            applied += catch_up(ledger, batch=batch, on_batch=on_batch)
    finally:
        view.create_indexes()
    if on_progress is not None:
        on_progress(1.0)
    return applied


def _stage(
    ledger: Application[Any], view: View, head: int, stage_from: int | None
) -> journal_stage.Stage | None:
    """The child and its scratch file, if one should help and could start (a
    child that cannot start, or a scratch file that cannot be made, leaves the
    rebuild to do it all, as it would without)."""
    if not isinstance(view, SQLiteProjectionView):
        return None
    pool = view.datastore.pool
    if pool.is_sqlite_memory_mode:
        return None
    if stage_from is None:
        if head < journal_stage.MIN_EVENTS or (os.cpu_count() or 1) < 2:
            return None
        stage_from = int(head * journal_stage.HEAD_SHARE)
    if not 0 <= stage_from < head:
        return None
    try:
        return journal_stage.Stage(
            Path(pool.db_name), stage_from, head, dict(ledger.env)
        )
    except (OSError, sqlite3.Error):
        return None


def _rebuild_staged(
    ledger: Application[Any],
    view: View,
    batch: int,
    stage: journal_stage.Stage,
    on_batch: Progress | None = None,
) -> int:
    """`catch_up` up to the child's stop on a connection of its own (the scratch
    file is attached to it), each batch's staged journal rows copied in its
    transaction."""
    decode, select = decoder(ledger), selector(ledger)
    path, start, stop = stage.source, stage.start, stage.stop
    conn: sqlite3.Connection | None = None
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=30)
        conn.row_factory = sqlite3.Row
        stage.attach(conn)
        last = applied = 0
        while notes := select(last, batch, stop):
            last_id = notes[-1].id
            after = max(last, start)
            upto = min(last_id, stage.covered(conn)) if last_id > start else after
            staged = (after, upto) if upto > after else None
            with immediate(conn) as cursor:
                db = Db(cursor, "sqlite")
                view.record_tracking(db, Tracking(APPLICATION_NAME, last_id))
                apply_items(db, ((n.id, decode(n)) for n in notes), staged=staged)
                if staged:
                    stage.copy(conn, *staged)
            applied += len(notes)
            last = last_id
            if on_batch is not None:
                on_batch(last)
        return applied
    finally:
        stage.close()
        if conn is not None:
            conn.close()
