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
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any, Protocol

from projections.db import immediate, known_iso
from projections.journal import INSERT_JOURNAL, journal_row
from projections.schema import TABLES, column_sql

#: a log shorter than this is rebuilt in one process (a child's start costs
#: about as much as writing 20,000 journal rows)
MIN_EVENTS = 100_000
#: the share of the log the rebuild journals itself before the child's part:
#: the rebuild projects the tables as well, so it gives the child a head start
#: (traced on a 1,000,000-event rebuild, 2 cores: the rebuild reached the child's
#: last rows as both finished; a split a little either way costs about the same)
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


def journal_table_sql() -> str:
    table = next(t for t in TABLES if t.name == "event_journal")
    return f"CREATE TABLE event_journal {column_sql(table, 'sqlite')}"


class Stage:
    """The child and its scratch file, as the rebuild sees them: `copy` the
    journal rows of a batch it has written, `close` when the rebuild ends."""

    def __init__(self, db_path: Path, start: int, stop: int, env: dict[str, str]):
        self.source, self.start, self.stop = db_path, start, stop
        self.path = db_path.with_name(f"{db_path.name}.journal-stage-{os.getpid()}")
        self._remove_files()
        with sqlite3.connect(self.path, isolation_level=None) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(journal_table_sql())
        conn.close()
        try:
            self.process: Child | None = _spawn(
                [str(db_path), str(self.path), str(start), str(stop)],
                {**os.environ, ENV_VARIABLE: json.dumps(env)},
            )
        except BaseException:
            self._remove_files()
            raise
        self._attached: sqlite3.Connection | None = None

    def attach(self, conn: sqlite3.Connection) -> None:
        conn.execute("ATTACH DATABASE ? AS stage", (str(self.path),))
        self._attached = conn

    def covered(self, conn: sqlite3.Connection) -> int:
        """The last position whose journal row the child has committed (all of
        `start`+1 to it are there: it writes in order)."""
        row = conn.execute("SELECT max(position) FROM stage.event_journal").fetchone()
        return int(row[0]) if row and row[0] is not None else self.start

    def copy(self, conn: sqlite3.Connection, after: int, last: int) -> None:
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
        remove(self.path)


def remove(path: Path | str) -> None:
    """A scratch file and SQLite's files beside it."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


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
    parent: int | None = None,
) -> int:
    """The child: journal rows of positions `start`+1 to `stop`, in order, into
    the scratch file; returns how many it wrote. With `parent` (its pid), a child
    whose rebuild was killed outright (it is then some other process's child)
    stops and removes the scratch file, which nobody else would."""
    from ledger.app import Ledger
    from ledger.store.decoder import decoder
    from ledger.store.reader import selector

    ledger = Ledger(env=env)
    try:
        decode, select = decoder(ledger, known_iso), selector(ledger)
        ledger_conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        stage = sqlite3.connect(stage_path, isolation_level=None, timeout=30)
        stage.execute("PRAGMA synchronous=OFF")  # scratch: the rebuild commits
        written, at, orphaned = 0, start, False
        try:
            while at < stop:
                if parent is not None and os.getppid() != parent:
                    orphaned = True  # the rebuild was killed: nobody will copy
                    break
                if _tracked(ledger_conn) >= min(at + BATCH, stop):
                    break  # the rebuild is past what this batch would write
                notes = select(at, BATCH, stop)
                if not notes:
                    break
                rows = [journal_row(n.id, decode(n)) for n in notes]
                with immediate(stage) as cursor:
                    cursor.executemany(INSERT_JOURNAL, rows)
                written += len(rows)
                at = notes[-1].id
        finally:
            stage.close()
            ledger_conn.close()
        if orphaned:
            remove(stage_path)
        return written
    finally:
        ledger.close()


def main(argv: list[str]) -> int:
    # Ctrl-C reaches the whole process group: the rebuild handles it (and kills
    # this child); a second traceback from here would only confuse.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    db_path, stage_path, start, stop = argv
    env = json.loads(os.environ.get(ENV_VARIABLE) or "{}")
    run(db_path, stage_path, int(start), int(stop), env, os.getppid())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
