"""`executors.worker.keep_running`: a worker outlives database failures, backs off
(bounded), starts a new engine, and gives up only on a signal, a bug, or `limit`
failures in a row."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from executors.worker import Backoff, keep_running

FAST = Backoff(first=0.001, most=0.004)


class DatabaseGone(Exception):
    pass


def failing(exc: BaseException) -> str | None:
    return f"gone: {exc}" if isinstance(exc, DatabaseGone) else None


class Fake:
    """An engine that completes `rounds` rounds reading 10 each, then does
    `then` (raise, or return)."""

    def __init__(self, rounds: int, then: Callable[[], None] | None) -> None:
        self.rounds_planned, self.then = rounds, then
        self.rounds = self.read = 0

    def run(self, *, once: bool = False, stop: threading.Event | None = None) -> int:
        for _ in range(self.rounds_planned):
            self.rounds += 1
            self.read += 10
        if self.then is not None:
            self.then()
        return self.read


def gone() -> None:
    raise DatabaseGone("connection refused")


def starts(*engines: Fake) -> tuple[Callable[[], Fake], list[Fake]]:
    left, started = list(engines), []

    def start() -> Fake:
        started.append(left.pop(0))
        return started[-1]

    return start, started


def test_it_starts_a_new_engine_after_each_database_failure():
    start, started = starts(Fake(2, gone), Fake(0, gone), Fake(3, None))
    lines: list[str] = []
    resets: list[int] = []
    total = keep_running(
        start, threading.Event(), failing=failing, log=lines.append,
        reset=lambda: resets.append(1), limit=5, backoff=FAST,
    )  # fmt: skip
    assert total == 50  # every engine's reads counted, the failed ones' too
    assert len(started) == 3
    assert len(resets) == 2
    assert len(lines) == 2
    assert lines[0].startswith("executor: gone: connection refused; starting again")
    assert "(failure 1 of 5 in a row)" in lines[0]
    assert "(failure 2 of 5 in a row)" in lines[1]


def test_it_gives_up_after_limit_failures_in_a_row():
    start, started = starts(*(Fake(0, gone) for _ in range(3)))
    lines: list[str] = []
    with pytest.raises(DatabaseGone):
        keep_running(start, threading.Event(), failing=failing, log=lines.append,
                     limit=3, backoff=FAST)  # fmt: skip
    assert len(started) == 3
    assert "giving up after 3 failures in a row" in lines[-1]


def test_a_round_completed_between_failures_starts_the_count_again():
    # fail, work then fail, fail: never two in a row without a round between
    start, started = starts(
        Fake(0, gone), Fake(1, gone), Fake(0, gone), Fake(1, gone), Fake(1, None)
    )
    lines: list[str] = []
    keep_running(start, threading.Event(), failing=failing, log=lines.append,
                 limit=3, backoff=FAST)  # fmt: skip
    assert len(started) == 5
    assert [line[line.index("(failure") :][:10] for line in lines] == [
        "(failure 1",
        "(failure 1",
        "(failure 2",
        "(failure 1",
    ]


def test_anything_else_is_a_bug_and_ends_it_at_once():
    def bug() -> None:
        raise KeyError("a bug")

    start, started = starts(Fake(1, bug), Fake(1, None))
    with pytest.raises(KeyError):
        keep_running(start, threading.Event(), failing=failing, log=print,
                     backoff=FAST)  # fmt: skip
    assert len(started) == 1


def test_a_signal_during_the_back_off_ends_it():
    stop = threading.Event()

    def gone_and_stopped() -> None:
        stop.set()  # the signal handler, while the engine failed
        gone()

    start, started = starts(Fake(0, gone_and_stopped), Fake(1, None))
    assert keep_running(start, stop, failing=failing, log=print,
                        backoff=Backoff(first=60, most=60)) == 0  # fmt: skip
    assert len(started) == 1


def test_the_back_off_doubles_up_to_its_bound():
    assert [Backoff().delay(n) for n in range(1, 8)] == [
        0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0,
    ]  # fmt: skip
