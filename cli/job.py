"""`storctl job`: async jobs (`async_job`); every operation is one."""

from __future__ import annotations

from uuid import UUID

import click

from cli.completion import names
from cli.context import app
from cli.output import emit
from ledger.errors import InvalidInput, OperationFailed

COLUMNS = ["jobid", "status", "cmd", "objectid", "error"]


@click.group()
def cli() -> None:
    """Async jobs: what `--async` operations return, and how they ended.

    \b
    Example:
      storctl --async volume attach data-1 --vm web-1
      storctl job wait 6f1d3a52-...
    """


@cli.command("list")
def list_() -> None:
    """List jobs.

    \b
    Example:
      storctl job list
    """
    from projections.queries import list_jobs

    a = app()
    with a.reader() as r:
        emit(a.output, list_jobs(r), COLUMNS)


@cli.command("show")
@click.argument("ref", metavar="JOB", shell_complete=names("job"))
def show(ref: str) -> None:
    """Show one job.

    \b
    Example:
      storctl job show 6f1d3a52-...
    """
    _show(ref)


@cli.command("wait")
@click.argument("ref", metavar="JOB", shell_complete=names("job"))
@click.option("--timeout", type=float, default=None, help="Give up after this many s.")
def wait(ref: str, timeout: float | None) -> None:
    """Wait for a job to settle (working on it if no worker does); exit 3 if it failed.

    \b
    Example:
      storctl job wait 6f1d3a52-... --timeout 600
    """
    a = app()
    try:
        job_id = UUID(ref)
    except ValueError:
        raise InvalidInput("job id", ref, "expected a UUID") from None
    from ledger.job import Job

    a.ledger.load(Job, job_id)
    job = a.engine().drive(job_id, timeout=timeout)
    _show(str(job_id))
    if job.status.name == "failed":
        raise OperationFailed(str(job_id), job.error or "failed")


def _show(ref: str) -> None:
    from projections.queries import find

    a = app()
    with a.reader() as r:
        emit(a.output, find(r, "job", ref), COLUMNS)
