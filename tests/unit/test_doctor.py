"""`storctl doctor`: stuck objects found, re-dispatched or failed, on SQLite and PG.

A simulator host told to hang `CreateObjectCommand`, the global `wait` at 1 s, and a
volume created with `--async` and no worker: the volume sits in Creating with its
command unanswered. The doctor reports it (no worker; then past its wait too), and
`--fix --fail` records `result=false` so the workflows release its reservation, as
after any failed create, and (nothing was made) expunge it, freeing its name.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from ledger.aggregate import Ctx
from ledger.app import Ledger
from ledger.commands import from_dict
from ledger.doctor import FAIL_DETAILS, NO_WORKER, PAST_WAIT, diagnose
from ledger.store.database import parse_db
from ledger.usecases import answers
from ledger.volume import Volume
from tests.integration.conftest import (
    SimZone,
    Storctl,
    ledger_events,
    simulator_zone,
)


@pytest.fixture
def sim(db_url: str) -> SimZone:
    return simulator_zone(Storctl(db_url))


def _stuck_create(sim: SimZone, *, count: str | None = None) -> tuple[dict, str]:
    cli = sim.cli
    hang = ["--count", count] if count else []
    cli.ok("simulator", "configure", "--host", "sim1",
           "--command", "CreateObjectCommand", "--hang", *hang)  # fmt: skip
    cli.ok("config", "set", "wait", "1")
    started = cli.ok("volume", "create", "v1", "--zone", "z1", "--size", "1G",
                     "--pool", "p1", run_async=True)  # fmt: skip
    vol = cli.volume("v1")
    assert vol["state"] == "Creating"
    return vol, started["jobid"]


def test_finds_a_stuck_create_and_fails_it(sim: SimZone) -> None:
    cli = sim.cli
    before = cli.pool("p1")["disksizeallocated"]
    vol, job_id = _stuck_create(sim)
    assert cli.pool("p1")["disksizeallocated"] == before + (1 << 30)

    now = cli.run("doctor")
    assert now.code == 3, now
    assert len(now.err.strip().splitlines()) == 1, now
    [row] = now.json
    assert row["kind"] == "volume"
    assert row["id"] == vol["id"]
    assert row["state"] == "Creating"
    assert row["command"] == "CreateObjectCommand"
    assert row["jobid"] == job_id
    assert NO_WORKER in row["reasons"]
    assert row["fix"] == "redispatch"

    time.sleep(1.2)
    later = cli.run("doctor")
    assert later.code == 3, later
    [row] = later.json
    assert row["reasons"] == [PAST_WAIT, NO_WORKER]
    assert row["overdue"] > 0

    fixed = cli.run("doctor", "--fix", "--fail")
    assert fixed.code == 0, fixed
    [row] = fixed.json
    assert row["outcome"] == "fixed"

    after = cli.volume(vol["id"])
    assert after["state"] == "Expunged"  # never made: the name is free again
    assert after["storageid"] is None
    assert cli.pool("p1")["disksizeallocated"] == before
    job = cli.job(job_id)
    assert job["status"] == "failed"
    assert FAIL_DETAILS in job["error"]
    recorded = [
        e
        for e in ledger_events(cli.db)
        if e.kind == "Volume.CreateAnswered" and e.originator_id == vol["id"]
    ]
    assert [a.state["answer"]["details"] for a in recorded] == [FAIL_DETAILS]

    clean = cli.run("doctor")
    assert clean.code == 0, clean
    assert clean.json == []


def test_fix_redispatches_when_no_worker(sim: SimZone) -> None:
    cli = sim.cli
    _vol, job_id = _stuck_create(sim, count="1")
    cli.ok("simulator", "clear")  # the agent would answer now: send it again
    fixed = cli.run("doctor", "--fix")
    assert fixed.code == 0, fixed
    [row] = fixed.json
    assert row["fix"] == "redispatch"
    assert row["outcome"] == "fixed"
    assert cli.volume("v1")["state"] == "Ready"
    assert cli.job(job_id)["status"] == "succeeded"
    assert cli.run("doctor").json == []


def test_a_job_whose_workflows_never_ran(sim: SimZone) -> None:
    """The answer is recorded but no worker followed it: the job is what is stuck."""
    from executors.agents.simulator import success_for

    cli = sim.cli
    vol, job_id = _stuck_create(sim)
    app = Ledger(env=parse_db(cli.db).env)
    try:
        volume = app.load(Volume, UUID(vol["id"]))
        assert volume.pending is not None
        answer = success_for(from_dict(volume.pending))
        answers.record_answer(app, Ctx("test", job_id, "test"), volume.id, answer)
    finally:
        app.close()
    found = cli.run("doctor")
    assert found.code == 3, found
    [row] = found.json
    assert (row["kind"], row["id"], row["fix"]) == ("job", job_id, "drive")
    fixed = cli.run("doctor", "--fix")
    assert fixed.code == 0, fixed
    assert cli.job(job_id)["status"] == "succeeded"
    assert cli.volume("v1")["state"] == "Ready"


def test_clean_after_normal_operations(sim: SimZone) -> None:
    cli = sim.cli
    cli.ok("vm", "deploy", "vm1", "--template", "t1", "--zone", "z1")
    cli.ok("volume", "create", "d1", "--zone", "z1", "--size", "1G")
    cli.ok("volume", "attach", "d1", "--vm", "vm1")
    cli.ok("volume", "detach", "d1")
    cli.ok("volume", "delete", "d1")
    cli.ok("volume", "expunge", "d1")
    result = cli.run("doctor")
    assert result.code == 0, result
    assert result.json == []
    assert "nothing stuck" in result.err


def test_fail_needs_fix(sim: SimZone) -> None:
    result = sim.cli.run("doctor", "--fail")
    assert result.code == 2, result
    assert len(result.err.strip().splitlines()) == 1


def test_with_a_live_worker_only_past_the_wait_is_stuck(sim: SimZone) -> None:
    vol, _ = _stuck_create(sim)
    app = Ledger(env=parse_db(sim.cli.db).env)
    try:
        vid = UUID(vol["id"])
        assert diagnose(app, [vid], [], worker_alive=True) == []
        later = datetime.now(UTC) + timedelta(seconds=5)
        [finding] = diagnose(app, [vid], [], now=later, worker_alive=True)
        assert finding.reasons == (PAST_WAIT,)
        assert finding.fix == "fail"
        assert finding.failure().result is False
        assert finding.failure().details == FAIL_DETAILS
    finally:
        app.close()
