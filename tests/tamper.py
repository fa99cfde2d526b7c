"""Editing stored history by hand, as a forger with the database would: raw SQL on
the events table of a SQLite file or a PostgreSQL schema (its append-only trigger
disabled first, which only the owner can do). Shared by the unit tests of
`ledger verify` and its property test."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ledger.store.database import parse_db, pg_connect_args


class Forger:
    """Raw SQL on one ledger's events table, by position."""

    def __init__(self, url: str) -> None:
        self.db = parse_db(url)
        self.pg = self.db.kind == "postgres"
        if self.pg:
            schema = self.db.schema or "public"
            self.table = f'"{schema}".storctl_events'
            self.hashes = f'"{schema}".storctl_events_hashes'
            self.pos = "notification_id"
        else:
            self.table, self.hashes, self.pos = (
                "stored_events",
                "stored_events_hashes",
                "rowid",
            )

    @contextmanager
    def sql(self) -> Iterator[Any]:
        if self.pg:
            import psycopg

            with psycopg.connect(**pg_connect_args(self.db)) as conn:
                conn.execute(f"ALTER TABLE {self.table} DISABLE TRIGGER USER")
                conn.execute(f"ALTER TABLE {self.hashes} DISABLE TRIGGER USER")
                yield _Pg(conn)
                conn.execute(f"ALTER TABLE {self.table} ENABLE TRIGGER USER")
                conn.execute(f"ALTER TABLE {self.hashes} ENABLE TRIGGER USER")
            return
        assert self.db.path is not None
        conn = sqlite3.connect(self.db.path)
        try:
            yield _Lite(conn)
            conn.commit()
        finally:
            conn.close()

    def positions(self) -> list[int]:
        with self.sql() as q:
            return [r[0] for r in q(f"SELECT {self.pos} FROM {self.table} ORDER BY 1")]

    def edit(self, n: int) -> None:
        """The event's actor rewritten: the classic edit of who did it."""
        with self.sql() as q:
            (state,) = q(f"SELECT state FROM {self.table} WHERE {self.pos} = %s", n)[0]
            body = json.loads(bytes(state))
            body["actor"] = "mallory"
            q(
                f"UPDATE {self.table} SET state = %s WHERE {self.pos} = %s",
                json.dumps(body).encode(),
                n,
            )

    def delete(self, n: int, *, with_hash: bool = False) -> None:
        with self.sql() as q:
            q(f"DELETE FROM {self.table} WHERE {self.pos} = %s", n)
            if with_hash:
                q(f"DELETE FROM {self.hashes} WHERE notification_id = %s", n)

    def swap(self, i: int, j: int) -> None:
        with self.sql() as q:
            q(f"UPDATE {self.table} SET {self.pos} = -1 WHERE {self.pos} = %s", i)
            q(f"UPDATE {self.table} SET {self.pos} = %s WHERE {self.pos} = %s", i, j)
            q(f"UPDATE {self.table} SET {self.pos} = %s WHERE {self.pos} = -1", j)

    def insert(self, like: int) -> int:
        """A forged next event of the object of the event at `like`, appended at
        the end of the log; returns its position."""
        with self.sql() as q:
            oid, topic, state = q(
                f"SELECT originator_id, topic, state FROM {self.table}"
                f" WHERE {self.pos} = %s",
                like,
            )[0]
            (version,) = q(
                f"SELECT max(originator_version) FROM {self.table}"
                " WHERE originator_id = %s",
                oid,
            )[0]
            (last,) = q(f"SELECT max({self.pos}) FROM {self.table}")[0]
            q(
                f"INSERT INTO {self.table} ({self.pos}, originator_id,"
                " originator_version, topic, state) VALUES (%s, %s, %s, %s, %s)",
                last + 1,
                oid,
                version + 1,
                topic,
                state,
            )
            return int(last) + 1


class _Pg:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def __call__(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        cur = self.conn.execute(sql, params or None)
        return list(cur.fetchall()) if cur.description else []


class _Lite:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __call__(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return list(self.conn.execute(sql.replace("%s", "?"), params).fetchall())
