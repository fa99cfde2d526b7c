"""Reading the hash chain back: the log and its recorded hashes by position, for
`ledger verify` (`walk`), `export`, and the lookups a verdict needs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from psycopg.sql import SQL, Identifier

from ledger.hashchain import Break, Sealed, Stored, Walked, first_break
from ledger.store.sealing import PAGE


def stored_rows(recorder: Any) -> Iterator[Stored]:
    """Every stored event, by position (the library's columns)."""
    events = recorder.events_table_name
    query: Any
    if _postgres(recorder):
        table = SQL("{0}.{1}").format(
            Identifier(recorder.datastore.schema), Identifier(events)
        )
        query = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state"
            " FROM {0} WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
        ).format(table)
    else:
        query = (
            "SELECT rowid, originator_id, originator_version, topic, state"
            f" FROM {events} WHERE rowid > ? ORDER BY rowid LIMIT ?"
        )
    for row in _pages(recorder, query):
        yield Stored(row[0], row[1], row[2], row[3], bytes(row[4]))


def sealed_rows(recorder: Any) -> Iterator[Sealed]:
    """Every recorded hash row, by position."""
    columns = (
        "notification_id, originator_id, originator_version,"
        " content, stream, log, db_user"
    )
    if _postgres(recorder):
        query: Any = SQL(
            "SELECT " + columns + " FROM {0} WHERE notification_id > %s"
            " ORDER BY notification_id LIMIT %s"
        ).format(recorder.hashes_table)
    else:
        query = (
            f"SELECT {columns} FROM {recorder.hashes_table_name}"
            " WHERE notification_id > ? ORDER BY notification_id LIMIT ?"
        )
    for r in _pages(recorder, query):
        yield Sealed(r[0], r[1], r[2], bytes(r[3]), bytes(r[4]), bytes(r[5]), r[6])


def _pages(recorder: Any, query: Any) -> Iterator[tuple[Any, ...]]:
    after = 0
    while True:
        if _postgres(recorder):
            with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
                curs.execute(query, (after, PAGE))
                rows = [tuple(r.values()) for r in curs.fetchall()]
        else:
            with recorder.datastore.transaction(commit=False) as c:
                c.execute(query, (after, PAGE))
                rows = [tuple(r) for r in c.fetchall()]
        yield from rows
        if len(rows) < PAGE:
            return
        after = rows[-1][0]


def where_recorded(recorder: Any, key: str, version: int) -> int | None:
    """The position the hash of (object, version) is recorded at, if any."""
    if _postgres(recorder):
        query: Any = SQL(
            "SELECT notification_id FROM {0} WHERE originator_id = %s"
            " AND originator_version = %s"
        ).format(recorder.hashes_table)
        with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(query, (key, version))
            row = curs.fetchone()
            return None if row is None else int(row["notification_id"])
    with recorder.datastore.transaction(commit=False) as c:
        c.execute(
            f"SELECT notification_id FROM {recorder.hashes_table_name}"
            " WHERE originator_id = ? AND originator_version = ?",
            (key, version),
        )
        found = c.fetchone()
        return None if found is None else int(found[0])


def walk(recorder: Any) -> Break | Walked:
    """`hashchain.first_break` over this store's log and hashes; on PostgreSQL
    each event's actor is also held to the role the server recorded."""
    return first_break(
        stored_rows(recorder),
        sealed_rows(recorder),
        lambda key, version: where_recorded(recorder, key, version),
        check_actor=_postgres(recorder),
    )


def holds_head(recorder: Any, head: bytes) -> bool:
    """Whether a log hash kept from an earlier verify is still in the chain."""
    if _postgres(recorder):
        query: Any = SQL("SELECT 1 AS one FROM {0} WHERE log = %s LIMIT 1").format(
            recorder.hashes_table
        )
        with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(query, (head,))
            return curs.fetchone() is not None
    with recorder.datastore.transaction(commit=False) as c:
        c.execute(
            f"SELECT 1 FROM {recorder.hashes_table_name} WHERE log = ? LIMIT 1", (head,)
        )
        return c.fetchone() is not None


def _postgres(recorder: object) -> bool:
    """The PostgreSQL recorder (`sealing_postgres`), known without importing it:
    psycopg stays unloaded on SQLite."""
    return bool(getattr(recorder, "records_session_user", False))
