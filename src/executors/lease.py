"""Leases: one follower of a kind works a database at a time.

A lease is a row (`storctl_lease`) naming its holder (host, pid) and an expiry that
the holder renews while it works. A holder that died is noticed by its expiry, or at
once when it ran on this machine and its pid is gone (SIGKILL leaves no goodbye).
Taking or renewing a lease is one short transaction: `BEGIN IMMEDIATE` on SQLite,
`SELECT ... FOR UPDATE` on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ledger.store import Database, pg_connect_args, tables_exist

TTL = 15.0  # seconds a lease lives without renewal

_DDL = (
    "CREATE TABLE IF NOT EXISTS storctl_lease ("
    " name TEXT PRIMARY KEY, holder_host TEXT NOT NULL, holder_pid INTEGER NOT NULL,"
    " scope TEXT NOT NULL DEFAULT '', expires DOUBLE PRECISION NOT NULL)"
)


@dataclass(frozen=True)
class Holder:
    name: str
    host: str
    pid: int
    scope: str
    expires: float

    def alive(self, now: float) -> bool:
        if self.pid == 0 or self.expires < now:
            return False
        if self.host == socket.gethostname():
            return _pid_alive(self.pid)
        return True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (killed, not yet reaped by its parent) holds nothing.
    with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as f:
        if f.read().split(") ", 1)[1].startswith("Z"):
            return False
    return True


class Leases:
    """Take, renew and give back named leases in the ledger's database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.me = (socket.gethostname(), os.getpid())
        if tables_exist(db, "storctl_lease"):
            return
        with self._tx() as cur:
            if db.kind == "postgres":
                # Concurrent CREATE TABLE IF NOT EXISTS can fail on PostgreSQL
                # ("tuple concurrently updated"): first starters queue on a lock.
                cur.execute("SELECT pg_advisory_xact_lock(hashtext('storctl_lease'))")
            cur.execute(_DDL)

    @contextlib.contextmanager
    def _tx(self) -> Iterator[Any]:
        if self.db.kind == "sqlite":
            yield from self._sqlite_tx()
        else:
            yield from self._pg_tx()

    def _sqlite_tx(self) -> Iterator[Any]:
        assert self.db.path is not None
        conn = sqlite3.connect(self.db.path, timeout=30, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield _SqliteCursor(conn.cursor())
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()

    def _pg_tx(self) -> Iterator[Any]:
        import psycopg

        with psycopg.connect(**pg_connect_args(self.db)) as pg:
            if self.db.schema:
                pg.execute(f'SET search_path TO "{self.db.schema}"')
            with pg.transaction():
                yield pg.cursor()

    def _select(self, cur: Any, name: str) -> Holder | None:
        lock = "" if self.db.kind == "sqlite" else " FOR UPDATE"
        cur.execute(
            "SELECT name, holder_host, holder_pid, scope, expires"
            " FROM storctl_lease"
            f" WHERE name = %s{lock}",
            (name,),
        )
        row = cur.fetchone()
        return Holder(*row) if row else None

    def acquire(self, name: str, scope: str = "") -> bool:
        """Take `name` if free (or held by a dead holder, or already ours)."""
        now = time.time()
        with self._tx() as cur:
            # The row exists first (a dead placeholder if new), so FOR UPDATE has
            # a row to lock and two first-comers cannot both insert it.
            cur.execute(
                "INSERT INTO storctl_lease"
                " (name, holder_host, holder_pid, scope, expires)"
                " VALUES (%s, '', 0, '', 0) ON CONFLICT (name) DO NOTHING",
                (name,),
            )
            holder = self._select(cur, name)
            if (
                holder is not None
                and holder.alive(now)
                and (holder.host, holder.pid) != self.me
            ):
                return False
            cur.execute(
                "UPDATE storctl_lease SET holder_host = %s, holder_pid = %s,"
                " scope = %s, expires = %s WHERE name = %s",
                (self.me[0], self.me[1], scope, now + TTL, name),
            )
            return True

    def renew(self, name: str) -> bool:
        with self._tx() as cur:
            cur.execute(
                "UPDATE storctl_lease SET expires = %s"
                " WHERE name = %s AND holder_host = %s AND holder_pid = %s",
                (time.time() + TTL, name, *self.me),
            )
            return bool(cur.rowcount)

    def release(self, name: str) -> None:
        with self._tx() as cur:
            cur.execute(
                "DELETE FROM storctl_lease"
                " WHERE name = %s AND holder_host = %s AND holder_pid = %s",
                (name, *self.me),
            )

    def holders(self, prefix: str = "") -> list[Holder]:
        now = time.time()
        with self._tx() as cur:
            cur.execute(
                "SELECT name, holder_host, holder_pid, scope, expires"
                " FROM storctl_lease"
            )
            rows = [Holder(*r) for r in cur.fetchall()]
        return [h for h in rows if h.name.startswith(prefix) and h.alive(now)]


class _SqliteCursor:
    """psycopg's `%s` placeholders on sqlite3, so the SQL above is written once."""

    def __init__(self, cur: sqlite3.Cursor) -> None:
        self.cur = cur

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        self.cur.execute(sql.replace("%s", "?"), params)

    def fetchone(self) -> Any:
        return self.cur.fetchone()

    def fetchall(self) -> list[Any]:
        return self.cur.fetchall()

    @property
    def rowcount(self) -> int:
        return self.cur.rowcount
