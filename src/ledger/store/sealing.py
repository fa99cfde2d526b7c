"""The hash chain where the events are stored: recorders that seal every append.

The library's process recorders, with one more step inside their insert
transaction: the hashes of the new events (`ledger.hashchain`) go into a side table,
`<events table>_hashes`, keyed by position. The chain head is read after the events
are inserted, in the same transaction, so it is serialized by the lock the insert
already holds: SQLite's write lock, PostgreSQL's `LOCK TABLE ... IN EXCLUSIVE MODE`
that the library takes for its positions. A side table rather than columns: the
library's own statements (`INSERT ... VALUES (?,?,?,?)`, `SELECT *`) stay untouched.

Who appended: on SQLite the OS user, written by the recorder; on PostgreSQL the
column defaults to `session_user`, which the roles of `admin roles` cannot set
(column privileges), and a trigger refuses UPDATE, DELETE and TRUNCATE of the events
and their hashes to everyone (only the tables' owner can disable it).

Migration: a ledger written before the chain gets its hashes on the first open by
this code, when the hash table is created empty: every event already stored is
sealed then, in position order, in one transaction. A hash table that exists is
never filled in again, so a hash removed later stays missing (`ledger verify`
reports it).
"""

from __future__ import annotations

import getpass
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteCursor, SQLiteProcessRecorder

from ledger.hashchain import (
    GENESIS,
    Chainer,
    Sealed,
    object_key,
)
from ledger.store.chain_heads import ChainHeads

#: rows read per query when walking or sealing a whole log
PAGE = 5000


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        return "unknown"


def _continued(events: Sequence[StoredEvent]) -> dict[str, int]:
    """object -> the version before its first event here (for those not new)."""
    first: dict[str, int] = {}
    for e in events:
        key = object_key(e.originator_id)
        if key not in first:
            first[key] = e.originator_version
    return {k: v - 1 for k, v in first.items() if v > 1}


def _seal_all(
    chainer: Chainer, ids: Sequence[int], events: Sequence[StoredEvent]
) -> list[Sealed]:
    return [
        chainer.seal(n, e.originator_id, e.originator_version, e.topic, e.state)
        for n, e in zip(ids, events, strict=True)
    ]


class SealingSQLiteRecorder(SQLiteProcessRecorder):
    """SQLite's process recorder, sealing every append."""

    def __init__(self, datastore: Any, *, events_table_name: str = "stored_events"):
        self.hashes_table_name = f"{events_table_name}_hashes"
        super().__init__(datastore, events_table_name=events_table_name)
        h = self.hashes_table_name
        self.insert_hashes_statement = (
            f"INSERT INTO {h} (notification_id, originator_id, originator_version,"
            " content, stream, log, db_user) VALUES (?,?,?,?,?,?,?)"
        )
        self.principal = os_user()
        #: the heads this process last committed (`chain_heads`)
        self.heads = ChainHeads()

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {self.hashes_table_name} ("
            "notification_id INTEGER PRIMARY KEY, originator_id TEXT NOT NULL, "
            "originator_version INTEGER NOT NULL, content BLOB NOT NULL, "
            "stream BLOB NOT NULL, log BLOB NOT NULL, db_user TEXT, "
            "UNIQUE (originator_id, originator_version))",
        ]

    def create_table(self) -> None:
        super().create_table()
        with self.datastore.transaction(commit=True) as c:
            c.execute(f"DELETE FROM {self.hashes_table_name} WHERE 0")  # write lock
            c.execute(f"SELECT 1 FROM {self.hashes_table_name} LIMIT 1")
            if c.fetchone() is None:
                self._seal_existing(c)

    def _seal_existing(self, c: SQLiteCursor) -> None:
        chainer, after = Chainer(GENESIS, {}), 0
        while True:
            c.execute(
                "SELECT rowid, originator_id, originator_version, topic, state"
                f" FROM {self.events_table_name} WHERE rowid > ? ORDER BY rowid"
                " LIMIT ?",
                (after, PAGE),
            )
            rows = c.fetchall()
            if not rows:
                return
            self._write(c, [chainer.seal(*tuple(r)) for r in rows])
            after = rows[-1][0]

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        try:
            ids = super().insert_events(stored_events, **kwargs)
        except BaseException:
            self.heads.discard()
            raise
        self.heads.commit()
        return ids

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        self.heads.discard()
        ids = super()._insert_events(c, stored_events, **kwargs)
        if not stored_events or ids is None:
            return ids
        log_head = self.heads.log_head(ids[0])
        heads, missing = self.heads.stream_heads(_continued(stored_events))
        if log_head is None:
            c.execute(f"SELECT log FROM {self.hashes_table_name}"
                      " ORDER BY notification_id DESC LIMIT 1")  # fmt: skip
            row = c.fetchone()
            log_head = row[0] if row else GENESIS
        if missing:
            heads.update(self._read_stream_heads(c, missing))
        sealed = _seal_all(Chainer(log_head, heads), ids, stored_events)
        self._write(c, sealed)
        self.heads.stage(sealed)
        return ids

    def _read_stream_heads(
        self, c: SQLiteCursor, wanted: dict[str, int]
    ) -> dict[str, bytes]:
        """The recorded stream hashes of (object, version) pairs, in one query."""
        pairs = list(wanted.items())
        found: dict[str, bytes] = {}
        for first in range(0, len(pairs), 400):  # SQLite's bound parameters
            chunk = pairs[first : first + 400]
            rows = ",".join("(?,?)" for _ in chunk)
            c.execute(
                f"SELECT originator_id, stream FROM {self.hashes_table_name}"
                f" WHERE (originator_id, originator_version) IN (VALUES {rows})",
                [v for pair in chunk for v in pair],
            )
            found.update({r[0]: r[1] for r in c.fetchall()})
        return found

    def _write(self, c: SQLiteCursor, sealed: Sequence[Sealed]) -> None:
        c.executemany(
            self.insert_hashes_statement,
            [
                (
                    s.notification_id,
                    s.originator_id,
                    s.originator_version,
                    s.content,
                    s.stream,
                    s.log,
                    self.principal,
                )
                for s in sealed
            ],
        )


def _row(s: Sealed) -> tuple[Any, ...]:
    return (
        s.notification_id,
        s.originator_id,
        s.originator_version,
        s.content,
        s.stream,
        s.log,
    )


class CopySealer:
    """Seals the events a copy writes straight into an empty ledger's table
    (`replay`, `import`), chunk by chunk inside the copy's transaction, so the
    copy holds the same chain as its source (positions are not hashed)."""

    def __init__(self, recorder: Any) -> None:
        self.recorder = recorder
        self.chainer = Chainer(GENESIS, {})

    def __call__(
        self, cursor: Any, positions: Sequence[int], events: Sequence[Any]
    ) -> None:
        recorder = self.recorder
        if not hasattr(recorder, "hashes_table_name"):
            return  # the library's own recorder: nothing to seal
        sealed = [
            self.chainer.seal(
                n, e.originator_id, e.originator_version, e.topic, e.state
            )
            for n, e in zip(positions, events, strict=True)
        ]
        if getattr(recorder, "records_session_user", False):
            cursor.executemany(
                recorder.insert_hashes_statement, [_row(s) for s in sealed]
            )
            return
        cursor.executemany(
            recorder.insert_hashes_statement,
            [(*_row(s), recorder.principal) for s in sealed],
        )
