"""Host commands in flight: each on a worker of its host, none waiting on another.

CloudStack's management server sends commands to agents asynchronously and each
agent runs several at once (`workers` in agent.properties); a slow copy on one host
holds up nothing else. Here the dispatcher hands every command to this pool and
goes on: each host has at most `workers` commands running (the excess waits in
the host's queue, in order), and each command is bounded by its own wait. An
answer lands in `landed`, from which the dispatcher records it. How many a host
runs at once across processes is the host slots' to say (`host_slots`): the
dispatcher submits only commands whose slot it holds, and `on_done` gives the
slot back as soon as the command returns.

Worker threads are daemons: a CLI that has its own job's answer exits without
waiting for another command that hangs; that command's request stays unanswered
in the ledger, and the next dispatcher sends it again with what is left of its wait.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from ledger.aggregate import Ctx
from ledger.commands import Answer, failure_for
from ledger.host import Host


@dataclass(frozen=True)
class Flight:
    """One request's command on its way to a host."""

    note_id: int  # the request's position in the log
    object_id: UUID  # the object whose answer it is
    ctx: Ctx  # the context the answer is recorded with
    host: Host | None  # None: no host can run it (answered at once)
    command: Any


@dataclass(frozen=True)
class Landed:
    """A command's answer, to be recorded on its object."""

    flight: Flight
    answer: Answer


Run = Callable[[Host, Any], Answer]


class CommandPool:
    """Per-host queues and worker threads; answers collected in order of landing."""

    def __init__(
        self,
        run: Run,
        workers: Callable[[], int],
        on_done: Callable[[Flight], None] | None = None,
    ) -> None:
        self._run = run
        self._on_done = on_done
        self._workers = workers
        self._queues: dict[str, queue.SimpleQueue[Flight | None]] = {}
        self._started: dict[str, int] = {}
        self._landed: queue.SimpleQueue[Landed] = queue.SimpleQueue()
        self._lock = threading.Lock()
        #: requests sent and whose answers are not yet recorded, by position
        self.pending: dict[int, Flight] = {}
        self._arrived: set[int] = set()  # of those, the ones whose answer landed

    @property
    def busy(self) -> bool:
        return bool(self.pending)

    def submit(self, flight: Flight) -> None:
        with self._lock:
            self.pending[flight.note_id] = flight
            assert flight.host is not None  # a command with no host is never sent
            name = flight.host.name
            line = self._queues.get(name)
            if line is None:
                line = self._queues[name] = queue.SimpleQueue()
            line.put(flight)
            if self._started.get(name, 0) < max(1, self._workers()):
                self._started[name] = self._started.get(name, 0) + 1
                threading.Thread(
                    target=self._work,
                    args=(line,),
                    name=f"agent-{name}",
                    daemon=True,
                ).start()

    def close(self) -> None:
        """Let every idle worker go (one that runs a hung command goes when it
        returns): a process that drives many engines keeps no threads, nor the
        connections they reach, past its engines."""
        with self._lock:
            for name, line in self._queues.items():
                for _ in range(self._started.get(name, 0)):
                    line.put(None)
            self._queues.clear()
            self._started.clear()

    def _work(self, line: queue.SimpleQueue[Flight | None]) -> None:
        while True:
            flight = line.get()
            if flight is None:
                return
            assert flight.host is not None
            try:
                answer = self._run(flight.host, flight.command)
            except Exception as exc:  # an agent must not raise; if one does, say so
                answer = failure_for(flight.command, f"{type(exc).__name__}: {exc}")
            if self._on_done is not None:
                self._on_done(flight)  # its host slot is free before it is recorded
            self._landed.put(Landed(flight, answer))

    def landed(self, until: float, *, first: bool = False) -> list[Landed]:
        """Every answer landed since the last call, after waiting, until `until`
        (monotonic) at the latest, for the commands in flight to land: quick
        commands are then recorded together, a hung one holds up a round by that
        much only. With `first`, stop waiting once one landed (a queued command
        may take its slot now). They stay `pending` until `recorded`."""
        out: list[Landed] = []
        while True:
            timeout = until - time.monotonic()
            try:
                if timeout > 0 and self.in_flight and not (first and out):
                    got = self._landed.get(timeout=timeout)
                else:
                    got = self._landed.get_nowait()
            except queue.Empty:
                return out
            with self._lock:
                self._arrived.add(got.flight.note_id)
            out.append(got)

    @property
    def in_flight(self) -> bool:
        """Whether a command sent is still running (or waiting for a worker)."""
        with self._lock:
            return len(self.pending) > len(self._arrived)

    def recorded(self, landed: list[Landed]) -> None:
        """These answers are in the ledger: their requests are done here."""
        with self._lock:
            for got in landed:
                self.pending.pop(got.flight.note_id, None)
                self._arrived.discard(got.flight.note_id)

    def waiting_since(self) -> int | None:
        """The position of the oldest request not yet answered here (its tracking
        row must not pass it, so that another dispatcher would send it again)."""
        with self._lock:
            return min(self.pending, default=None)
