"""Progress on stderr: rich bars on a terminal only, bytes, rate and time left
when the command says how many bytes it moves, and nothing at all off a terminal."""

from __future__ import annotations

import io
import re

from hypothesis import given
from hypothesis import strategies as st

from cli.progress import ProgressBar
from ledger.commands import (
    CopyCommand,
    DeleteCommand,
    PrimaryDataStoreTO,
    VolumeObjectTO,
    moved_bytes,
)

MiB = 1 << 20
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def terminal_bar() -> tuple[ProgressBar, io.StringIO]:
    stream = io.StringIO()
    return ProgressBar(stream, terminal=True), stream


def plain(text: str) -> str:
    return ANSI.sub("", text)


def test_a_copy_shows_bytes_done_of_its_size_and_the_percentage() -> None:
    bar, stream = terminal_bar()
    bar.update("CopyCommand on kvm-01", 0.42, 700 * MiB)
    text = plain(stream.getvalue())
    assert "CopyCommand on kvm-01" in text
    assert "294 MiB/700 MiB" in text
    assert "42%" in text
    bar.end()


def test_work_without_bytes_shows_its_percentage_and_no_sizes() -> None:
    bar, stream = terminal_bar()
    bar.update("rebuild", 0.5)
    text = plain(stream.getvalue())
    assert "rebuild" in text
    assert "50%" in text
    assert "MiB" not in text
    assert " B/" not in text
    bar.end()


def test_finished_work_clears_its_bar_and_the_display() -> None:
    bar, stream = terminal_bar()
    bar.update("replay", 0.5)
    bar.update("replay", 1.0)
    assert bar._progress is None  # the live display stopped, its lines cleared
    after_last_erase = stream.getvalue().rsplit("\x1b[2K", 1)[1]
    assert plain(after_last_erase).strip() == ""  # the bar's line was erased


def test_end_clears_a_bar_left_short() -> None:
    bar, _ = terminal_bar()
    bar.update("CopyCommand on kvm-01", 0.3, 10 * MiB)
    assert bar._progress is not None
    bar.end()
    assert bar._progress is None
    bar.update("CopyCommand on kvm-01", 0.1, 10 * MiB)  # a new bar starts
    assert bar._progress is not None
    bar.end()


@given(
    updates=st.lists(
        st.tuples(
            st.sampled_from(["CopyCommand on kvm-01", "replay", "rebuild"]),
            st.floats(min_value=-1.0, max_value=2.0, allow_nan=False),
            st.none() | st.integers(min_value=1, max_value=1 << 44),
        ),
        max_size=20,
    )
)
def test_nothing_is_written_off_a_terminal(updates) -> None:
    stream = io.StringIO()
    bar = ProgressBar(stream, terminal=False)
    for label, fraction, total in updates:
        bar.update(label, fraction, total)
    bar.end()
    assert stream.getvalue() == ""


def test_a_bar_follows_stderr_being_a_terminal(monkeypatch) -> None:
    monkeypatch.setattr("sys.stderr.isatty", lambda: False)
    assert not ProgressBar().enabled
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    assert ProgressBar().enabled


def test_a_copy_moves_its_sources_virtual_size_and_a_delete_nothing() -> None:
    pool = PrimaryDataStoreTO(uuid="p", name="gold", poolType="Filesystem", path="/p")
    vol = VolumeObjectTO(
        uuid="v", name="data-1", volumeType="DATADISK", size=700 * MiB, dataStore=pool
    )
    assert moved_bytes(CopyCommand("c", vol, vol)) == 700 * MiB
    assert moved_bytes(DeleteCommand("d", vol)) is None
