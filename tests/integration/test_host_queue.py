"""Commands in flight per host are bounded, and the excess queues visibly (issue
19): with `concurrent.snapshots.threshold.perhost` 1, a second snapshot on a host
whose first is still running is not sent; `job list` and `job show` say it is
queued, on which host, and behind which job; it runs when the first returns.
A command on another host does not wait. On SQLite and PostgreSQL, with a
worker process (`executor run`) dispatching and inline CLIs asking."""

from __future__ import annotations

import signal
import time
from typing import Any

from click.testing import CliRunner

from cli.main import cli as storctl_main

from .conftest import SimZone, Storctl, finish, ledger_events, wait_for

DELAY = 6.0  # seconds the first snapshot takes on sim1


def second_cluster(cli: Storctl) -> None:
    cli.ok("host", "add", "sim2", "--zone", "z1", "--cluster", "c2",
           "--hypervisor", "simulator")  # fmt: skip
    cli.ok("pool", "add", "p2", "--zone", "z1", "--cluster", "c2",
           "--path", "/sim/p2", "--capacity", "100G",
           "--type", "simulator")  # fmt: skip


def volume(cli: Storctl, name: str, pool: str) -> dict[str, Any]:
    made = cli.ok("volume", "create", name, "--zone", "z1", "--size", "1G",
                  "--pool", pool)  # fmt: skip
    assert made["state"] == "Ready"
    return made


def table(cli: Storctl, *args: str) -> str:
    # no COLUMNS: the table is not fitted, and its ids are whole
    result = CliRunner(env={"STORCTL_DB": None, "COLUMNS": None}).invoke(
        storctl_main, ["--db", cli.db, "-o", "table", *args], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return result.stdout


def snapshot_answers(db: str) -> dict[str, int]:
    """job id -> the position of the answer to its snapshot's CreateObjectCommand."""
    asked: dict[str, str] = {}  # commandId -> job id
    answered: dict[str, int] = {}
    for ev in ledger_events(db):
        command = ev.state.get("command")
        if (
            ev.topic.endswith("Requested")
            and isinstance(command, dict)
            and command["kind"] == "CreateObjectCommand"
            and command["data"]["objectType"] == "SNAPSHOT"
        ):
            asked[command["commandId"]] = ev.state["job_id"]
        answer = ev.state.get("answer")
        if (
            ev.topic.endswith("Answered")
            and isinstance(answer, dict)
            and answer["commandId"] in asked
        ):
            answered[asked[answer["commandId"]]] = ev.position
    assert len(answered) == 2, answered
    return answered


def test_a_second_snapshot_queues_behind_the_first_and_another_host_does_not(
    sim: SimZone,
) -> None:
    cli = sim.cli
    second_cluster(cli)
    volume(cli, "v1", "p1")
    volume(cli, "v2", "p1")
    cli.ok("config", "set", "concurrent.snapshots.threshold.perhost", "1")
    cli.ok("simulator", "configure", "--host", "sim1",
           "--command", "CreateObjectCommand", "--delay", str(DELAY),
           "--count", "1")  # fmt: skip
    worker = cli.popen("executor", "run")
    try:
        first = cli.ok("snapshot", "create", "v1", "--name", "s1", run_async=True)
        second = cli.ok("snapshot", "create", "v2", "--name", "s2", run_async=True)
        job1, job2 = first["jobid"], second["jobid"]

        shown = wait_for(
            lambda: (j := cli.job(job2))["status"] == "queued" and j,
            what="the second snapshot queued",
        )
        assert shown["queuedon"] == "sim1"
        assert shown["threshold"] == "concurrent.snapshots.threshold.perhost"
        assert shown["behind"] == [job1]
        assert cli.job(job1)["status"] == "pending"  # running, not queued
        assert cli.job(job1)["behind"] == []
        listed = {j["jobid"]: j for j in cli.ok("job", "list")}
        assert listed[job2]["status"] == "queued"
        assert listed[job2]["behind"] == [job1]
        line = next(ln for ln in table(cli, "job", "list").splitlines() if job2 in ln)
        assert "queued" in line
        assert job1 in line

        # sim2 has nothing in flight: its command goes at once, queue or not
        began = time.monotonic()
        volume(cli, "v3", "p2")
        took = time.monotonic() - began
        assert took < DELAY, f"a volume on sim2 waited {took:.1f} s"
        assert cli.job(job2)["status"] == "queued"  # the first still runs

        done = cli.ok("job", "wait", job2, "--timeout", "60")
        assert done["status"] == "succeeded"
        assert done["behind"] == []
        assert cli.job(job1)["status"] == "succeeded"
    finally:
        worker.send_signal(signal.SIGTERM)
        result = finish(worker)
    assert result.code == 0, result
    answers = snapshot_answers(cli.db)
    # the second snapshot was sent only once the first had returned (undelayed,
    # it would have been answered first)
    assert answers[job1] < answers[job2], answers


def test_a_queued_command_starts_when_the_one_ahead_times_out(sim: SimZone) -> None:
    """A hung command holds its slot only until its own wait ends."""
    cli = sim.cli
    cli.ok("config", "set", "concurrent.commands.threshold.perhost", "1")
    cli.ok("config", "set", "wait", "3")
    cli.ok("simulator", "configure", "--host", "sim1",
           "--command", "CreateObjectCommand", "--hang", "--count", "1")  # fmt: skip
    worker = cli.popen("executor", "run")
    try:
        hung = cli.ok("volume", "create", "a", "--zone", "z1", "--size", "1G",
                      "--pool", "p1", run_async=True)["jobid"]  # fmt: skip
        after = cli.ok("volume", "create", "b", "--zone", "z1", "--size", "1G",
                       "--pool", "p1", run_async=True)["jobid"]  # fmt: skip
        shown = wait_for(
            lambda: (j := cli.job(after))["status"] == "queued" and j,
            what="the second command queued",
        )
        assert shown["threshold"] == "concurrent.commands.threshold.perhost"
        assert shown["behind"] == [hung]
        done = cli.ok("job", "wait", after, "--timeout", "60")
        assert done["status"] == "succeeded"
        failed = cli.job(hung)
        assert failed["status"] == "failed"
        # by its own wait (what was left of 3 s when it was sent)
        assert "timed out after" in failed["error"]
    finally:
        worker.send_signal(signal.SIGTERM)
        result = finish(worker)
    assert result.code == 0, result
