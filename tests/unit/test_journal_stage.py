"""A SQLite rebuild with a second process journaling the log's tail
(`projections.journal_stage`): the tables equal a one-process rebuild's whatever the
child managed to write, the rows it wrote are copied rather than written again, and
nothing of it (file, process) outlives the rebuild."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger.app import Ledger
from projections import journal_stage
from projections import view as view_module
from projections.projector import catch_up, position, rebuild
from projections.view import view_for
from tests.conftest import open_ledger
from tests.unit.test_projections import (
    assert_progress,
    crash_at,
    dump,
    notification_count,
    populate,
)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Ledger]:
    ledger = open_ledger(str(tmp_path / "ledger.db"))
    try:
        yield ledger
    finally:
        ledger.close()


class Done:
    """A child that has already exited with `code`."""

    def __init__(self, code: int) -> None:
        self.code = code

    def poll(self) -> int | None:
        return self.code

    def kill(self) -> None:
        raise AssertionError("a finished child is not killed")

    def wait(self) -> int:
        return self.code


def child_in_process(upto: int | None = None) -> Any:
    """A `_spawn` that runs the child's work here and now, up to `upto`."""

    def spawn(args: list[str], env: dict[str, str]) -> Done:
        db_path, stage_path, start, stop = args
        last = int(stop) if upto is None else upto
        settings = json.loads(env[journal_stage.ENV_VARIABLE])
        journal_stage.run(db_path, stage_path, int(start), last, settings)
        return Done(0)

    return spawn


def journal_rows_written_here(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Positions whose journal row the rebuild itself formats (not the child)."""
    formatted: list[int] = []
    real = view_module.journal_row

    def counting(position: int, event: Any) -> tuple[Any, ...]:
        formatted.append(position)
        return real(position, event)

    monkeypatch.setattr(view_module, "journal_row", counting)
    return formatted


def stage_files(app: Ledger) -> list[Path]:
    path = Path(app.env["SQLITE_DBNAME"])
    return sorted(path.parent.glob(f"{path.name}.journal-stage-*"))


@pytest.fixture
def populated(app: Ledger) -> dict[str, Any]:
    populate(app)
    catch_up(app, batch=3)
    return dump(app)


def test_rows_the_child_wrote_are_copied_not_written_again(
    app: Ledger, populated: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    head = notification_count(app)
    start = head // 3
    monkeypatch.setattr(journal_stage, "_spawn", child_in_process())
    formatted = journal_rows_written_here(monkeypatch)
    assert rebuild(app, batch=4, stage_from=start) == head
    assert dump(app) == populated
    assert formatted == list(range(1, start + 1))
    assert stage_files(app) == []


def test_a_rebuild_with_a_child_reports_its_progress(
    app: Ledger, populated: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    head = notification_count(app)
    monkeypatch.setattr(journal_stage, "_spawn", child_in_process())
    seen: list[float] = []
    assert rebuild(app, batch=4, stage_from=head // 3, on_progress=seen.append) == head
    assert_progress(seen, head, 4)


def test_rows_the_child_did_not_reach_are_written_here(
    app: Ledger, populated: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    head = notification_count(app)
    start, reached = head // 4, head // 2
    monkeypatch.setattr(journal_stage, "_spawn", child_in_process(upto=reached))
    formatted = journal_rows_written_here(monkeypatch)
    rebuild(app, batch=5, stage_from=start)
    assert dump(app) == populated
    assert formatted == [*range(1, start + 1), *range(reached + 1, head + 1)]


def test_a_child_that_fails_costs_time_not_rows(
    app: Ledger, populated: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal_stage, "_spawn", lambda args, env: Done(1))
    formatted = journal_rows_written_here(monkeypatch)
    head = notification_count(app)
    rebuild(app, batch=4, stage_from=head // 2)
    assert dump(app) == populated
    assert formatted == list(range(1, head + 1))


def test_the_real_child_process_leaves_the_same_tables_and_no_file(
    app: Ledger, populated: dict[str, Any]
) -> None:
    """The child as a rebuild starts it (`python -m projections.journal_stage`):
    whatever it got done before the rebuild passed it, the tables are the same.
    Run on its own, it writes every row of its range."""
    head = notification_count(app)
    assert rebuild(app, batch=4, stage_from=1) == head
    assert dump(app) == populated
    assert stage_files(app) == []


def test_the_child_writes_the_rows_of_its_range(
    app: Ledger, populated: dict[str, Any], tmp_path: Path
) -> None:
    import sqlite3

    head = notification_count(app)
    stage = tmp_path / "stage.db"
    with sqlite3.connect(stage) as conn:
        conn.execute(journal_stage.journal_table_sql())
    conn.close()
    view_for(app).reset()  # the child stops at where the rebuild is: nowhere yet
    written = journal_stage.run(
        app.env["SQLITE_DBNAME"], str(stage), 3, head, dict(app.env)
    )
    assert written == head - 3
    with sqlite3.connect(stage) as conn:
        rows = conn.execute("SELECT * FROM event_journal ORDER BY position").fetchall()
    conn.close()
    journal = [
        tuple(row.values()) for row in populated["event_journal"] if row["position"] > 3
    ]
    assert rows == journal


def test_a_crash_midway_leaves_whole_batches_and_no_file(
    app: Ledger, populated: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    head = notification_count(app)
    monkeypatch.setattr(journal_stage, "_spawn", child_in_process())
    crash_at(monkeypatch, 7)  # the third event of the second batch
    with pytest.raises(RuntimeError, match="crash"):
        rebuild(app, batch=4, stage_from=2)
    assert position(app) == 4
    assert stage_files(app) == []
    monkeypatch.undo()
    catch_up(app)
    assert dump(app) == populated
    assert head == position(app)


def test_the_child_stops_where_the_rebuild_has_got_to(
    app: Ledger, populated: dict[str, Any], tmp_path: Path
) -> None:
    import sqlite3

    stage = tmp_path / "stage.db"
    with sqlite3.connect(stage) as conn:
        conn.execute(journal_stage.journal_table_sql())
    conn.close()
    path = app.env["SQLITE_DBNAME"]  # caught up: its tracking row is at the head
    head = notification_count(app)
    assert journal_stage.run(path, str(stage), 0, head, dict(app.env)) == 0


def test_a_child_that_cannot_start_leaves_the_rebuild_to_do_it_all(
    app: Ledger, populated: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def cannot(args: list[str], env: dict[str, str]) -> Done:
        raise OSError("no such interpreter")

    monkeypatch.setattr(journal_stage, "_spawn", cannot)
    formatted = journal_rows_written_here(monkeypatch)
    head = notification_count(app)
    assert rebuild(app, batch=4, stage_from=1) == head
    assert dump(app) == populated
    assert formatted == list(range(1, head + 1))
    assert stage_files(app) == []


def test_an_orphaned_child_stops_and_removes_its_file(
    app: Ledger, populated: dict[str, Any], tmp_path: Path
) -> None:
    """A rebuild killed outright cannot remove the scratch file: the child, finding
    itself some other process's child, does."""
    import os
    import sqlite3

    stage = tmp_path / "stage.db"
    with sqlite3.connect(stage) as conn:
        conn.execute(journal_stage.journal_table_sql())
    conn.close()
    view_for(app).reset()
    path, head = app.env["SQLITE_DBNAME"], notification_count(app)
    not_my_parent = os.getppid() + 1
    assert (
        journal_stage.run(path, str(stage), 0, head, dict(app.env), not_my_parent) == 0
    )
    assert not stage.exists()
