"""Driving the projections: pull from the Ledger's notification log, apply, track.

SQLite's recorder cannot subscribe, so the follower always pulls: the notifications
after the tracked position (`selector`: the library's query, read more cheaply), a
batch at a time, each batch applied with its one tracking row in one transaction
(batching is what makes a rebuild fast). PostgreSQL ids may have gaps: the position
is the last id seen, never "the previous one plus one". Writes every table of
`schema.py`.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import (
    IntegrityError,
    Tracking,
)

from ledger.store.decoder import decoder as _decoder
from ledger.store.reader import selector
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


def position(ledger: Application[Any]) -> int:
    """The last notification id the tables reflect (0: none)."""
    return view_for(ledger).max_tracking_id(APPLICATION_NAME) or 0


def decoder(ledger: Application[Any]) -> Callable[[Any], Any]:
    """The log's decoder, handing event times' stored texts to the journal."""
    return _decoder(ledger, known_iso)


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
