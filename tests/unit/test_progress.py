"""The progress bar on stderr: on a terminal only, and never glued to what follows."""

from __future__ import annotations

import pytest

from cli.progress import ProgressBar


def terminal_bar(monkeypatch: pytest.MonkeyPatch) -> ProgressBar:
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    return ProgressBar()


def test_a_bar_left_short_is_closed_by_end(monkeypatch, capsys) -> None:
    bar = terminal_bar(monkeypatch)
    bar.update("rebuild", 0.42)
    bar.end()
    err = capsys.readouterr().err
    assert err.startswith("\rrebuild")
    assert " 42%" in err
    assert err.endswith("\n")


def test_a_finished_bar_gets_one_line_end(monkeypatch, capsys) -> None:
    bar = terminal_bar(monkeypatch)
    bar.update("replay", 0.5)
    bar.update("replay", 1.0)
    bar.end()
    assert capsys.readouterr().err.count("\n") == 1


def test_nothing_is_written_off_a_terminal(monkeypatch, capsys) -> None:
    monkeypatch.setattr("sys.stderr.isatty", lambda: False)
    bar = ProgressBar()
    bar.update("rebuild", 0.5)
    bar.end()
    assert capsys.readouterr().err == ""
