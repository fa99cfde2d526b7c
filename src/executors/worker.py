"""A long-running worker that outlives its database's restarts.

`storctl executor run` is meant to run for weeks beside a shared PostgreSQL that
gets restarted (an upgrade, a failover, a crash). A worker whose connection the
restart cut used to exit 3 and wait for a supervisor; now an operational database
error in its loop costs one log line and a bounded back-off (0.5 s doubling to
10 s), then the worker starts again as a new process would: the engine is thrown
away with everything it held in memory (follower positions, commands in flight,
answers landed but not recorded) and a new one resyncs from the tracking rows, the
path every SIGKILLed worker's successor already takes. Answers of commands still
running in the old engine's threads are not recorded; their requests stay
unanswered in the ledger and are sent again (agents are idempotent).

It exits on a signal (`stop`), on any error that is not the database failing (a
bug keeps its traceback), and after `limit` failures in a row with no round
completed between them (0: never).

Which errors are the database failing is the caller's to say (`failing`: the CLI's
`db_failures.database_failure`, which returns the one line to log).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


class Runs(Protocol):
    """What the worker needs of an engine (`engine.Engine`)."""

    rounds: int
    read: int

    def run(self, *, once: bool = ..., stop: threading.Event | None = ...) -> int: ...


@dataclass(frozen=True)
class Backoff:
    """How long to wait after the n-th failure in a row: doubling, bounded."""

    first: float = 0.5
    most: float = 10.0

    def delay(self, failures: int) -> float:
        return min(self.first * 2.0 ** max(failures - 1, 0), self.most)


def keep_running(
    start: Callable[[], Runs],
    stop: threading.Event,
    *,
    failing: Callable[[BaseException], str | None],
    log: Callable[[str], None],
    reset: Callable[[], None] = lambda: None,
    once: bool = False,
    limit: int = 0,
    backoff: Backoff = Backoff(),
) -> int:
    """Run engines made by `start` until `stop` (or idle, with `once`); after a
    database failure, `reset` (drop what the failed one held), back off and
    start again. Returns the notifications every engine read."""
    total, failures = 0, 0
    while not stop.is_set():
        engine: Runs | None = None
        try:
            engine = start()
            engine.run(once=once, stop=stop)
            return total + engine.read
        except Exception as exc:
            line = failing(exc)
            if line is None:
                raise
            if engine is not None:
                total += engine.read
                if engine.rounds:
                    failures = 0  # it worked before failing: a new run of failures
            failures += 1
            if limit and failures >= limit:
                log(f"executor: {line}; giving up after {failures} failures in a row")
                raise
            wait = backoff.delay(failures)
            of = f" of {limit}" if limit else ""
            log(
                f"executor: {line}; starting again in {wait:g} s"
                f" (failure {failures}{of} in a row)"
            )
            with contextlib.suppress(Exception):
                reset()
            stop.wait(wait)
    return total
