"""The projection view on PostgreSQL: the tables and the tracking row in the
Ledger's schema, written in the Ledger's transactions.

Apart from `view.py` so that psycopg is imported only when a PostgreSQL ledger is
opened: a SQLite ledger's commands never pay for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from eventsourcing.persistence import Tracking
from eventsourcing.postgres import (
    PostgresDatastore,
    PostgresFactory,
    PostgresTrackingRecorder,
)
from psycopg.sql import SQL, Composed, Identifier

from projections.db import Db, in_transaction
from projections.schema import (
    APPLICATION_NAME,
    INDEX_NAMES,
    TABLE_NAMES,
    Dialect,
    postgres_ddl,
)


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
        with in_transaction(self.datastore, db) as cursor:
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


def postgres_view(factory: Any) -> PostgresProjectionView:
    """The view on a PostgreSQL ledger's factory (`view.view_for`'s other case)."""
    if not isinstance(factory, PostgresFactory):
        raise TypeError(
            f"projections need SQLite or PostgreSQL, not {type(factory).__name__}"
        )
    return factory.tracking_recorder(PostgresProjectionView)
