"""What every command shares: the database, the output format, the actor, the ledger.

The ledger is opened on first use, so `--help` and argument errors never touch the
database, and a refused command leaves a missing database file missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import click

from ledger.aggregate import Ctx
from ledger.app import Ledger
from ledger.store.database import Database, parse_db


@dataclass
class AppContext:
    db_url: str | None
    output: str
    actor: str | None
    run_async: bool
    _ledger: Ledger | None = field(default=None, repr=False)
    _engines: list[Any] = field(default_factory=list, repr=False)

    @property
    def db(self) -> Database:
        return parse_db(self.db_url)

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            from cli.bootstrap import open_ledger

            self._ledger = open_ledger(self.db_url)
        return self._ledger

    def ctx(self) -> Ctx:
        """The request context: the actor is who the store says appends (see
        `Ledger._stamp`); `--actor` only adds the name it is done on behalf of."""
        principal = getattr(self.ledger.recorder, "principal", None)
        return Ctx.new(self.actor or principal)

    def catch_up(self) -> None:
        """Bring the projected tables up to the head before reading them."""
        from projections.projector import catch_up

        catch_up(self.ledger)

    def reader(self) -> Any:
        from projections.view import reader

        self.catch_up()
        return reader(self.ledger)

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


def app(ctx: click.Context | None = None) -> AppContext:
    ctx = ctx or click.get_current_context()
    obj = ctx.find_object(AppContext)
    assert obj is not None, "storctl's group sets the context"
    return obj


def operate(a: AppContext, job: Any, show: Any = None) -> Any:
    """Finish an operation the way CLI.md says: `--async` prints the job id at once;
    otherwise drive the engine until the job settles, showing progress on a terminal,
    and exit 3 with the recorded reason when it failed."""
    from ledger.errors import OperationFailed
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
        raise OperationFailed(str(job.id), job.error or "failed")
    if show is not None:
        show()
    return job
