"""The engine: the followers of the notification log, driven inline or as a worker.

Three followers, each with its own tracking row: the workflows (next steps after each
answer), the dispatcher (commands to agents, answers back) and the projections (the
tables). SQLite cannot push notifications, so followers pull from their tracked
position; a follower that decided nothing for an event writes nothing, and reads the
event again after a restart (its decisions are pure, so nothing changes).

On the embedded default a CLI command drives the engine until its job settles. The
engine holds the `engine` lease while it works; a CLI that finds it taken waits for
its job instead of processing the same events twice.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification, Tracking

from executors.dispatcher import Dispatcher, Progress
from executors.lease import Leases
from ledger.errors import StorctlError
from ledger.job import Job
from ledger.service import Ledger
from ledger.store import Database
from ledger.workflows import Workflows

BATCH = 200
POLL = 0.05  # seconds between polls when idle (SQLite has no LISTEN/NOTIFY)


class Follower:
    """Pulls notifications after its tracked position, one batch at a time."""

    def __init__(self, ledger: Ledger, name: str) -> None:
        self.ledger = ledger
        self.name = name
        self.position = self._tracked()

    def _tracked(self) -> int:
        tracked: int | None = self.ledger.recorder.max_tracking_id(  # type: ignore[attr-defined]
            self.name
        )
        return tracked or 0

    def step(self, handle: Callable[[Notification, Any], bool]) -> int:
        # Another process may have moved our tracking row (a lease taken over).
        self.position = max(self.position, self._tracked())
        notes = self.ledger.recorder.select_notifications(
            start=self.position, limit=BATCH, inclusive_of_start=False
        )
        for note in notes:
            event = self.ledger.mapper.to_domain_event(note)
            handle(note, event)
            self.position = note.id
        return len(notes)


class Engine:
    def __init__(
        self,
        ledger: Ledger,
        db: Database,
        hosts: set[str] | None = None,
        on_progress: Progress | None = None,
        *,
        project: Callable[[Ledger], int] | None = None,
    ) -> None:
        self.ledger = ledger
        self.db = db
        self.hosts = hosts
        self.interrupt = threading.Event()
        self.dispatcher = Dispatcher(ledger, hosts, on_progress, self.interrupt)
        self.workflows = Workflows(ledger)
        # The projections are the caller's to give (executors never import them).
        self.project = project if hosts is None else None
        self.leases = Leases(db)
        self.lease_name = "engine" if hosts is None else self.dispatcher.name
        self._followers: dict[str, Follower] = {}

    # ------------------------------------------------------------ followers

    def _follower(self, name: str) -> Follower:
        if name not in self._followers:
            self._followers[name] = Follower(self.ledger, name)
        return self._followers[name]

    def _workflow(self, note: Notification, event: Any) -> bool:
        saved = self.ledger.atomic(
            lambda: self.workflows.decide(event),
            tracking=Tracking("workflow", note.id),
            what="workflow",
        )
        return bool(saved)

    def step(self) -> int:
        """One round of every follower; how many notifications they read."""
        done = 0
        if self.hosts is None:
            done += self._follower("workflow").step(self._workflow)
            self.dispatcher.others = {
                name
                for holder in self.leases.holders("dispatcher:")
                for name in holder.scope.split(",")
                if name
            }
        done += self._follower(self.dispatcher.name).step(self.dispatcher.handle)
        if self.project is not None:
            done += self.project(self.ledger)
        return done

    @contextlib.contextmanager
    def lease(self) -> Iterator[bool]:
        scope = ",".join(sorted(self.hosts)) if self.hosts else ""
        taken = self.leases.acquire(self.lease_name, scope)
        try:
            yield taken
        finally:
            if taken:
                self.leases.release(self.lease_name)

    # ------------------------------------------------------------ driving

    def job_settled(self, job_id: UUID) -> Job:
        return self.ledger.load(Job, job_id)

    def drive(self, job_id: UUID, timeout: float | None = None) -> Job:
        """Work (or wait, while another holds the lease) until the job settles."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.job_settled(job_id)
            if job.settled:
                self._final_projection()
                return job
            with self.lease() as mine:
                if mine:
                    job = self._work_until(job_id, deadline)
                    if job.settled:
                        self._final_projection()
                        return job
            if deadline is not None and time.monotonic() > deadline:
                return self.job_settled(job_id)
            time.sleep(POLL)

    def _work_until(self, job_id: UUID, deadline: float | None) -> Job:
        last_renew = time.monotonic()
        while True:
            progressed = self.step()
            job = self.job_settled(job_id)
            if job.settled:
                return job
            if deadline is not None and time.monotonic() > deadline:
                return job
            if time.monotonic() - last_renew > 5:
                self.leases.renew(self.lease_name)
                last_renew = time.monotonic()
            if not progressed:
                time.sleep(POLL)

    def _final_projection(self) -> None:
        if self.project is not None:
            with contextlib.suppress(StorctlError):
                self.project(self.ledger)

    def run(self, *, once: bool = False, stop: threading.Event | None = None) -> int:
        """The worker loop of `storctl executor run`; returns notifications read."""
        stop = stop or threading.Event()
        total = 0
        while not stop.is_set():
            with self.lease() as mine:
                if not mine:
                    if once:
                        return total
                    stop.wait(1.0)
                    continue
                last_renew = time.monotonic()
                while not stop.is_set():
                    progressed = self.step()
                    total += progressed
                    if once and not progressed:
                        return total
                    if time.monotonic() - last_renew > 5:
                        self.leases.renew(self.lease_name)
                        last_renew = time.monotonic()
                    if not progressed:
                        stop.wait(POLL * 4)
        return total
