"""`storctl job`: async jobs (`async_job`); every operation is one."""

from __future__ import annotations

import contextlib
from typing import Any
from uuid import UUID

import click

from cli.completion import names
from cli.context import app
from cli.output import emit

COLUMNS = [
    "jobid", "status", "cmd", "objectid", "created", "duration", "actor", "behind",
    "error",
]  # fmt: skip
STATUSES = ("pending", "queued", "succeeded", "failed")


@click.group()
def cli() -> None:
    """Async jobs: what `--async` operations return, and how they ended.

    \b
    Example:
      storctl --async volume attach data-1 --vm web-1
      storctl job wait 6f1d3a52-...
    """


@cli.command("list")
@click.option(
    "--status",
    type=click.Choice(STATUSES, case_sensitive=False),
    help="Only jobs in this status (queued: pending, waiting for a host slot).",
)
@click.option(
    "-w", "--watch", is_flag=True, help="Then print each job as it starts or ends (^C)."
)
def list_(status: str | None, watch: bool) -> None:  # noqa: FBT001 - click's flag
    """List jobs: when each was created, how long it took, who started it.

    \b
    Example:
      storctl job list --status failed
      storctl job list --watch
    """
    from projections.queries import list_jobs

    a = app()

    def jobs(r: Any) -> list[dict[str, Any]]:
        rows = _queue_state(a, list_jobs(r))
        return [j for j in rows if status is None or j["status"] == status.lower()]

    with a.reader() as r:
        found = jobs(r)
    if not watch:
        with a.reader() as r:
            emit(a.output, found, COLUMNS, names=r)
        return
    from cli.follow import watch_rows

    watch_rows(found, jobs, lambda job: (job["jobid"], job["status"]), COLUMNS)


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
    from projections.queries import find

    a = app()
    with a.reader() as r:
        job_id = UUID(str(find(r, "job", ref)["jobid"]))
    from ledger.job import Job

    a.ledger.load(Job, job_id)
    job = a.engine().drive(job_id, timeout=timeout)
    _show(str(job_id))
    if job.status.name == "failed":
        from cli.failures import failure

        raise failure(a, job)


def _show(ref: str) -> None:
    from projections.queries import find

    a = app()
    with a.reader() as r:
        emit(a.output, _queue_state(a, [find(r, "job", ref)])[0], COLUMNS, names=r)


def _queue_state(a: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each pending job's place in its host's queue (`executors.host_slots`):
    `queued` (its commands wait for a slot; none runs), on `queuedon`, held by
    `threshold`, `behind` the jobs whose commands hold the host's slots."""
    from executors.host_slots import read, waiting
    from executors.lease import Leases
    from ledger.host_limits import RUNNING, Limits

    slots = []
    # A reader without the right to make the lease table still lists its jobs.
    with contextlib.suppress(Exception):
        leases = Leases(a.db)
        try:
            slots = read(leases)
        finally:
            leases.close()
    queued = waiting(slots, Limits.of(a.ledger.settings())) if slots else {}
    running = {s.job_id for s in slots if s.state == RUNNING}
    out = []
    for row in rows:
        place = queued.get(row["jobid"]) if row["status"] == "pending" else None
        row = {**row, "queuedon": None, "threshold": None, "behind": []}
        if place is not None:
            if row["jobid"] not in running:
                row["status"] = "queued"
            row["queuedon"] = place.host
            row["threshold"] = place.key
            row["behind"] = list(place.behind)
        out.append(row)
    return out
