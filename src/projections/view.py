"""The projection view: the tables and the follower's tracking row, in one store.

`SQLiteProjectionView` and `PostgresProjectionView` are eventsourcing tracking
recorders built on the Ledger's own datastore (`ledger.factory.tracking_recorder`),
so a batch of events becomes table rows *and* the "projections" tracking row in one
transaction: a crash loses or doubles nothing. On SQLite the tracking table is the
library's shared `tracking` (one row per follower); on PostgreSQL it is the
Ledger's `<name>_tracking` in the Ledger's schema. The tables themselves are
described in `schema.py` (CloudStack's `volumes`, `storage_pool`, ...). The
PostgreSQL view is in `postgres_view.py`, imported only for a PostgreSQL ledger, and
`Reader` in `reader.py`, which a caught-up SQLite file is read through without any
of this (`cli.context`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, ClassVar, Protocol
from weakref import WeakKeyDictionary

from eventsourcing.application import Application
from eventsourcing.persistence import Tracking
from eventsourcing.sqlite import SQLiteDatastore, SQLiteFactory, SQLiteTrackingRecorder

# Importing the family modules registers their handlers on `project`.
from projections import infra, templates, volumes  # noqa: F401
from projections.db import Db, in_transaction
from projections.journal import append, journal_row
from projections.reader import Reader
from projections.routing import handler
from projections.schema import (
    APPLICATION_NAME,
    INDEX_NAMES,
    TABLE_NAMES,
    Dialect,
    sqlite_ddl,
)

__all__ = ["APPLICATION_NAME", "Reader", "View", "reader", "view_for"]


class View(Protocol):
    dialect: ClassVar[Dialect]

    def view_transaction(self, *, commit: bool) -> AbstractContextManager[Db]: ...

    def record_tracking(self, db: Db, tracking: Tracking) -> None: ...

    def max_tracking_id(self, application_name: str) -> int | None: ...

    def reset(self, *, indexes: bool = True) -> None: ...

    def create_indexes(self, db: Db | None = None, *, wait: bool = True) -> None: ...

    def drop_indexes(self, db: Db) -> None: ...

    def missing_indexes(self) -> set[str]: ...


#: `PRAGMA secure_delete` as read back -> as set
SECURE_DELETE = {0: "OFF", 1: "ON", 2: "FAST"}


class SQLiteProjectionView(SQLiteTrackingRecorder):
    dialect: ClassVar[Dialect] = "sqlite"

    def __init__(self, datastore: SQLiteDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)

    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(), *sqlite_ddl()]

    @contextmanager
    def view_transaction(self, *, commit: bool) -> Iterator[Db]:
        with self.datastore.transaction(commit=commit) as cursor:
            yield Db(cursor, self.dialect)

    def record_tracking(self, db: Db, tracking: Tracking) -> None:
        self._insert_tracking(db.cursor, tracking)

    def reset(self, *, indexes: bool = True) -> None:
        """Drop and recreate the tables; forget this follower's position. Without
        `indexes`, the secondary indexes wait for `create_indexes`."""
        with self.datastore.transaction(commit=True) as cursor:
            # SQLite as Debian builds it has SECURE_DELETE on: dropping the tables
            # would overwrite every page they freed with zeros (400 MB for a
            # million events: 1.8 s of a 15 s rebuild with the file in the page
            # cache, 11.6 s without). Everything in them is derived from the
            # events in the same file, so the zeros protect nothing; FAST still
            # clears what costs no extra write. The connection's setting is put
            # back (it is the pool's).
            cursor.execute("PRAGMA secure_delete")
            was = SECURE_DELETE[cursor.fetchone()[0]]
            cursor.execute("PRAGMA secure_delete=FAST")
            try:
                for name in TABLE_NAMES:
                    cursor.execute(f"DROP TABLE IF EXISTS {name}")
            finally:
                cursor.execute(f"PRAGMA secure_delete={was}")
            for statement in sqlite_ddl(indexes=indexes):
                cursor.execute(statement)
            cursor.execute(
                "DELETE FROM tracking WHERE application_name = ?", (APPLICATION_NAME,)
            )

    def create_indexes(self, db: Db | None = None, *, wait: bool = True) -> None:
        """The secondary indexes, in `db`'s transaction or in one of their own."""
        with in_transaction(self.datastore, db) as cursor:
            for statement in sqlite_ddl(tables=False):
                cursor.execute(statement)

    def drop_indexes(self, db: Db) -> None:
        for name in INDEX_NAMES:
            db.cursor.execute(f"DROP INDEX IF EXISTS {name}")

    def missing_indexes(self) -> set[str]:
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
            return set(INDEX_NAMES) - {row[0] for row in cursor.fetchall()}


_VIEWS: WeakKeyDictionary[Application[Any], View] = WeakKeyDictionary()


def view_for(ledger: Application[Any]) -> View:
    """The projection view on `ledger`'s datastore (tables created on first use)."""
    cached = _VIEWS.get(ledger)
    if cached is not None:
        return cached
    factory = ledger.factory
    view: View
    if isinstance(factory, SQLiteFactory):
        lite = factory.tracking_recorder(SQLiteProjectionView)
        if not isinstance(lite, SQLiteProjectionView):  # pragma: no cover
            raise TypeError(type(lite).__name__)
        view = lite
    else:  # psycopg is imported here, by the first PostgreSQL ledger only
        from projections.postgres_view import postgres_view

        view = postgres_view(factory)
    if view.missing_indexes():
        # A rebuild builds the indexes at its end; one killed before that left
        # them out, and processes that find the tables skip the DDL. (Not waiting:
        # a session doing DDL now may be this very process, see `cli.context`.)
        view.create_indexes(wait=False)
    _VIEWS[ledger] = view
    return view


def apply_batch(view: View, items: Iterable[tuple[int, Any]], last_id: int) -> None:
    """Apply (position, event) pairs and record `last_id`, all in one transaction.

    The tracking row is written first: it takes the write lock at once (no stale
    SQLite read snapshot to upgrade), and a follower that lost the race to this
    position fails there with `IntegrityError` before doing any work.
    """
    with view.view_transaction(commit=True) as db:
        view.record_tracking(db, Tracking(APPLICATION_NAME, last_id))
        apply_items(db, items, pipelined=True)


def apply_items(
    db: Db,
    items: Iterable[tuple[int, Any]],
    *,
    pipelined: bool = False,
    staged: tuple[int, int] | None = None,
) -> None:
    """Apply (position, event) pairs to the tables through `db` (no tracking);
    `pipelined` when nothing else uses the connection meanwhile (`Db.pipelined`:
    a replay's copy writes on it from another thread). Positions after
    `staged[0]` up to `staged[1]` get no journal row here: the caller copies
    theirs from a rebuild's staging file (`journal_stage`)."""
    rows = []
    after, last = staged or (0, 0)
    with db.pipelined() if pipelined else contextlib.nullcontext():
        for position, event in items:
            db.position = position
            if not after < position <= last:
                rows.append(journal_row(position, event))
            handler(type(event))(event, db)
        db.flush()
    append(db, rows)


@contextmanager
def reader(ledger: Application[Any]) -> Iterator[Reader]:
    """`with reader(ledger) as r: list_pools(r)`; the tables as last caught up."""
    with view_for(ledger).view_transaction(commit=False) as db:
        yield Reader(db)
