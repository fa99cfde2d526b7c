"""`storctl history` and `storctl audit` on a real simulator session: the row fields
of CLI.md, the filters, the three output formats and the incident picture."""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner

from cli.main import cli

FIELDS = [
    "position",
    "timestamp",
    "objecttype",
    "objectid",
    "event",
    "fromstate",
    "tostate",
    "actor",
    "jobid",
    "details",
]


def run(db, *args, code=0, output="json"):
    result = CliRunner().invoke(cli, ["--db", db, "-o", output, *args])
    assert result.exit_code == code, (result.output, result.stderr)
    if code == 0 and output == "json" and result.stdout.strip():
        return json.loads(result.stdout)
    return result


def simulator_session(db: str, tmp_path) -> str:
    """Host, simulator pool, store, template; a VM; data1 created, attached,
    detached; data2 created and deleted (by alice)."""
    run(db, "host", "add", "sim1", "--zone", "z1", "--cluster", "c1",
        "--hypervisor", "simulator")  # fmt: skip
    run(db, "pool", "add", "p1", "--zone", "z1", "--cluster", "c1", "--path",
        "/sim/p1", "--capacity", "100G", "--type", "simulator")  # fmt: skip
    run(db, "store", "add", "s1", "--zone", "z1", "--path", "/sim/s1",
        "--provider", "simulator")  # fmt: skip
    run(db, "template", "register", "t1", "--zone", "z1", "--url",
        "http://example.invalid/t1.qcow2", "--format", "qcow2")  # fmt: skip
    run(db, "vm", "deploy", "vm1", "--template", "t1", "--zone", "z1")
    run(db, "volume", "create", "data1", "--zone", "z1", "--size", "1G")
    run(db, "volume", "attach", "data1", "--vm", "vm1")
    run(db, "volume", "detach", "data1")
    run(db, "volume", "create", "data2", "--zone", "z1", "--size", "1G",
        "--pool", "p1")  # fmt: skip
    run(db, "--actor", "alice", "volume", "delete", "data2")
    return db


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("audit")
    return simulator_session(str(tmp / "ledger.db"), tmp)


class TestHistory:
    def test_rows_have_the_contract_fields_in_log_order(self, session):
        rows = run(session, "history", "volume", "data1")
        assert rows, "a created volume has a history"
        for row in rows:
            assert list(row)[: len(FIELDS)] == FIELDS
            assert set(row) - set(FIELDS) <= {"duration"}
        positions = [row["position"] for row in rows]
        assert positions == sorted(positions)
        events = [row["event"] for row in rows]
        assert events[0] == "Allocated"
        assert "AttachRequested" in events
        assert "DetachAnswered" in events
        assert {row["objectid"] for row in rows} == {rows[0]["objectid"]}

    def test_answers_carry_the_command_and_how_long_it_took(self, session):
        rows = run(session, "history", "volume", "data1")
        requests = [r for r in rows if r["event"] == "AttachRequested"]
        answers = [r for r in rows if r["event"] == "AttachAnswered"]
        assert requests[0]["details"]["command"]["kind"] == "AttachCommand"
        assert answers[0]["details"]["answer"]["result"] is True
        assert answers[0]["duration"] >= 0
        assert (answers[0]["fromstate"], answers[0]["tostate"]) == (
            "Attaching",
            "Ready",
        )
        assert all("duration" not in r for r in requests)

    def test_an_id_works_as_well_as_a_name(self, session):
        volume = run(session, "volume", "show", "data1")
        assert run(session, "history", "volume", volume["id"]) == run(
            session, "history", "volume", "data1"
        )

    def test_an_unknown_object_is_refused(self, session):
        result = run(session, "history", "volume", "nope", code=2)
        assert "not found" in result.stderr

    def test_png_is_a_png_and_html_holds_the_picture(self, session, tmp_path):
        png, page = tmp_path / "t.png", tmp_path / "t.html"
        run(session, "history", "volume", "data1", "--png", str(png),
            "--html", str(page))  # fmt: skip
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        text = page.read_text()
        assert "<svg" in text
        assert "AttachCommand" in text


class TestAudit:
    def test_event_filter(self, session):
        rows = run(session, "audit", "--event", "AttachAnswered")
        assert [r["event"] for r in rows] == ["AttachAnswered"]

    def test_object_filter_takes_a_name(self, session):
        assert run(session, "audit", "--object", "data1") == run(
            session, "history", "volume", "data1"
        )

    def test_job_filter(self, session):
        jobs = [j for j in run(session, "job", "list") if j["cmd"] == "volume.attach"]
        rows = run(session, "audit", "--job", jobs[0]["jobid"])
        assert rows
        assert {r["jobid"] for r in rows} == {jobs[0]["jobid"]}
        kinds = {r["objecttype"] for r in rows}
        assert {"Volume", "Job"} <= kinds

    def test_actor_filter(self, session):
        # the actor is who the store saw append (the OS user on SQLite); alice
        # is only the name it was done on behalf of, and the filter finds both
        rows = run(session, "audit", "--actor", "alice")
        assert rows
        assert {r["details"].get("onbehalfof") for r in rows} == {"alice"}
        assert "alice" not in {r["actor"] for r in rows}
        assert "DestroyRequested" in [r["event"] for r in rows]

    def test_time_window(self, session):
        rows = run(session, "audit")
        middle = rows[len(rows) // 2]["timestamp"]
        later = run(session, "audit", "--since", middle)
        earlier = run(session, "audit", "--until", middle)
        assert all(r["timestamp"] >= middle for r in later)
        assert all(r["timestamp"] <= middle for r in earlier)
        assert len(later) + len(earlier) >= len(rows)
        assert run(session, "audit", "--since", "2999-01-01") == []

    def test_a_malformed_time_is_refused_in_one_line(self, session):
        result = run(session, "audit", "--since", "1 fortnight", code=2)
        assert result.stdout == ""
        assert result.stderr.count("\n") == 1
        assert "a time ago (30m, 2h, 7d)" in result.stderr

    def test_a_time_ago_and_a_day_are_times(self, session):
        everything = run(session, "audit")
        assert run(session, "audit", "--since", "1h") == everything
        assert run(session, "audit", "--since", "yesterday") == everything
        assert run(session, "audit", "--until", "yesterday") == []
        assert run(session, "audit", "--until", "now") == everything

    def test_positions_bound_the_journal(self, session):
        rows = run(session, "audit", "--since", "3", "--until", "5")
        assert [r["position"] for r in rows] == [3, 4, 5]

    def test_last_n_and_reverse(self, session):
        everything = run(session, "audit")
        assert len(everything) > 3
        assert run(session, "audit", "-n", "3") == everything[-3:]
        newest = run(session, "audit", "-n", "3", "--reverse")
        assert newest == everything[-3:][::-1]
        assert run(session, "audit", "--reverse") == everything[::-1]

    def test_history_and_export_take_the_same_bounds(self, session):
        rows = run(session, "history", "volume", "data1")
        cut = rows[1]["position"]
        later = run(session, "history", "volume", "data1", "--since", str(cut))
        assert later == rows[1:]
        result = run(session, "export", "--since", str(cut), output="table")
        positions = [
            json.loads(line)["position"] for line in result.stdout.splitlines()
        ]
        assert positions
        assert min(positions) == cut


class TestJobList:
    def test_jobs_say_when_how_long_and_who(self, session):
        jobs = run(session, "job", "list")
        assert jobs
        for job in jobs:
            assert job["created"].endswith("Z")
            assert job["finished"] >= job["created"]
            assert job["duration"] >= 0
            assert job["actor"]
        text = run(session, "job", "list", output="table").stdout
        header = text.splitlines()[0].split()
        assert header[4:7] == ["CREATED", "DURATION", "ACTOR"]

    def test_status_filters(self, session):
        jobs = run(session, "job", "list")
        ok = run(session, "job", "list", "--status", "succeeded")
        assert ok
        assert ok == [j for j in jobs if j["status"] == "succeeded"]
        run(session, "job", "list", "--status", "lost", code=2)

    def test_csv_has_the_contract_header_and_json_details(self, session):
        result = run(session, "audit", "--object", "data1", output="csv")
        reader = csv.DictReader(io.StringIO(result.stdout))
        assert reader.fieldnames == [*FIELDS, "duration"]
        rows = list(reader)
        assert rows
        assert all(isinstance(json.loads(r["details"]), dict) for r in rows)
        answered = [r for r in rows if r["event"].endswith("Answered")]
        assert all(float(r["duration"]) >= 0 for r in answered)

    def test_table_summarises_the_details(self, session):
        result = run(session, "audit", "--event", "AttachRequested", output="table")
        assert "AttachCommand" in result.stdout
        assert result.stdout.splitlines()[0].split()[:3] == [
            "POSITION",
            "TIMESTAMP",
            "OBJECTTYPE",
        ]
