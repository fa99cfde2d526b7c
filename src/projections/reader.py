"""Read-only access to the projected tables, and the cheap way into a SQLite file's.

Every read command (`volume list`, `pool show`, `history`, `audit`, ...) reads the
tables through a `Reader`. The usual way in (`view.reader`) opens the Ledger, an
eventsourcing Application, and catches the tables up first: most of a command's
start-up time goes to importing that write side. On SQLite the tables and the
events are in one file, so `current_tables` opens it with `sqlite3` alone and, in
one read transaction, compares the projections' tracking row with the newest event:
when the tables are caught up (the usual case, every write command catches them up
before it returns), they are read right there; otherwise it yields None and the
caller goes the usual way. Nothing here writes, creates or imports eventsourcing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from projections.db import Db
from projections.schema import APPLICATION_NAME, Dialect

#: the event table of eventsourcing's SQLite recorder (its rowid is the position)
SQLITE_EVENTS = "stored_events"


class Reader:
    """Read-only access to the tables, inside one read transaction."""

    def __init__(self, db: Db) -> None:
        self._db = db

    @property
    def dialect(self) -> Dialect:
        return self._db.dialect

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return self._db.all(sql, params)

    def one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        return self._db.one(sql, params)

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._db.scalar(sql, params)


def connect_existing(path: Path, timeout: float = 30) -> sqlite3.Connection | None:
    """A query-only connection to the SQLite file at `path`, or None when there is
    no such file or it cannot be opened (`mode=rw`: never creates one)."""
    try:
        conn = sqlite3.connect(
            f"file:{quote(str(path.absolute()))}?mode=rw",
            uri=True,
            isolation_level=None,
            timeout=timeout,
        )
    except sqlite3.Error:
        return None
    conn.row_factory = sqlite3.Row
    try:
        conn.execute("PRAGMA query_only=ON")
    except sqlite3.Error:  # not a database
        conn.close()
        return None
    return conn


@contextmanager
def current_tables(path: Path) -> Iterator[Reader | None]:
    """A `Reader` on the SQLite ledger at `path` if its tables reflect every event,
    else None (no file, no tables yet, a file that is no ledger, tables never
    caught up, or events they have not caught up with). The check and the reads
    share one read transaction, so what is read is the state the check saw."""
    conn = connect_existing(path)
    if conn is None:
        yield None
        return
    try:
        try:
            conn.execute("BEGIN")
            head = conn.execute(f"SELECT MAX(rowid) FROM {SQLITE_EVENTS}").fetchone()
            at = conn.execute(
                "SELECT notification_id FROM tracking WHERE application_name = ?",
                (APPLICATION_NAME,),
            ).fetchone()
        except sqlite3.Error:
            yield None
            return
        if at is None or at[0] != (head[0] or 0):  # behind, or never caught up
            yield None
            return
        yield Reader(Db(conn.cursor(), "sqlite"))
    finally:
        conn.close()
