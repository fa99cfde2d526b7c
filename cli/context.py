"""What every command shares: the database, the output format, the actor, the ledger.

The ledger is opened on first use, so `--help` and argument errors never touch the
database, and a refused command leaves a missing database file missing. A read
never creates one: `--db /typo/x.db volume list` is refused rather than showing an
empty ledger; and a database that does not open is one line and exit 2. It is also
imported on first use: a read command on a caught-up SQLite ledger reads the tables
straight from the file (`projections.reader.current_tables`) and never imports the
write side (eventsourcing, the aggregates, the executors) or psycopg, which are most
of a command's start-up time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from ledger.store.database import Database, parse_db

# Commands that only read: on a missing SQLite file they are refused, creating nothing.
READ_VERBS = frozenset({"list", "show", "get", "status", "verify", "wait", "targets"})
READ_COMMANDS = frozenset(
    {"why", "history", "audit", "doctor", "reconcile", "replay", "export"}
)


def reads_only() -> bool:
    """Whether the running command is a read (its path, after `storctl`)."""
    ctx = click.get_current_context(silent=True)
    words = ctx.command_path.split()[1:] if ctx is not None else []
    return bool(words) and (words[0] in READ_COMMANDS or words[-1] in READ_VERBS)


if TYPE_CHECKING:
    from cli.profiles import ClientSettings
    from ledger.aggregate import Ctx
    from ledger.app import Ledger
    from projections.reader import Reader


@dataclass
class AppContext:
    db_url: str | None
    output: str
    actor: str | None
    run_async: bool
    #: where each of the above came from (`storctl config show`), and `columns`
    client: ClientSettings | None = field(default=None, repr=False)
    #: `-c/--columns`: the fields to show, in order (None: the command's own)
    columns: tuple[str, ...] | None = None
    _ledger: Ledger | None = field(default=None, repr=False)
    _engines: list[Any] = field(default_factory=list, repr=False)

    @property
    def db(self) -> Database:
        return parse_db(self.db_url)

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            self._ledger = self._open()
        return self._ledger

    def _open(self) -> Ledger:
        from cli.bootstrap import open_ledger
        from ledger.store.database import check_ledger_file, unavailable

        db = self.db
        check_ledger_file(
            db, may_create=not reads_only(), make_folder=self.db_url is None
        )
        try:
            return open_ledger(self.db_url)
        except Exception as exc:
            if not _driver_error(exc):
                raise
            raise unavailable(db, exc) from None

    def ctx(self) -> Ctx:
        """The request context: the actor is who the store says appends (see
        `Ledger._stamp`); `--actor` only adds the name it is done on behalf of."""
        from ledger.aggregate import Ctx

        principal = getattr(self.ledger.recorder, "principal", None)
        return Ctx.new(self.actor or principal)

    def catch_up(self) -> None:
        """Bring the projected tables up to the head before reading them."""
        from projections.projector import catch_up

        catch_up(self.ledger)

    @contextmanager
    def reader(self) -> Iterator[Reader]:
        """The tables, caught up with every event: read straight from a SQLite
        file whose tables are current, else through the ledger after a catch-up."""
        db = self.db
        if self._ledger is None and db.path is not None:
            from projections.reader import current_tables

            with current_tables(db.path) as current:
                if current is not None:
                    yield current
                    return
        from projections.view import reader

        self.catch_up()
        with reader(self.ledger) as r:
            yield r

    def engine(self, hosts: set[str] | None = None) -> Any:
        from cli.bootstrap import engine
        from cli.progress import ProgressBar

        made = engine(
            self.ledger,
            hosts=hosts,
            on_progress=ProgressBar.shared().update,
            db=self.db,
        )
        self._engines.append(made)
        return made

    def close(self) -> None:
        for made in self._engines:
            made.close()
        self._engines.clear()
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None


def _driver_error(exc: BaseException) -> bool:
    """A refusal of the database itself (sqlite3's, psycopg's, eventsourcing's
    wrapper of either), not a bug of storctl's; psycopg is asked only if loaded."""
    import sqlite3
    import sys

    from eventsourcing.persistence import PersistenceError

    kinds: tuple[type[BaseException], ...] = (sqlite3.Error, PersistenceError)
    psycopg = sys.modules.get("psycopg")
    if psycopg is not None:
        kinds += (psycopg.Error,)
    return isinstance(exc, kinds)


def app(ctx: click.Context | None = None) -> AppContext:
    ctx = ctx or click.get_current_context()
    obj = ctx.find_object(AppContext)
    assert obj is not None, "storctl's group sets the context"
    return obj


def operate(a: AppContext, job: Any, show: Any = None) -> Any:
    """Finish an operation the way CLI.md says: `--async` prints the job id at once;
    otherwise drive the engine until the job settles, showing progress on a terminal,
    and exit 3 with the recorded reason when it failed."""
    from ledger.values import JobStatus

    if a.run_async:
        from cli.output import emit

        emit("json" if a.output == "table" else a.output, {"jobid": str(job.id)})
        return None
    if not job.settled:
        job = a.engine().drive(job.id)
    else:
        a.catch_up()
    if job.status is JobStatus.failed:
        from cli.failures import failure

        raise failure(a, job)
    if show is not None:
        show()
    return job
