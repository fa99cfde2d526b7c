"""Leases: one follower of a kind works a database at a time.

A lease is a row (`storctl_lease`) naming its holder (host, pid) and an expiry that
the holder renews while it works. A holder that died is noticed by its expiry, or at
once when it ran on this machine and its pid is gone (SIGKILL leaves no goodbye).
Taking or renewing a lease is one short transaction: `BEGIN IMMEDIATE` on SQLite,
`SELECT ... FOR UPDATE` on PostgreSQL.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import socket
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ledger.store.database import Database, pg_connect_args, tables_exist

TTL = 15.0  # seconds a lease lives without renewal

T = TypeVar("T")

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
        return process_alive(self.host, self.pid)


def process_alive(host: str, pid: int) -> bool:
    """Whether a holder's process may still run: surely not when it ran on this
    machine and its pid is gone; another machine's is trusted to its expiry."""
    if host == socket.gethostname():
        return _pid_alive(pid)
    return True


def _close_quietly(conn: Any) -> None:
    with contextlib.suppress(Exception):
        conn.close()


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
    """Take, renew and give back named leases in the ledger's database.

    One connection is kept for the lease table (a CLI takes and gives back the
    lease once per job, and a new connection costs more than the transaction,
    a lot more on PostgreSQL); a broken one is replaced once before giving up."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.me = (socket.gethostname(), os.getpid())
        self._conn: Any = None
        self._closer: weakref.finalize[Any, Any] | None = None
        self._pid = os.getpid()
        self._lock = threading.Lock()
        if tables_exist(db, "storctl_lease"):
            return

        def create(cur: Any) -> None:
            if db.kind == "postgres":
                # Concurrent CREATE TABLE IF NOT EXISTS can fail on PostgreSQL
                # ("tuple concurrently updated"): first starters queue on a lock.
                cur.execute("SELECT pg_advisory_xact_lock(hashtext('storctl_lease'))")
            cur.execute(_DDL)

        self._run(create)

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _open(self) -> Any:
        self._conn = self._connect()
        # Closed with this object at the latest (a CLI never calls `close`).
        self._closer = weakref.finalize(self, _close_quietly, self._conn)
        self._closer.atexit = False  # an exiting process may still give leases back
        return self._conn

    def _drop(self) -> None:
        if self._closer is not None:
            self._closer()
        self._conn = self._closer = None

    def _run(self, work: Callable[[Any], T], *, write: bool = True) -> T:
        """`work(cursor)` in one transaction on the kept connection. Every lease
        operation is idempotent, so a connection the server dropped is replaced
        and the operation run once more."""
        with self._lock:
            if os.getpid() != self._pid:
                # A forked child never uses (nor closes) its parent's socket.
                if self._closer is not None:
                    self._closer.detach()
                self._conn = self._closer = None
                self._pid = os.getpid()
            if self.db.kind == "sqlite":
                if self._conn is None:
                    self._open()
                return self._sqlite_tx(work, write=write)
            import psycopg

            for attempt in (1, 2):
                fresh = self._conn is None
                conn = self._open() if fresh else self._conn
                try:
                    with conn.transaction():
                        return work(conn.cursor())
                except psycopg.OperationalError:
                    self._drop()
                    if fresh or attempt == 2:
                        raise
            raise AssertionError("unreachable")

    def transact(self, work: Callable[[Any], T], *, write: bool = True) -> T:
        """`work(cursor)` in one short transaction on the kept connection, for
        other rows of the same kind (`host_slots`): `%s` placeholders on both
        stores; write transactions are `BEGIN IMMEDIATE` on SQLite."""
        return self._run(work, write=write)

    def _connect(self) -> Any:
        if self.db.kind == "sqlite":
            assert self.db.path is not None
            return sqlite3.connect(
                self.db.path,
                timeout=30,
                isolation_level=None,
                check_same_thread=False,  # guarded by self._lock
            )
        import psycopg

        pg = psycopg.connect(**pg_connect_args(self.db), autocommit=True)
        if self.db.schema:
            pg.execute(f'SET search_path TO "{self.db.schema}"')
        return pg

    def _sqlite_tx(self, work: Callable[[Any], T], *, write: bool) -> T:
        conn = self._conn
        # IMMEDIATE: a lease is read and written under SQLite's one write lock.
        conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            result = work(_SqliteCursor(conn.cursor()))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return result

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

        def take(cur: Any) -> bool:
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

        return self._run(take)

    def renew(self, name: str) -> bool:
        def extend(cur: Any) -> bool:
            cur.execute(
                "UPDATE storctl_lease SET expires = %s"
                " WHERE name = %s AND holder_host = %s AND holder_pid = %s",
                (time.time() + TTL, name, *self.me),
            )
            return bool(cur.rowcount)

        return self._run(extend)

    def release(self, name: str) -> None:
        def give_back(cur: Any) -> None:
            cur.execute(
                "DELETE FROM storctl_lease"
                " WHERE name = %s AND holder_host = %s AND holder_pid = %s",
                (name, *self.me),
            )

        self._run(give_back)

    def holders(self, prefix: str = "") -> list[Holder]:
        give_back_idle(self.db.url)
        now = time.time()

        def read(cur: Any) -> list[Holder]:
            cur.execute(
                "SELECT name, holder_host, holder_pid, scope, expires"
                " FROM storctl_lease"
            )
            return [Holder(*r) for r in cur.fetchall()]

        rows = self._run(read, write=False)
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


RENEW = 5.0  # seconds between renewals while a lease is used

#: How long a process keeps the lease after a drive, for its next drive (a script
#: running jobs back to back pays one lease transaction, not two per job). Another
#: process waits at most this long, and nothing at all once this one exits.
LINGER = 0.25


class _Held:
    """A lease this process holds: by how many engines, since when renewed."""

    def __init__(self, leases: Leases) -> None:
        self.leases = leases
        self.users = 0
        self.renewed = time.monotonic()
        self.generation = 0  # a release scheduled for an older one is void


#: Leases are per process (holder = host and pid), so every engine of the process
#: shares one record of them; the lock covers the lease transactions too, so a
#: lingering release never runs between another engine's take and its use.
_HELD: dict[tuple[str, str], _Held] = {}
_HELD_LOCK = threading.RLock()


def take(leases: Leases, name: str, scope: str) -> bool:
    """Take `name` for this process (at once if it still holds it, lingering)."""
    key = (leases.db.url, name)
    with _HELD_LOCK:
        held = _HELD.get(key)
        if held is None or time.monotonic() - held.renewed > RENEW:
            if not leases.acquire(name, scope):
                return False
            held = _HELD.setdefault(key, _Held(leases))
            held.renewed = time.monotonic()
        held.users += 1
        held.generation += 1
        return True


def give_back(leases: Leases, name: str) -> None:
    """The lease is given back `LINGER` seconds after its last user leaves it."""
    key = (leases.db.url, name)
    with _HELD_LOCK:
        held = _HELD[key]
        held.users -= 1
        if held.users:
            return
        timer = threading.Timer(LINGER, _expire, (key, held.generation))
        timer.daemon = True
        timer.start()


def _expire(key: tuple[str, str], generation: int) -> None:
    with _HELD_LOCK:
        held = _HELD.get(key)
        if held is None or held.users or held.generation != generation:
            return  # taken again meanwhile
        del _HELD[key]
        with contextlib.suppress(Exception):  # at worst it expires by itself
            held.leases.release(key[1])


def give_back_idle(url: str) -> None:
    """Give back at once the leases this process keeps unused on `url`: an idle
    lingering lease is no worker (`storctl doctor` asks in the same process), and
    a caller about to copy the database file wants no write landing after."""
    with _HELD_LOCK:
        for key, held in list(_HELD.items()):
            if key[0] == url and not held.users:
                held.generation += 1  # its timer is void
                del _HELD[key]
                with contextlib.suppress(Exception):
                    held.leases.release(key[1])


def renew_held(leases: Leases, name: str) -> bool:
    with _HELD_LOCK:
        if not leases.renew(name):
            return False
        held = _HELD.get((leases.db.url, name))
        if held is not None:
            held.renewed = time.monotonic()
        return True


@atexit.register
def _release_all() -> None:
    """A process that exits gives its leases back at once."""
    with _HELD_LOCK:
        for key, held in list(_HELD.items()):
            del _HELD[key]
            with contextlib.suppress(Exception):
                held.leases.release(key[1])
