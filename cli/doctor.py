"""`storctl doctor`: objects stuck in a transitional state, and what to do about them.

Candidates come from the projected tables (caught up first): `volumes.state`,
`snapshots.status` and the `*_store_ref` states in a transitional state, and
`async_job.job_status = 0`. Those are indexed current state, a few rows however long
the history; scanning the notification log would read every event ever recorded to
find the same few. The tables only nominate: `ledger.doctor` loads each aggregate and
judges from its `pending` command and the request event, so a projection that lags
cannot make the doctor fail a command that was answered.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import click

from cli.context import AppContext, app
from cli.output import emit, say
from ledger.aggregate import Ctx, StaleAnswer
from ledger.doctor import COLUMNS, Finding, diagnose
from ledger.errors import InvalidInput, OperationFailed
from ledger.fsm import OBJECT_IN_STORE, SNAPSHOT, VOLUME
from ledger.job import Job
from ledger.usecases import answers

_QUERIES = (
    ("volumes", "uuid", "state", VOLUME.transitional),
    ("snapshots", "uuid", "status", SNAPSHOT.transitional),
    ("template_store_ref", "id", "state", OBJECT_IN_STORE.transitional),
    ("template_spool_ref", "id", "state", OBJECT_IN_STORE.transitional),
    ("snapshot_store_ref", "id", "state", OBJECT_IN_STORE.transitional),
)


def candidates(a: AppContext) -> tuple[list[UUID], list[UUID]]:
    """(objects in a transitional state, pending jobs), from the projected tables."""
    objects: list[UUID] = []
    with a.reader() as r:
        for table, key, column, states in _QUERIES:
            marks = ", ".join("?" for _ in states)
            rows = r.all(
                f"SELECT {key} AS id FROM {table} WHERE {column} IN ({marks})",
                sorted(states),
            )
            objects += [UUID(str(row["id"])) for row in rows]
        jobs = [
            UUID(str(row["id"]))
            for row in r.all("SELECT id FROM async_job WHERE job_status = 0")
        ]
    return objects, jobs


def worker_alive(a: AppContext) -> bool:
    """A live `engine` or `dispatcher:HOSTS` lease holder: someone sends commands."""
    from executors.lease import Leases

    return any(
        h.name == "engine" or h.name.startswith("dispatcher:")
        for h in Leases(a.db).holders()
    )


@click.command()
@click.option("--fix", is_flag=True, help="Apply the proposed fix to each finding.")
@click.option(
    "--fail",
    "fail",
    is_flag=True,
    help="With --fix: record every stuck command as failed (result=false) instead.",
)
def cli(fix: bool, fail: bool) -> None:  # noqa: FBT001 - click passes flags so
    """Objects stuck in a transitional state (no answer past the command's wait, or
    no worker alive while they wait), with the fix proposed for each.

    Exit 0 when nothing is stuck (or everything found was fixed), 3 otherwise.
    --fix re-sends a pending command when no worker is alive (commands are
    idempotent) and lets the workflows finish; --fix --fail records an answer with
    result=false ("failed by storctl doctor") so the workflows compensate: the
    reservation is given back and the object returns to its settled state.

    \b
    Example:
      storctl doctor
      storctl -o json doctor | jq '.[] | {id, command, overdue}'
      storctl doctor --fix --fail
    """
    if fail and not fix:
        raise InvalidInput("--fail", "without --fix", "give --fix --fail")
    a = app()
    objects, jobs = candidates(a)
    findings = diagnose(a.ledger, objects, jobs, worker_alive=worker_alive(a))
    rows = [f.row() for f in findings]
    columns = list(COLUMNS)
    if fix:
        columns.append("outcome")
        for finding, row in zip(findings, rows, strict=True):
            row["outcome"] = apply(a, finding, fail=fail)
        a.catch_up()
    emit(a.output, rows, columns)
    left = [r for r in rows if r.get("outcome", "not fixed") != "fixed"]
    if not left:
        if not rows:
            say("doctor: nothing stuck")
        return
    first = left[0]
    raise OperationFailed(
        "",
        f"{len(left)} stuck: {first['kind']} {first['id']} {first['state']}"
        f" ({', '.join(first['reasons'])}); "
        + ("fix it as the row says" if fix else "`storctl doctor --fix` proposes how"),
    )


def apply(a: AppContext, finding: Finding, *, fail: bool) -> str:
    """Apply one fix; the outcome as a word for the table."""
    engine = a.engine()
    if finding.command is None:  # a job with nothing in flight: run its workflows
        return _settle(a, engine, finding.job_id, finding)
    if fail:
        ctx = Ctx(
            actor=a.ctx().actor,
            job_id=finding.job_id or a.ctx().job_id,
            causation_id="storctl doctor",
        )
        try:
            answers.record_answer(a.ledger, ctx, finding.object_id, finding.failure())
        except StaleAnswer:
            return "answered meanwhile"
        return _settle(a, engine, finding.job_id, finding)
    if finding.fix != "redispatch":
        return "not fixed: a worker holds it (use --fix --fail)"
    with engine.lease() as mine:
        if not mine:
            return "not fixed: a worker took the lease"
        outcome = _resend(a, engine, finding)
        if outcome:
            return outcome
    return _settle(a, engine, finding.job_id, finding)


def _resend(a: AppContext, engine: Any, finding: Finding) -> str:
    """Send the pending command again (at-least-once; agents are idempotent)."""
    from executors import endpoints
    from ledger.commands import failure_for, from_dict

    assert finding.command is not None
    obj: Any = a.ledger.repository.get(finding.object_id)
    if not obj.pending or obj.pending["commandId"] != finding.command["commandId"]:
        return "answered meanwhile"
    command = from_dict(obj.pending)
    choice = endpoints.select(a.ledger, command)
    if choice.host is None:
        answer = failure_for(command, choice.reason)
    else:
        answer = engine.dispatcher.run(choice.host, command)
    ctx = Ctx(
        actor=a.ctx().actor,
        job_id=finding.job_id or a.ctx().job_id,
        causation_id="storctl doctor",
    )
    try:
        answers.record_answer(a.ledger, ctx, finding.object_id, answer)
    except StaleAnswer:
        return "answered meanwhile"
    return ""


def _settle(a: AppContext, engine: Any, job_id: str | None, finding: Finding) -> str:
    """Let the workflows follow what was recorded: drive the job, or one round."""
    job = a.ledger.find(Job, UUID(job_id)) if job_id else None
    if job is not None and not job.settled:
        job = engine.drive(job.id, timeout=float(finding.wait or 0) + 60.0)
    else:
        engine.run(once=True)
    obj: Any = a.ledger.repository.get(finding.object_id)
    if finding.command is not None and (obj.pending or {}).get(
        "commandId"
    ) == finding.command.get("commandId"):
        return "not fixed: still pending"
    if isinstance(obj, Job) and not obj.settled:
        return "not fixed: job still pending"
    return "fixed"
