"""A SQLite rebuild's second core: another process writes the journal's tail.

`event_journal` is a row per event that depends on that event alone, and writing it
(formatting the row, binding its eleven values, the table and its indexes) is about
half of a SQLite rebuild; the other tables need the events in order, one process.
So a rebuild of a long log starts this module as a child process (`python -m
projections.journal_stage`) on the log's tail, from `start` to `stop`: it reads and
decodes those events itself and writes their journal rows, exactly as
`journal.journal_row` makes them, into a scratch SQLite file of its own (no lock
shared with the ledger's file). The rebuild attaches that file and, in each
batch's own transaction, copies the rows the batch needs with one `INSERT ...
SELECT` (SQLite's C, a fifth of the cost of writing them from Python), so every
commit still holds the tables, their journal rows and the tracking row together.

The child is only ever ahead or not: a row it has not written yet the rebuild
writes itself, and a child that dies, is slow or cannot start costs time, never a
row. It stops when the rebuild has gone past it. The scratch file is the ledger
file's name with `.journal-stage-<pid>` after it, removed when the rebuild ends.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any, Protocol

from projections.journal import INSERT_JOURNAL, journal_row
from projections.schema import TABLES, column_sql

#: a log shorter than this is rebuilt in one process (a child's start costs
#: about as much as writing 20,000 journal rows)
MIN_EVENTS = 100_000
#: the share of the log the rebuild journals itself before the child's part:
#: the rebuild projects the tables as well, so it reaches the child's part when
#: the child, a head start ahead, is about done (measured, 2 cores: 0.3-0.4)
HEAD_SHARE = 0.35
#: events the child reads, decodes and writes per transaction
BATCH = 5000
#: passes the ledger's settings to the child (not its command line: a cipher key
#: is a setting, and `ps` shows command lines)
ENV_VARIABLE = "STORCTL_JOURNAL_STAGE_ENV"
_COPY = (
    "INSERT INTO main.event_journal SELECT * FROM stage.event_journal"
    " WHERE position > ? AND position <= ?"
)


class Child(Protocol):
    """What the rebuild needs of the child process (`subprocess.Popen`'s)."""

    def poll(self) -> int | None: ...

    def kill(self) -> None: ...

    def wait(self) -> int: ...


def _spawn(args: list[str], env: dict[str, str]) -> Child:
    """The child: this module run by this interpreter (a seam: tests run `run`
    in-process instead, to decide what it has written when)."""
    return subprocess.Popen(
        [sys.executable, "-m", "projections.journal_stage", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )


def plan(head: int, stage_from: int | None = None) -> int | None:
    """Where a child should start on a log of `head` events (None: no child);
    `stage_from` forces one from there."""
    if stage_from is None:
        if head < MIN_EVENTS or (os.cpu_count() or 1) < 2:
            return None
        stage_from = int(head * HEAD_SHARE)
    return stage_from if 0 <= stage_from < head else None


def journal_table_sql() -> str:
    table = next(t for t in TABLES if t.name == "event_journal")
    return f"CREATE TABLE event_journal {column_sql(table, 'sqlite')}"


class Stage:
    """The child and its scratch file, as the projecting process sees them:
    `copy` the journal rows of a batch it has written, `close` at the end.

    The child reads the ledger file `source` (its events from `start` to `stop`);
    the scratch file goes beside `beside` (the file being projected into); with
    `watch`, the child stops once that file's tracking row is past what it would
    write next (a rebuild), without, it writes its whole range (a replay, whose one
    transaction shows nobody its progress)."""

    def __init__(
        self,
        source: Path,
        start: int,
        stop: int,
        env: dict[str, str],
        *,
        beside: Path | None = None,
        watch: Path | None = None,
    ) -> None:
        self.start, self.stop = start, stop
        beside = beside or source
        self.path = beside.with_name(f"{beside.name}.journal-stage-{os.getpid()}")
        self._remove_files()
        with sqlite3.connect(self.path, isolation_level=None) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(journal_table_sql())
        conn.close()
        self.process: Child | None = _spawn(
            [str(source), str(self.path), str(start), str(stop), str(watch or "-")],
            {**os.environ, ENV_VARIABLE: json.dumps(env)},
        )
        self._attached: Any = None

    def finished(self) -> bool:
        """Whether the child has written its whole range and exited (asked
        without reading the scratch file: a transaction that reads it keeps what
        it saw until it ends)."""
        return self.process is not None and self.process.poll() == 0

    def attach(self, conn: Any) -> None:
        """Attach the scratch file to `conn` (a connection or cursor; before its
        transaction: SQLite refuses ATTACH inside one)."""
        conn.execute("ATTACH DATABASE ? AS stage", (str(self.path),))
        self._attached = conn

    def covered(self, conn: Any) -> int:
        """The last position whose journal row the child has committed (all of
        `start`+1 to it are there: it writes in order)."""
        cursor = conn.cursor()
        cursor.execute("SELECT max(position) FROM stage.event_journal")
        row = cursor.fetchone()
        return int(row[0]) if row and row[0] is not None else self.start

    def copy(self, conn: Any, after: int, last: int) -> None:
        """Copy the staged rows of positions `after`+1 to `last` (the caller
        checked they are all staged), in the caller's transaction."""
        conn.execute(_COPY, (after, last))

    def close(self) -> None:
        """Stop the child (done by now, or no longer needed) and remove the file."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait()
            self.process = None
        if self._attached is not None:
            self._attached.execute("DETACH DATABASE stage")
            self._attached = None
        self._remove_files()

    def _remove_files(self) -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)


def _tracked(conn: sqlite3.Connection) -> int:
    """Where the rebuild has got to (its tracking row in the ledger's file)."""
    from projections.view import APPLICATION_NAME

    row = conn.execute(
        "SELECT max(notification_id) FROM tracking WHERE application_name = ?",
        (APPLICATION_NAME,),
    ).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def run(
    db_path: str,
    stage_path: str,
    start: int,
    stop: int,
    env: dict[str, Any],
    watch: str | None = None,
) -> int:
    """The child: journal rows of positions `start`+1 to `stop`, in order, into
    the scratch file, until `watch`'s tracking row is past them; returns how many
    it wrote."""
    from ledger.service import Ledger
    from projections.runner import decoder, selector

    ledger = Ledger(env=env)
    try:
        decode, select = decoder(ledger), selector(ledger)
        watched = sqlite3.connect(f"file:{watch}?mode=ro", uri=True) if watch else None
        stage = sqlite3.connect(stage_path, isolation_level=None, timeout=30)
        stage.execute("PRAGMA synchronous=OFF")  # scratch: the rebuild commits
        written, at = 0, start
        try:
            while at < stop:
                if watched and _tracked(watched) >= min(at + BATCH, stop):
                    break  # the rebuild is past what this batch would write
                notes = select(at, BATCH, stop)
                if not notes:
                    break
                rows = [journal_row(n.id, decode(n)) for n in notes]
                stage.execute("BEGIN IMMEDIATE")
                stage.executemany(INSERT_JOURNAL, rows)
                stage.execute("COMMIT")
                written += len(rows)
                at = notes[-1].id
        finally:
            stage.close()
            if watched:
                watched.close()
        return written
    finally:
        ledger.close()


def main(argv: list[str]) -> int:
    db_path, stage_path, start, stop, watch = argv
    env = json.loads(os.environ.get(ENV_VARIABLE) or "{}")
    run(
        db_path, stage_path, int(start), int(stop), env, None if watch == "-" else watch
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
