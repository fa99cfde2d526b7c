"""Reading the event log: notifications after a position, and aggregates' events
after the versions a cache holds, each in one statement.

The library's own reads build a frozen dataclass per row and parse a UUID per row;
these return the same rows as named tuples (`Note`), which the mapper and
`decoder` read as they read stored events.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, cast
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder
from eventsourcing.utils import retry

if TYPE_CHECKING:
    from eventsourcing.postgres import PostgresApplicationRecorder

#: (after, limit, stop) -> the notifications after position `after`, in order
Select = Callable[[int, int, int | None], Sequence[Any]]


class Note(NamedTuple):
    """A notification as the mapper reads it (a stored event and its position)."""

    id: int
    originator_id: UUID
    originator_version: int
    topic: str
    state: bytes


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
    if _on_postgres(recorder):
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


def _on_postgres(recorder: Any) -> bool:
    """Whether `recorder` is the library's PostgreSQL one, without importing it
    (and psycopg) for a SQLite ledger: if its module was never imported, no
    recorder can be one of its classes."""
    postgres = sys.modules.get("eventsourcing.postgres")
    return postgres is not None and isinstance(
        recorder, postgres.PostgresApplicationRecorder
    )


def _postgres_selector(recorder: PostgresApplicationRecorder) -> Select:
    from psycopg.rows import tuple_row
    from psycopg.sql import SQL, Identifier

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


def events_after(recorder: Any, versions: dict[UUID, int]) -> list[StoredEvent]:
    """The stored events of each aggregate after the given version, in one query
    (each term is a range of the events table's primary key); from a store in
    memory (`replay verify`'s), one read per aggregate."""
    ids = list(versions)
    if not hasattr(recorder, "datastore"):  # POPO: no SQL to join the reads in
        return sorted(
            (e for i in ids for e in recorder.select_events(i, gt=versions[i])),
            key=lambda e: e.originator_version,
        )
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


def originators(recorder: Any, topic: str) -> list[UUID]:
    """The ids of the aggregates with an event of `topic`, in log order (a few:
    the zones, which are never removed)."""
    ids: list[UUID] = []
    start: int | None = None
    while True:
        notes = recorder.select_notifications(
            start=start, limit=1000, topics=[topic], inclusive_of_start=False
        )
        if not notes:
            return ids
        ids += [n.originator_id for n in notes]
        start = notes[-1].id
