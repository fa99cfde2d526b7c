"""Integration fixtures: `storctl` run as a real process against a real database.

`Storctl` runs the installed console script (`.venv/bin/storctl`) with `--db` and
`-o json`, so every test talks to the program the way an operator's script does:
exit codes, one line on stderr, JSON on stdout. `ledger_events` reads the event store
back (SQLite or PostgreSQL) so tests can check the request/answer pairs themselves.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

STORCTL = Path(sys.executable).with_name("storctl")
TIMEOUT = 60.0  # no single storctl call in these tests should come near this


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        return json.loads(self.out) if self.out.strip() else None

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


@dataclass
class Storctl:
    """`storctl --db DB -o json ...` bound to one database.

    `run` uses click's `CliRunner` on `cli.main:cli` in this process (a subprocess
    spends half a second importing); `subprocess=True` runs the console script
    instead, and `popen` always does: concurrency and kills need real processes.
    """

    db: str
    env: dict[str, str] = field(default_factory=dict)
    subprocess: bool = False

    def argv(self, *args: str, run_async: bool = False) -> list[str]:
        return [
            str(STORCTL),
            "--db",
            self.db,
            "-o",
            "json",
            *(["--async"] if run_async else []),
            *args,
        ]

    def environ(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("STORCTL_DB", None)
        env.update(self.env)
        env.update(extra or {})
        return env

    def run(
        self,
        *args: str,
        run_async: bool = False,
        timeout: float = TIMEOUT,
        env: dict[str, str] | None = None,
    ) -> Result:
        if not self.subprocess and not env:
            return self._in_process(args, run_async=run_async)
        proc = subprocess.run(
            self.argv(*args, run_async=run_async),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.environ(env),
            check=False,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def _in_process(self, args: tuple[str, ...], *, run_async: bool) -> Result:
        from click.testing import CliRunner

        from cli.main import cli

        runner = CliRunner(env={"STORCTL_DB": None, **self.env})
        result = runner.invoke(
            cli, self.argv(*args, run_async=run_async)[1:], catch_exceptions=False
        )
        return Result(result.exit_code, result.stdout, result.stderr)

    def ok(self, *args: str, **kw: Any) -> Any:
        """Run, insist on exit 0, return the parsed JSON."""
        result = self.run(*args, **kw)
        assert result.code == 0, f"storctl {' '.join(args)}: {result}"
        return result.json

    def popen(
        self, *args: str, run_async: bool = False, env: dict[str, str] | None = None
    ) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(*args, run_async=run_async),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.environ(env),
        )

    # shorthands for what the tests read most
    def volume(self, ref: str) -> dict[str, Any]:
        return self.ok("volume", "show", ref)

    def pool(self, ref: str) -> dict[str, Any]:
        return self.ok("pool", "show", ref)

    def job(self, ref: str) -> dict[str, Any]:
        return self.ok("job", "show", ref)

    def failed(self, cmd: str) -> dict[str, Any]:
        """The object the last failed `cmd` job was about (by id: a create that
        failed before anything was made frees its name)."""
        jobs = [j for j in self.ok("job", "list") if j["cmd"] == cmd]
        [*_, job] = [j for j in jobs if j["status"] == "failed"]
        kind = cmd.split(".")[0]
        return {**self.ok(kind, "show", job["objectid"]), "job": job}

    def db_rows(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        """Rows of the projected tables, as the last command left them."""
        from ledger.app import Ledger
        from ledger.store.database import parse_db
        from projections.view import reader

        app = Ledger(env={**parse_db(self.db).env, "CREATE_TABLE": "n"})
        try:
            with reader(app) as r:
                return [dict(row) for row in r.all(sql, params)]
        finally:
            app.close()


@pytest.fixture
def storctl_for() -> Callable[[str], Storctl]:
    return Storctl


def finish(proc: subprocess.Popen[str], timeout: float = TIMEOUT) -> Result:
    """Wait for a Popen'd storctl; kill it (by its pid) if it overstays."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"storctl {proc.args} did not finish in {timeout} s:\n{err}")
    return Result(proc.returncode, out, err)


def wait_for(
    condition: Callable[[], Any], timeout: float = 20.0, what: str = "condition"
) -> Any:
    """Poll `condition` until it is truthy (returned) or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


# ------------------------------------------------------------------ the event store


@dataclass(frozen=True)
class StoredEvent:
    position: int
    originator_id: str
    version: int
    topic: str
    state: dict[str, Any]

    @property
    def kind(self) -> str:
        """`Volume.CopyRequested` from `storctl.Volume.CopyRequested`."""
        return self.topic.removeprefix("storctl.")


def ledger_events(db: str) -> list[StoredEvent]:
    """Every stored event, in notification order (SQLite or PostgreSQL)."""
    from ledger.app import Ledger
    from ledger.store.database import parse_db

    app = Ledger(env=parse_db(db).env)
    try:
        out: list[StoredEvent] = []
        start: int | None = None
        while True:
            notes = app.recorder.select_notifications(
                start=start, limit=500, inclusive_of_start=start is None
            )
            out += [
                StoredEvent(
                    n.id,
                    str(n.originator_id),
                    n.originator_version,
                    n.topic,
                    json.loads(n.state),
                )
                for n in notes
            ]
            if len(notes) < 500:
                return out
            start = notes[-1].id
    finally:
        app.close()


def request_answer_pairs(
    events: list[StoredEvent],
) -> dict[tuple[str, str], tuple[StoredEvent, list[StoredEvent]]]:
    """(originator, commandId) -> (the request, every answer to it)."""
    pairs: dict[tuple[str, str], tuple[StoredEvent, list[StoredEvent]]] = {}
    for ev in events:
        command = ev.state.get("command")
        if ev.topic.endswith("Requested") and command:
            key = (ev.originator_id, command["commandId"])
            assert key not in pairs, f"command requested twice: {ev}"
            pairs[key] = (ev, [])
    for ev in events:
        answer = ev.state.get("answer")
        if ev.topic.endswith("Answered") and answer:
            if answer.get("commandId") is None:
                # recorded without a host command (expunging a volume that never
                # got a file, e.g. a failed create freeing its name): no request
                continue
            key = (ev.originator_id, answer["commandId"])
            assert key in pairs, f"an answer without a request: {ev}"
            pairs[key][1].append(ev)
    return pairs


def assert_answered_at_most_once(db: str) -> dict[tuple[str, str], Any]:
    pairs = request_answer_pairs(ledger_events(db))
    doubled = {
        f"{req.kind} {cid}": [a.position for a in answers]
        for (_, cid), (req, answers) in pairs.items()
        if len(answers) > 1
    }
    assert not doubled, f"requests answered more than once: {doubled}"
    return pairs


# ------------------------------------------------------------------ simulator zone


@dataclass
class SimZone:
    cli: Storctl
    template: dict[str, Any]
    pool: dict[str, Any]


def simulator_zone(cli: Storctl, capacity: str = "100G") -> SimZone:
    """Host sim1, simulator pool p1 (cluster c1), image store s1, template t1."""
    cli.ok("host", "add", "sim1", "--zone", "z1", "--cluster", "c1",
           "--hypervisor", "simulator")  # fmt: skip
    pool = cli.ok("pool", "add", "p1", "--zone", "z1", "--cluster", "c1",
                  "--path", "/sim/p1", "--capacity", capacity,
                  "--type", "simulator")  # fmt: skip
    cli.ok("store", "add", "s1", "--zone", "z1", "--path", "/sim/s1",
           "--provider", "simulator")  # fmt: skip
    template = cli.ok("template", "register", "t1", "--zone", "z1",
                      "--url", "http://example.invalid/t1.qcow2",
                      "--format", "qcow2")  # fmt: skip
    assert template["isready"] is True
    return SimZone(cli, template, pool)


@pytest.fixture
def cli(db_url: str) -> Storctl:
    """storctl on the `db_url` database (a SQLite file, or a fresh PG schema)."""
    return Storctl(db_url)


@pytest.fixture
def sim(cli: Storctl) -> SimZone:
    return simulator_zone(cli)


@pytest.fixture
def sqlite_cli(tmp_path: Path) -> Storctl:
    return Storctl(str(tmp_path / "ledger.db"))
