"""The database failing under a command is one line and exit 3, never a secret."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
from click.testing import CliRunner
from eventsourcing.persistence import IntegrityError, OperationalError

from cli.db_failures import database_failure


def test_a_failed_rollback_names_the_failure_that_ended_the_transaction():
    try:
        try:
            raise OperationalError(sqlite3.OperationalError("disk I/O error"))
        except OperationalError:
            raise sqlite3.OperationalError(
                "cannot rollback - no transaction is active"
            ) from None
    except sqlite3.OperationalError as exc:
        outer = exc
    # `from None` hides the context from tracebacks but keeps it on the exception
    assert database_failure(outer) == (
        "the ledger's database failed: disk I/O error (is its disk full?)"
    )


def test_a_connection_error_never_echoes_a_password():
    exc = psycopg.OperationalError(
        "connection failed: password=hunter2 host=db\nmore lines"
    )
    line = database_failure(exc)
    assert line is not None
    assert "hunter2" not in line
    assert "\n" not in line
    url = OperationalError("could not reach postgresql://ops:hunter2@db:5432/cloud")
    assert "hunter2" not in (database_failure(url) or "hunter2")


@pytest.mark.parametrize(
    "bug", [IntegrityError("UNIQUE constraint"), sqlite3.ProgrammingError("syntax")]
)
def test_an_integrity_or_programming_error_stays_a_bug(bug):
    assert database_failure(bug) is None


def test_an_unreachable_server_is_refused_in_one_line():
    """A server down when the command starts: the --db does not open (exit 2);
    one that fails under a command is exit 3 (the disk-full tests)."""
    from cli.main import cli

    result = CliRunner().invoke(
        cli,
        ["--db", "postgresql://ops:hunter2@127.0.0.1:1/nowhere", "pool", "list"],
    )
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("storctl: cannot open the ledger at"), lines
    assert "Connection refused" in lines[0]
    assert "hunter2" not in result.stderr
