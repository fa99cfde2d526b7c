"""The projection view: the tables and the follower's tracking row, in one store.

`SQLiteProjectionView` and `PostgresProjectionView` are eventsourcing tracking
recorders built on the Ledger's own datastore (`ledger.factory.tracking_recorder`),
so a batch of events becomes table rows *and* the "projections" tracking row in one
transaction: a crash loses or doubles nothing. On SQLite the tracking table is the
library's shared `tracking` (one row per follower); on PostgreSQL it is the
Ledger's `<name>_tracking` in the Ledger's schema. The tables themselves are
described in `schema.py` (CloudStack's `volumes`, `storage_pool`, ...).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, ClassVar, Protocol
from weakref import WeakKeyDictionary

from eventsourcing.application import Application
from eventsourcing.persistence import Tracking
from eventsourcing.postgres import (
    PostgresDatastore,
    PostgresFactory,
    PostgresTrackingRecorder,
)
from eventsourcing.sqlite import SQLiteDatastore, SQLiteFactory, SQLiteTrackingRecorder
from psycopg.sql import SQL, Composed, Identifier

# Importing the family modules registers their handlers on `project`.
from projections import infra, templates, volumes  # noqa: F401
from projections.db import Db
from projections.journal import append, journal_row
from projections.routing import handler
from projections.schema import (
    INDEX_NAMES,
    TABLE_NAMES,
    Dialect,
    postgres_ddl,
    sqlite_ddl,
)

#: the name of this follower's tracking row
APPLICATION_NAME = "projections"


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
        with _transaction(self.datastore, db) as cursor:
            for statement in sqlite_ddl(tables=False):
                cursor.execute(statement)

    def drop_indexes(self, db: Db) -> None:
        for name in INDEX_NAMES:
            db.cursor.execute(f"DROP INDEX IF EXISTS {name}")

    def missing_indexes(self) -> set[str]:
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
            return set(INDEX_NAMES) - {row[0] for row in cursor.fetchall()}


class PostgresProjectionView(PostgresTrackingRecorder):
    dialect: ClassVar[Dialect] = "postgres"

    def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        schema = Identifier(self.datastore.schema)
        self.ddl: list[Composed] = [
            SQL(template).format(schema)  # type: ignore[arg-type]
            for template, _ in postgres_ddl()
        ]
        self.sql_create_statements.extend(self.ddl)
        self.table_ddl: list[Composed] = [
            SQL(template).format(schema)  # type: ignore[arg-type]
            for template, _ in postgres_ddl(indexes=False)
        ]
        self.index_ddl: list[Composed] = [
            SQL(template).format(schema)  # type: ignore[arg-type]
            for template, _ in postgres_ddl(tables=False)
        ]
        self.search_path = SQL("SET LOCAL search_path TO {0}").format(schema)

    @contextmanager
    def view_transaction(self, *, commit: bool) -> Iterator[Db]:
        with self.datastore.transaction(commit=commit) as cursor:
            if not commit:  # one consistent snapshot for every query of a reader
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cursor.execute(self.search_path)
            yield Db(cursor, self.dialect)

    def record_tracking(self, db: Db, tracking: Tracking) -> None:
        self._insert_tracking(db.cursor, tracking)

    def create_indexes(self, db: Db | None = None, *, wait: bool = True) -> None:
        """The secondary indexes, in `db`'s transaction or in one of their own,
        under the lock `ledger.store.ddl_lock` takes (concurrent CREATEs collide
        on PostgreSQL); without `wait`, nothing if another session holds it."""
        with _transaction(self.datastore, db) as cursor:
            lock = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
            cursor.execute(f"SELECT {lock}(hashtext('storctl_ddl')) AS locked")
            if cursor.fetchone()["locked"] is False:
                return
            for statement in self.index_ddl:
                cursor.execute(statement)

    def drop_indexes(self, db: Db) -> None:
        schema = Identifier(self.datastore.schema)
        for name in INDEX_NAMES:
            db.cursor.execute(
                SQL("DROP INDEX IF EXISTS {0}.{1}").format(schema, Identifier(name))
            )

    def missing_indexes(self) -> set[str]:
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = %s",
                (self.datastore.schema,),
            )
            return set(INDEX_NAMES) - {row["indexname"] for row in cursor.fetchall()}

    def reset(self, *, indexes: bool = True) -> None:
        """Drop and recreate the tables; forget this follower's position. Without
        `indexes`, the secondary indexes wait for `create_indexes`."""
        schema = Identifier(self.datastore.schema)
        with self.datastore.transaction(commit=True) as cursor:
            for name in TABLE_NAMES:
                cursor.execute(
                    SQL("DROP TABLE IF EXISTS {0}.{1}").format(schema, Identifier(name))
                )
            for statement in self.ddl if indexes else self.table_ddl:
                cursor.execute(statement)
            cursor.execute(
                SQL("DELETE FROM {0}.{1} WHERE application_name = %s").format(
                    schema, Identifier(self.tracking_table_name)
                ),
                (APPLICATION_NAME,),
            )


@contextmanager
def _transaction(datastore: Any, db: Db | None) -> Iterator[Any]:
    """`db`'s cursor (its transaction goes on), or a new committed transaction."""
    if db is not None:
        yield db.cursor
        return
    with datastore.transaction(commit=True) as cursor:
        yield cursor


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
    elif isinstance(factory, PostgresFactory):
        view = factory.tracking_recorder(PostgresProjectionView)
    else:
        raise TypeError(
            f"projections need SQLite or PostgreSQL, not {type(factory).__name__}"
        )
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


@contextmanager
def reader(ledger: Application[Any]) -> Iterator[Reader]:
    """`with reader(ledger) as r: list_pools(r)`; the tables as last caught up."""
    with view_for(ledger).view_transaction(commit=False) as db:
        yield Reader(db)
