"""One SQL surface over both dialects, and the value conversions the tables use.

Handlers and queries write SQL once with `?` placeholders; `Db` rewrites them to
psycopg's `%s` on PostgreSQL. Rows come back as plain dicts on both. No CloudStack
table of its own: this is the plumbing under every table of the read side.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from enum import Enum
from functools import lru_cache
from operator import attrgetter
from typing import Any
from uuid import UUID

from projections.schema import Dialect

#: (table, key column, counter column), for `Db.add`
Counter = tuple[str, str, str]


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Cursor]:
    """A write transaction on a SQLite connection of the projections' own (in
    autocommit mode, outside the library's pool): the write lock taken at once,
    committed at the end, rolled back on any error if SQLite has not already."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn.cursor()
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@contextmanager
def in_transaction(datastore: Any, db: Db | None) -> Iterator[Any]:
    """`db`'s cursor (its transaction goes on), or a new committed transaction on
    the library's `datastore` (the views' index builds take either)."""
    if db is not None:
        yield db.cursor
        return
    with datastore.transaction(commit=True) as cursor:
        yield cursor


@lru_cache(maxsize=1024)
def adapt(sql: str, dialect: Dialect) -> str:
    """`?` placeholders to the dialect's style (literal `%` escaped for psycopg)."""
    if dialect == "sqlite":
        return sql
    return sql.replace("%", "%%").replace("?", "%s")


class Db:
    """A cursor inside one transaction, with the dialect it speaks.

    `position` is the notification id of the event being applied (handlers use it
    for CloudStack-style integer ids); `copies` caches which ref table holds a copy
    within the transaction.

    `add` defers counter increments (`allocated_bytes` of a pool, once per
    reservation) and sums them per row: a batch of reservations becomes one UPDATE
    per pool instead of one per event, which is most of a rebuild's statements.
    Additions commute with each other but not with anything else, so every other
    statement, read or write, first flushes what is pending: the tables any
    statement sees are exactly those of applying the events one by one.
    """

    def __init__(self, cursor: Any, dialect: Dialect) -> None:
        self.cursor = cursor
        self.dialect = dialect
        self.position = 0
        self.copies: dict[str, str | None] = {}
        #: (table, key column, counter column) -> key value -> pending sum
        self._sums: dict[Counter, dict[Any, int]] = {}

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        if self._sums:
            self.flush()
        self.cursor.execute(adapt(sql, self.dialect), tuple(params))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        if self._sums:
            self.flush()
        rows = [tuple(r) for r in rows]
        if rows:
            self.cursor.executemany(adapt(sql, self.dialect), rows)

    def copy_rows(self, copy_sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """PostgreSQL's `COPY ... FROM STDIN` of `rows`: many rows for the cost of
        one statement."""
        if self._sums:
            self.flush()
        with self.cursor.copy(copy_sql) as copy:
            for row in rows:
                copy.write_row(row)

    @contextmanager
    def pipelined(self) -> Iterator[None]:
        """On PostgreSQL, the block's statements go without waiting for each
        answer (psycopg's pipeline mode: a read waits for what is before it, an
        error is raised at the next wait, at the latest when the block ends): a
        batch's UPDATEs cost one round trip instead of one each. COPY cannot run
        in a pipeline, so `copy_rows` waits for after the block."""
        if self.dialect != "postgres":
            yield
            return
        with self.cursor.connection.pipeline():
            yield

    def add(self, counter: Counter, key_value: Any, by: int) -> None:
        """`UPDATE table SET column = column + by WHERE key = key_value` for
        `counter` = (table, key, column), deferred until the next statement or
        `flush` (`key_value` goes through `str` then: a uuid can be given as is)."""
        pending = self._sums.get(counter)
        if pending is None:
            pending = self._sums[counter] = {}
        pending[key_value] = pending.get(key_value, 0) + by

    def flush(self) -> None:
        """Run the deferred additions (one executemany per counter column)."""
        sums, self._sums = self._sums, {}
        for (table, key, column), pending in sums.items():
            rows = [(by, str(value)) for value, by in pending.items() if by]
            if rows:
                self.cursor.executemany(
                    adapt(_add_sql(table, key, column), self.dialect), rows
                )

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        self.execute(sql, params)
        return [dict(row) for row in self.cursor.fetchall()]

    def one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        self.execute(sql, params)
        row = self.cursor.fetchone()
        return dict(row) if row is not None else None

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self.one(sql, params)
        return next(iter(row.values())) if row else None

    # ------------------------------------------------------------ writes

    def insert(self, table: str, row: dict[str, Any], key: str | None = None) -> None:
        """INSERT, or with `key` an upsert (ON CONFLICT (key) DO UPDATE)."""
        cols = tuple(row)
        self.execute(_insert_sql(table, cols, key), [row[c] for c in cols])

    def update(self, table: str, key: str, key_value: Any, **values: Any) -> None:
        cols = tuple(values)
        self.execute(
            _update_sql(table, key, cols), [*(values[c] for c in cols), key_value]
        )


@lru_cache(maxsize=512)
def _insert_sql(table: str, cols: tuple[str, ...], key: str | None) -> str:
    sql = (
        f"INSERT INTO {table} ({', '.join(cols)}) "
        f"VALUES ({', '.join('?' for _ in cols)})"
    )
    if key is None:
        return sql
    rest = [c for c in cols if c != key]
    sets = ", ".join(f"{c} = excluded.{c}" for c in rest)
    return f"{sql} ON CONFLICT ({key}) DO UPDATE SET {sets}"


@lru_cache(maxsize=64)
def _add_sql(table: str, key: str, column: str) -> str:
    return f"UPDATE {table} SET {column} = {column} + ? WHERE {key} = ?"


@lru_cache(maxsize=512)
def _update_sql(table: str, key: str, cols: tuple[str, ...]) -> str:
    sets = ", ".join(f"{c} = ?" for c in cols)
    return f"UPDATE {table} SET {sets} WHERE {key} = ?"


# ---------------------------------------------------------------- values


def iso(moment: datetime) -> str:
    """ISO 8601 UTC with microseconds and `Z`: sortable as text."""
    known = _ISO_KNOWN.get(moment)
    if known is not None:
        return known
    if moment.tzinfo is UTC:  # every decoded event time: no conversion needed
        return _ISO % _FIELDS(moment)  # the fastest way found to write one
    if moment.utcoffset() != _ZERO:
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def known_iso(moment: datetime, text: str) -> None:
    """Remember `iso(moment)`: an event decoder that has the stored text of a UTC
    time hands it over, cheaper than writing it again for the journal row and the
    tables. Keyed by the time itself (equal times are the same instant, which is
    all `iso` writes; a naive time never equals an aware one)."""
    if len(_ISO_KNOWN) >= 16_384:
        _ISO_KNOWN.clear()
    _ISO_KNOWN[moment] = text


_ISO_KNOWN: dict[datetime, str] = {}


def uuid_text(value: UUID) -> str:
    """`str(value)`, remembered: an object's events all carry its id, and `str` of
    a uuid costs as much as the rest of a journal row's columns. Keyed by the
    uuid's integer, whose hash and comparison are C (a UUID's are Python)."""
    known = _UUID_TEXT.get(value.int)
    if known is None:
        if len(_UUID_TEXT) >= 4096:
            _UUID_TEXT.clear()
        known = _UUID_TEXT[value.int] = str(value)
    return known


_UUID_TEXT: dict[int, str] = {}


def text(value: Any) -> str | None:
    """A column value as text: enums by value, uuids canonical, None kept."""
    if value is None:
        return None
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)


_ZERO = timedelta(0)
_ISO = "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ"
_FIELDS = attrgetter("year", "month", "day", "hour", "minute", "second", "microsecond")
_SECRET_KEYS = re.compile(r"pass(word|wd)?|secret|token|credential", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@/\s]+@")


def secret_key(name: str) -> bool:
    """Whether `redact` hides a value by its key's name alone."""
    return _SECRET_KEYS.search(name) is not None


def redact(value: Any) -> Any:
    """A JSON-simple copy of `value` without anything that looks like a password
    (by key name, or inside a URL); enums, uuids, times, decimals and anything
    else as text."""
    if isinstance(value, str):
        return _URL_PASSWORD.sub(r"\1***@", value) if "@" in value else value
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dict):
        return {
            str(k): "***" if _SECRET_KEYS.search(str(k)) else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, UUID):  # a Decimal goes as text below (no import here)
        return str(value)
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, set | frozenset):
        return sorted((redact(v) for v in value), key=str)
    return redact(str(value))  # an unforeseen type must not stop the projection


def to_json(value: Any) -> str:
    """Canonical JSON text (sorted keys), secrets redacted."""
    return json.dumps(redact(value), sort_keys=True, separators=(",", ":"))
