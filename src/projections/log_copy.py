"""Copying the event log between ledgers, by the database where it can: the raw
inserts and `INSERT ... SELECT`s `replay` runs inside its one transaction.

A replayed prefix is written either chunk by chunk from Python (`inserter`: the
library's row layout, by `executemany` on SQLite, binary COPY on PostgreSQL), or,
when both ledgers are in reach of one connection (SQLite files attached, PostgreSQL
schemas of one database), by position range in the database itself while Python
projects the same chunk (`RangeCopier`). The connections these need (`attached`,
`alone`) are opened here too.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from psycopg.sql import SQL, Identifier

from projections.db import Db, immediate

Inserter = Callable[[list[Any]], list[int]]
#: (after, last): copies the source's rows of the positions in (after, last]
RangeCopy = Callable[[int, int], None]

#: the name a source SQLite file is attached under, for the length of a copy
ATTACHED = "replay_source"
#: how long a copy on a connection of its own waits for another's write lock
BUSY_MS = 5000


def sqlite_file(source: Application[Any] | None) -> str | None:
    """The file of a SQLite source that a copy can attach (not one in memory)."""
    if source is None:
        return None
    recorder: Any = source.recorder
    if not (
        isinstance(recorder, SQLiteApplicationRecorder)
        and recorder.datastore.originator_id_type == "uuid"
    ):
        return None
    pool = recorder.datastore.pool
    name = str(pool.db_name)
    if pool.is_sqlite_memory_mode or not name or name.startswith("file:"):
        return None
    return name


@contextmanager
def attached(datastore: Any, path: str) -> Iterator[Any]:
    """A write transaction on one connection of `datastore` with the file at
    `path` attached (SQLite refuses ATTACH inside a transaction, so before it;
    detached after, whatever happened, so no pooled connection keeps it)."""
    with datastore.get_connection(commit=True) as conn:
        conn.cursor().execute(f"ATTACH DATABASE ? AS {ATTACHED}", (path,))
        try:
            with conn.transaction(commit=True) as cursor:
                yield cursor
        finally:
            conn.cursor().execute(f"DETACH DATABASE {ATTACHED}")


@contextmanager
def alone(path: str, source: str | None) -> Iterator[sqlite3.Cursor]:
    """A write transaction on the SQLite file at `path` through a connection of
    its own, the only one open on it, in rollback-journal mode; the file is in
    WAL mode again after it (the library and the engine's readers expect it).
    `source`, a SQLite file, is attached for the length of it.

    A copy is one transaction of hundreds of megabytes. In WAL mode each page is
    written twice, to the log and then by the checkpoint at commit into the file
    (measured: 1 to 2 s of an 8 s copy of 500,000 events), and pages spilled to
    the log mid-transaction again when they change. A new file's rollback
    journal holds next to nothing (its pages did not exist before), so each page
    is written once, straight into the file. All or nothing holds as in WAL: an
    error rolls back, and a process killed midway leaves the journal, which the
    next connection to open the file rolls back. (Out of WAL is refused while
    another connection has the file open: the copy then runs in WAL mode, only
    slower.)"""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        conn.row_factory = sqlite3.Row
        with suppress(sqlite3.OperationalError):  # "locked": another is open
            conn.execute("PRAGMA busy_timeout=0")
            conn.execute("PRAGMA main.journal_mode=DELETE")
        conn.execute(f"PRAGMA busy_timeout={BUSY_MS}")
        if source is not None:
            conn.execute(f"ATTACH DATABASE ? AS {ATTACHED}", (source,))
        with immediate(conn) as cursor:
            yield cursor
    finally:
        # WAL again, for the target only (not the attached source); the library
        # would set it on its next open anyway, so a failure here is no error.
        with suppress(sqlite3.Error):
            conn.execute("PRAGMA main.journal_mode=WAL")
        conn.close()


def sqlite_copier(
    recorder: Any, source: Any, connection: sqlite3.Connection
) -> tuple[RangeCopy, Callable[[], int]]:
    """The source's rows of a range of positions copied by one statement, with a
    cursor of its own on `connection` (rowids kept: the target is empty), and
    the count of the target's events."""
    table, from_table = recorder.events_table_name, source.events_table_name
    columns = "rowid, originator_id, originator_version, topic, state"
    copy_sql = (
        f"INSERT INTO main.{table} ({columns}) SELECT {columns}"
        f" FROM {ATTACHED}.{from_table} WHERE rowid > ? AND rowid <= ? ORDER BY rowid"
    )
    own = connection.cursor()

    def copy(after: int, last: int) -> None:
        own.execute(copy_sql, (after, last))

    def count() -> int:
        own.execute(f"SELECT count(*) FROM main.{table}")
        return int(own.fetchone()[0])

    return copy, count


def postgres_copier(
    recorder: Any, source: Any, cursor: Any
) -> tuple[RangeCopy, Callable[[], int]]:
    """As `sqlite_copier`, from another schema of the same database; the
    sequence is then moved past the copied positions. The table is locked first
    and its channel notified, as the library's insert does."""
    table = SQL("{0}.{1}").format(
        Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name)
    )
    copy_sql = SQL(
        "INSERT INTO {0} (notification_id, {1}) SELECT notification_id, {1}"
        " FROM {2}.{3} WHERE notification_id > %s AND notification_id <= %s"
        " ORDER BY notification_id"
    ).format(
        table,
        SQL("originator_id, originator_version, topic, state"),
        Identifier(source.datastore.schema),
        Identifier(source.events_table_name),
    )
    sequence = SQL("SELECT setval(pg_get_serial_sequence(%s, 'notification_id'), %s)")
    qualified = table.as_string(cursor)
    recorder._lock_table(cursor)
    recorder._notify_channel(cursor)
    own = cursor.connection.cursor()  # psycopg: one cursor per thread

    def copy(after: int, last: int) -> None:
        own.execute(copy_sql, (after, last))
        own.execute(sequence, (qualified, last))

    def count() -> int:
        cursor.execute(SQL("SELECT count(*) AS n FROM {0}").format(table))
        return int(cursor.fetchone()["n"])

    return copy, count


class RangeCopier:
    """Copies chunks by position range in a worker thread, on the copy's own
    connection and transaction, while the calling thread projects them.

    A chunk of notifications read in order from the source is every row of the
    positions after the previous chunk's last up to its own last: copied so, with
    those positions, which are therefore known before the rows are in. The
    database does the copy with the GIL released (SQLite's step, psycopg's wait),
    so it costs the projection next to nothing; both drivers serialize the two
    threads' statements on the connection, and they touch different tables.
    """

    def __init__(
        self, copy: RangeCopy, count: Callable[[], int], worker: Executor
    ) -> None:
        self._copy, self._count, self._worker = copy, count, worker
        self._after = 0
        self._pending: deque[Future[None]] = deque()
        #: rows the chunks so far hold, which the target must then hold
        self.copied = 0

    def __call__(self, chunk: list[Any]) -> list[int]:
        while self._pending and self._pending[0].done():
            self._pending.popleft().result()  # a failed copy fails the copy now
        positions = [note.id for note in chunk]
        self._pending.append(
            self._worker.submit(self._copy, self._after, positions[-1])
        )
        self._after = positions[-1]
        self.copied += len(chunk)
        return positions

    def finish(self) -> None:
        """Every chunk copied (or the first failure raised), and the target's
        `count` of events that of the chunks: no row of the ranges was missing
        or more (counted once at the end: SQLite's change count is the
        connection's, which the two threads' statements both move)."""
        while self._pending:
            self._pending.popleft().result()
        if self._count() != self.copied:  # pragma: no cover - never reused
            raise RuntimeError("the source changed under the copy")


@contextmanager
def copying(
    copier: tuple[RangeCopy, Callable[[], int]],
) -> Iterator[RangeCopier]:
    """A `RangeCopier` whose worker is gone when this exits: nothing is left
    running on the connection when its transaction commits or rolls back."""
    worker = ThreadPoolExecutor(1, thread_name_prefix="replay-copy")
    try:
        yield RangeCopier(*copier, worker)
    finally:
        worker.shutdown(wait=True, cancel_futures=True)


def same_postgres(source: Application[Any], view: Any) -> bool:
    """Whether `source` is a PostgreSQL ledger in the database of `view` (its
    tables then readable from the copy's own transaction)."""
    recorder: Any = source.recorder
    if view.dialect != "postgres" or not isinstance(
        recorder, PostgresApplicationRecorder
    ):
        return False

    def where(datastore: Any) -> tuple[Any, ...]:
        with datastore.get_connection() as conn:
            info = conn.info
            return (info.host, info.port, info.dbname, info.user)

    return where(recorder.datastore) == where(view.datastore)


def inserter(recorder: Any, db: Db) -> Callable[[list[Any]], list[int]]:
    """Inserts a chunk of stored events with `db`'s cursor, inside its
    transaction; returns their positions. The library's table and row layout,
    without the transaction (and on PostgreSQL the pipeline) its `insert_events`
    opens."""
    cursor = db.cursor
    if db.dialect == "postgres":
        return postgres_inserter(recorder, cursor)

    def last_rowid() -> int:
        cursor.execute(recorder.select_max_notification_id_statement)
        return int(cursor.fetchone()[0] or 0)

    after = last_rowid()
    hex_ids: dict[int, str] = {}  # uuid -> its hex, as the library stores it

    def hex_of(uuid: UUID) -> str:
        known = hex_ids.get(uuid.int)
        if known is None:
            if len(hex_ids) > 10_000:
                hex_ids.clear()
            known = hex_ids[uuid.int] = uuid.hex
        return known

    def insert_sqlite(chunk: list[Any]) -> list[int]:
        # The library's statement and row, by executemany (its own insert goes row
        # by row to read each rowid back); inside this transaction the rowids are
        # the next ones, which is checked.
        nonlocal after
        cursor.executemany(
            recorder.insert_events_statement,
            [
                (hex_of(e.originator_id), e.originator_version, e.topic, e.state)
                for e in chunk
            ],
        )
        first, after = after + 1, after + len(chunk)
        if last_rowid() != after:  # pragma: no cover - SQLite's rowid rule
            raise RuntimeError("copied events did not get consecutive positions")
        return list(range(first, after + 1))

    return insert_sqlite


def postgres_inserter(recorder: Any, cursor: Any) -> Callable[[list[Any]], list[int]]:
    """COPY (binary) into the events table, then the positions it was given read
    back. The library's insert sends a composite array that psycopg writes as
    text, escaping every field with regexes: most of a copy's time. As the
    library does, the table is locked first (inserts commit in position order)
    and its channel notified."""
    table = SQL("{0}.{1}").format(
        Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name)
    )
    copy_sql = SQL(
        "COPY {0} (originator_id, originator_version, topic, state)"
        " FROM STDIN (FORMAT BINARY)"
    ).format(table)
    ids_sql = SQL(
        "SELECT notification_id FROM {0} WHERE notification_id > %s"
        " ORDER BY notification_id"
    ).format(table)
    types = [recorder.datastore.originator_id_type, "int8", "text", "bytea"]
    recorder._lock_table(cursor)
    recorder._notify_channel(cursor)
    cursor.execute(recorder.max_notification_id_statement)
    after = [int(cursor.fetchone()["max"] or 0)]

    def insert_postgres(chunk: list[Any]) -> list[int]:
        with cursor.copy(copy_sql) as copy:
            copy.set_types(types)
            for event in chunk:
                copy.write_row(
                    (
                        event.originator_id,
                        event.originator_version,
                        event.topic,
                        event.state,
                    )
                )
        # The ids a sequence gave the rows in order; nobody else inserts while
        # this transaction holds the table lock.
        cursor.execute(ids_sql, (after[0],))
        positions = [row["notification_id"] for row in cursor.fetchall()]
        if len(positions) != len(chunk):  # pragma: no cover - the lock forbids it
            raise RuntimeError("another writer inserted events during the copy")
        after[0] = positions[-1]
        return positions

    return insert_postgres
