"""The soak's books: what each CLI was told, held against what the ledger recorded.

Every storctl call of the soak ran with an actor of its own, so its jobs are the
`async_job` rows with that actor and its events the journal rows with it:
- told 0 by a command that starts work: exactly one job, and it succeeded (with
  `--async`: exactly one job, the one whose id it was given);
- told 2 (refused): no job and no event with its actor;
- told 3: its one job failed, or nothing at all was written (a refusal decided
  after the allocator looked, "no suitable pool", is a recorded decision and so
  may be a job); told 3 because the database went away (the restart): at most
  one job, whatever became of it (the command could not know);
- `job wait` told 0 or 3: the job succeeded or failed;
- a read (`volume list`): no job;
- no job whose actor no call had; every request answered exactly once; every
  job settled exactly once; no pool's allocation past capacity x over-provisioning;
- every failure one line on stderr, never a traceback, never exit 1.

A count that does not hold is `lost` (the ledger lacks what a CLI was told) or
`doubled` (it holds it twice); both must be 0.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any

from .conftest import ledger_events, request_answer_pairs

if TYPE_CHECKING:
    from .soak import Call, Soak

#: storctl commands that start a job (noun, verb)
STARTS_WORK = {
    ("volume", "create"),
    ("volume", "attach"),
    ("volume", "detach"),
    ("volume", "delete"),
    ("volume", "migrate"),
    ("snapshot", "create"),
}
STATUS = {0: "pending", 1: "succeeded", 2: "failed"}
HARNESS_ACTORS = ("soak-setup", "soak-faults", "soak-end")


def _problem(call: Call, jobs: list[dict[str, Any]], events: int) -> str | None:
    """What is wrong with `call` against its `jobs` and `events`, or None."""
    verb = tuple(call.args[:2])
    statuses = [STATUS.get(j["job_status"], "?") for j in jobs]
    if call.code not in (0, 2, 3):
        return f"exit {call.code}"
    if call.code != 0 and len(call.err.splitlines()) != 1:
        return "not one line on stderr"
    if "Traceback" in call.err:
        return "a traceback"
    if call.db_failed:
        return "doubled" if len(jobs) > 1 else None
    if call.code == 2:
        return None if not jobs and events == 0 else "refused, yet it wrote"
    if verb == ("job", "wait"):
        return None if not jobs else "job wait started a job"
    if verb not in STARTS_WORK:
        return None if call.code == 0 and not jobs else f"a read with {statuses}"
    if len(jobs) > 1:
        return "doubled"
    if call.code == 0:
        if not jobs:
            return "lost"
        if isinstance(call.out, dict) and "jobid" in call.out:  # --async
            return None if jobs[0]["id"] == call.out["jobid"] else "lost"
        return None if statuses == ["succeeded"] else f"told 0, job {statuses}"
    # exit 3
    return None if statuses in ([], ["failed"]) else f"told 3, job {statuses}"


def check_books(soak: Soak) -> None:
    report, cli = soak.report, soak.cli
    # the store records who appended (the session user); each call's own name
    # rides beside it as `onbehalfof`, on its events and so on its jobs
    rows = cli.db_rows("SELECT actor, job_id, details FROM event_journal", [])
    events_by_actor: Counter[str] = Counter()
    claimed_by_job: dict[str, str] = {}
    for row in rows:
        details = row["details"]
        if isinstance(details, str):
            details = json.loads(details) if details else {}
        claimed = (details or {}).get("onbehalfof") or row["actor"]
        events_by_actor[claimed] += 1
        if row["job_id"]:
            claimed_by_job.setdefault(str(row["job_id"]), claimed)
    jobs_by_actor: dict[str, list[dict[str, Any]]] = defaultdict(list)
    jobs = cli.db_rows("SELECT id, job_cmd, job_status, actor FROM async_job", [])
    for job in jobs:
        job["actor"] = claimed_by_job.get(str(job["id"]), job["actor"])
        jobs_by_actor[job["actor"]].append(job)
    report.jobs = dict(Counter(STATUS.get(j["job_status"], "?") for j in jobs))
    report.events = sum(events_by_actor.values())
    report.faults_used = len(
        cli.db_rows(
            "SELECT position FROM event_journal WHERE object_type = ? AND event = ?",
            ["SimulatorPlan", "FaultUsed"],
        )
    )

    problems: dict[str, str] = {}
    status_of = {j["id"]: STATUS.get(j["job_status"], "?") for j in jobs}
    for call in soak.calls:
        wrong = _problem(
            call, jobs_by_actor.get(call.actor, []), events_by_actor[call.actor]
        )
        if wrong is None and call.args[:2] == ["job", "wait"] and not call.db_failed:
            waited = status_of.get(call.args[2])
            expected = {0: "succeeded", 3: "failed"}.get(call.code)
            if expected is not None and waited != expected:
                wrong = f"job wait told {call.code}, job {waited}"
        if wrong is not None:
            problems[f"{call.actor} {' '.join(call.args)}"] = f"{wrong}: {call.err}"
    known = {c.actor for c in soak.calls} | set(HARNESS_ACTORS)
    orphans = [j for j in jobs if j["actor"] not in known]
    report.lost = sum("lost" in p or "told" in p for p in problems.values())
    report.doubled = sum("doubled" in p for p in problems.values())
    assert not problems, f"{len(problems)} calls disagree with the ledger: {problems}"
    assert not orphans, f"jobs no CLI was told about: {orphans}"
    assert report.jobs.get("pending", 0) == 0, report.jobs
    report.checks.append(
        f"{len(soak.calls)} CLI calls held against their jobs and events: "
        "0 lost, 0 doubled, 0 orphan jobs, every failure one line"
    )

    # An answer with no command id was recorded without a host command (expunging
    # a volume that never got a file: "no file on primary storage"): no request.
    events = [
        e
        for e in ledger_events(cli.db)
        if not (
            e.topic.endswith("Answered")
            and isinstance(e.state.get("answer"), dict)
            and e.state["answer"].get("commandId") is None
        )
    ]
    pairs = request_answer_pairs(events)
    twice = {
        f"{req.kind} {cid}": [a.position for a in answers]
        for (_, cid), (req, answers) in pairs.items()
        if len(answers) > 1
    }
    assert not twice, f"requests answered more than once: {twice}"
    unanswered = [req.kind for req, answers in pairs.values() if not answers]
    assert not unanswered, f"requests never answered: {unanswered}"
    report.requests = len(pairs)
    report.answers = sum(len(a) for _, a in pairs.values())
    report.checks.append("every request answered exactly once")

    settled = Counter(
        row["object_id"]
        for row in cli.db_rows(
            "SELECT object_id FROM event_journal"
            " WHERE object_type = ? AND event IN (?, ?)",
            ["Job", "Succeeded", "Failed"],
        )
    )
    settled_twice = {k: n for k, n in settled.items() if n > 1}
    never = [j["id"] for j in jobs if settled[j["id"]] == 0]
    assert not settled_twice, f"jobs settled more than once: {settled_twice}"
    assert not never, f"jobs with no settlement event: {never}"
    report.checks.append("every job settled exactly once")

    pools = cli.db_rows(
        "SELECT name, capacity_bytes, allocated_bytes, overprovision_factor"
        " FROM storage_pool",
        [],
    )
    over = [
        p
        for p in pools
        if p["allocated_bytes"] < 0
        or p["allocated_bytes"] > p["capacity_bytes"] * p["overprovision_factor"]
    ]
    report.overbooked = len(over)
    assert not over, f"pools overbooked: {over}"
    report.checks.append("no pool allocated past capacity x over-provisioning")
