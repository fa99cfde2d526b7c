"""What a command imports is what it costs to start: read commands on a SQLite ledger
import neither the write side (eventsourcing, the aggregates, the use cases, the
executors) nor psycopg, and `volume create` (which stays Allocated) neither the
executors nor psycopg. Asserted on `sys.modules` of a real process, after the
command printed what it should (so a command that failed early cannot pass); the
time itself is measured in `bench/startup.py`, never here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli

#: runs storctl's entry point, then writes the loaded modules to the file in argv[1]
SCRIPT = """\
import json, sys
out = sys.argv.pop(1)
sys.argv[0] = "storctl"
try:
    from cli.main import main
    main()
finally:
    with open(out, "w") as f:
        json.dump(sorted(sys.modules), f)
"""
WRITE_SIDE = (
    "eventsourcing",
    "psycopg",
    "psycopg_pool",
    "executors",
    "ledger.app",
    "ledger.aggregate",
    "ledger.usecases",
    "ledger.volume",
    "transitions",
    "boto3",
)
NO_EXECUTORS = ("psycopg", "psycopg_pool", "executors", "boto3")


def run(db: str, *args: str) -> object:
    result = CliRunner().invoke(cli, ["--db", db, "-o", "json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def storctl(tmp_path: Path, db: str, *args: str) -> tuple[str, set[str]]:
    """`storctl --db DB -o json ARGS` in a fresh process: its stdout and modules."""
    out = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(out), "--db", db, "-o", "json", *args],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "STORCTL_DB"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout, set(json.loads(out.read_text()))


def loaded(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    return sorted(
        m for m in modules if any(m == p or m.startswith(p + ".") for p in packages)
    )


@pytest.fixture
def ledger_file(tmp_path):
    db = str(tmp_path / "ledger.db")
    (tmp_path / "gold").mkdir()
    run(db, "host", "add", "kvm-01", "--zone", "z1", "--cluster", "c1")
    run(db, "pool", "add", "gold", "--zone", "z1", "--cluster", "c1",
        "--path", str(tmp_path / "gold"), "--capacity", "10G")  # fmt: skip
    run(db, "volume", "create", "data-1", "--zone", "z1", "--size", "1G")
    return db


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["volume", "list"], "data-1"),
        (["volume", "show", "data-1"], "data-1"),
        (["pool", "list"], "gold"),
        (["pool", "show", "gold"], "gold"),
        (["host", "list"], "kvm-01"),
        (["history", "volume", "data-1"], "Allocated"),
        (["audit", "--event", "Allocated"], "data-1"),
        (["config", "show"], "flag --db"),
    ],
)
def test_read_commands_import_no_write_side(tmp_path, ledger_file, args, expect):
    out, modules = storctl(tmp_path, ledger_file, *args)
    assert expect in out
    assert loaded(modules, WRITE_SIDE) == []


def test_tables_behind_the_log_are_caught_up_first(tmp_path, ledger_file):
    """A volume whose events the tables have not seen yet is listed all the
    same: the quick way in is taken only when the tables are current."""
    from cli.bootstrap import open_ledger
    from ledger.aggregate import Ctx
    from ledger.usecases import volumes

    ledger = open_ledger(ledger_file)
    try:  # recorded, not projected: nothing catches the tables up here
        volumes.create_volume(
            ledger, Ctx.new("t"), name="late-1", zone="z1", size=1 << 30
        )
    finally:
        ledger.close()
    out, modules = storctl(tmp_path, ledger_file, "volume", "list")
    assert {v["name"] for v in json.loads(out)} == {"data-1", "late-1"}
    assert "ledger.app" in modules  # it went the usual way, through the ledger
    out, modules = storctl(tmp_path, ledger_file, "volume", "list")
    assert {v["name"] for v in json.loads(out)} == {"data-1", "late-1"}
    assert loaded(modules, WRITE_SIDE) == []  # and now the tables are current


def test_volume_create_imports_no_executor_and_no_psycopg(tmp_path, ledger_file):
    out, modules = storctl(
        tmp_path, ledger_file, "volume", "create", "d2", "--zone", "z1", "--size", "1G"
    )
    assert json.loads(out)["state"] == "Allocated"
    assert loaded(modules, NO_EXECUTORS) == []
    assert "ledger.app" in modules  # it did record the event


def test_help_and_completion_import_no_noun_module(tmp_path, ledger_file):
    out, modules = storctl(tmp_path, ledger_file, "--help")
    assert "volume" in out
    assert loaded(modules, ("cli.volume", "cli.pool", "ledger.app", "executors")) == []
