"""The engine: the followers of the notification log, driven inline or as a worker.

Three followers, each with its own tracking row: the workflows (next steps after each
answer), the dispatcher (commands to agents, answers back) and the projections (the
tables). SQLite cannot push notifications, so followers pull from their tracked
position; a follower that decided nothing for an event writes nothing, and reads the
event again after a restart (its decisions are pure, so nothing changes). A follower
decides a whole batch of notifications as one unit of work and saves it in one
transaction with the last one's tracking row (`Follower._batch`): with many jobs in
flight, one commit for many decisions; a batch that loses a race is decided again
one notification at a time.

On the embedded default a CLI command drives the engine until its job settles. The
engine holds the `engine` lease while it works; a CLI that finds it taken waits for
its job instead of processing the same events twice. While the lease is held nobody
else moves our tracking rows, so a follower reads its row only when the lease is
(re)taken, not on every round.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.persistence import Notification, Tracking

from executors.agents import Agents
from executors.dispatcher import Dispatcher, Progress
from executors.lease import RENEW, Leases, give_back, renew_held, take
from ledger.app import Ledger
from ledger.errors import StorctlError
from ledger.job import Job
from ledger.store.database import Database
from ledger.store.reader import selector
from ledger.workflows import decide

BATCH = 200
#: A batch's decisions are saved at the latest this long after the first (a slow
#: host command's answer is not kept waiting for the commands after it).
FLUSH = 0.5
POLL = 0.05  # seconds between polls when idle (SQLite has no LISTEN/NOTIFY)
#: How long the set of per-host workers (other dispatchers' leases) is trusted. A
#: stale set only makes a command run twice (agents are idempotent, the second
#: answer is refused as stale) or wait for a worker that just went away.
OTHERS_TTL = 2.0
#: At most this many rounds after the job settled, for the work its last decisions
#: requested (more is left to the next drive or worker, as work of other jobs is).
DRAIN_ROUNDS = 10


class Project(Protocol):
    """How the tables catch up (`projections.projector.catch_up`, given by the
    caller: executors never import the read side): `known` are events the
    engine already decoded, by notification id."""

    def __call__(
        self, ledger: Ledger, *, known: Mapping[int, Any] | None = None
    ) -> int: ...


class Follower:
    """Pulls notifications after its position, one batch at a time."""

    def __init__(
        self, ledger: Ledger, name: str, decode: Callable[[Notification], Any]
    ) -> None:
        self.ledger = ledger
        self.name = name
        self.decode = decode
        self.select = selector(ledger)  # the log's one reader
        self.position = 0
        self.acted = 0  # notifications it saved something for, ever
        self.fallbacks = 0  # batches decided again one notification at a time
        self.last: list[Notification] = []  # the batch of its last step
        self.resync()

    def _tracked(self) -> int:
        tracked: int | None = self.ledger.recorder.max_tracking_id(  # type: ignore[attr-defined]
            self.name
        )
        return tracked or 0

    def resync(self) -> bool:
        """Catch up with our tracking row, which another process may have moved
        while it held the lease; True when it had."""
        tracked = self._tracked()
        if tracked > self.position:
            self.position = tracked
            return True
        return False

    def step(
        self,
        handle: Callable[[Notification, Any], bool],
        notes: list[Notification] | None = None,
    ) -> int:
        """One batch after our position: read, or `notes` when another follower
        just read them from the same position. Their decisions are saved together
        with our tracking row (a slow batch in parts, `FLUSH`)."""
        if notes is None:
            notes = list(self.select(self.position, BATCH, None))
        self.last = notes
        done = 0
        while done < len(notes):
            done = self._batch(handle, notes, done)
        return len(notes)

    def _batch(
        self,
        handle: Callable[[Notification, Any], bool],
        notes: list[Notification],
        first: int,
    ) -> int:
        """Decide notes[first:] in one unit of work (`Ledger.following`) and save
        it in one transaction; the index after the last note decided.

        When the save loses a race, or a decision raised or changed what it did
        not return, the batch is decided again one notification at a time from
        fresh state, each saved with its own tracking row, as before batches
        (the dispatcher then sends those commands again: agents are idempotent)."""
        began = time.monotonic()
        acted = 0
        end = first
        try:
            with self.ledger.following(
                self.position, notes[first:], self.decode
            ) as batch:
                for note in notes[first:]:
                    if handle(note, self.decode(note)):
                        acted += 1
                    end += 1
                    if time.monotonic() - began > FLUSH:
                        break
            self.ledger.save_batch(batch, Tracking(self.name, notes[end - 1].id))
        except Exception:
            self.fallbacks += 1
            for note in notes[first:]:
                if handle(note, self.decode(note)):
                    self.acted += 1
                self.position = note.id
            return len(notes)
        self.acted += acted
        self.position = notes[end - 1].id
        return end


class Engine:
    def __init__(
        self,
        ledger: Ledger,
        db: Database,
        agents: Agents,
        hosts: set[str] | None = None,
        on_progress: Progress | None = None,
        *,
        project: Project | None = None,
        decode: Callable[[Notification], Any] | None = None,
    ) -> None:
        self.ledger = ledger
        self.db = db
        self.hosts = hosts
        self.interrupt = threading.Event()
        self.dispatcher = Dispatcher(ledger, agents, hosts, on_progress, self.interrupt)
        #: the workflows' policy: what follows each answer (`ledger.workflows`)
        self.decide = decide
        # The projections are the caller's to give (executors never import them).
        self.project = project if hosts is None else None
        self.leases = Leases(db)
        self.lease_name = "engine" if hosts is None else self.dispatcher.name
        self._followers: dict[str, Follower] = {}
        self._others_read = -OTHERS_TTL
        # Events decoded once for every follower of this engine (and the
        # projections, when they catch up in the same round), by notification id.
        self._decoded: dict[int, Any] = {}
        self._decode_one = decode or ledger.mapper.to_domain_event
        self._watched: UUID | None = None  # the job `drive` waits for
        self._settled = False  # seen settling by the workflow follower
        self._settled_job: Job | None = None  # as our own decision saved it
        self._moved = False  # another process worked while we did not hold the lease

    # ------------------------------------------------------------ followers

    def _follower(self, name: str) -> Follower:
        if name not in self._followers:
            self._followers[name] = Follower(self.ledger, name, self._decode)
        return self._followers[name]

    def _decode(self, note: Notification) -> Any:
        event = self._decoded.get(note.id)
        if event is None:
            event = self._decoded[note.id] = self._decode_one(note)
        return event

    def _workflow(self, note: Notification, event: Any) -> bool:
        if (
            self._watched is not None
            and event.originator_id == self._watched
            and isinstance(event, Job.Succeeded | Job.Failed)
        ):
            self._settled = True
        saved = self.ledger.atomic(
            lambda: self.decide(self.ledger, event),
            tracking=Tracking("workflow", note.id),
            what="workflow",
        )
        for a in saved:
            if a.id == self._watched and isinstance(a, Job) and a.settled:
                self._settled, self._settled_job = True, a
        return bool(saved)

    def _refresh_others(self) -> None:
        """Which hosts have a worker of their own (their commands are theirs)."""
        if time.monotonic() - self._others_read < OTHERS_TTL:
            return
        self.dispatcher.others = {
            name
            for holder in self.leases.holders("dispatcher:")
            for name in holder.scope.split(",")
            if name
        }
        self._others_read = time.monotonic()

    def step(self, *, project: bool = True) -> int:
        """One round of every follower; how many notifications they read.

        The dispatcher goes first, so the workflows read its answers in the same
        round: a job of one command settles in one round."""
        done = 0
        if self.hosts is None:
            self._refresh_others()
        dispatcher = self._follower(self.dispatcher.name)
        start, acted = dispatcher.position, dispatcher.acted
        done += dispatcher.step(self.dispatcher.handle)
        if self.hosts is None:
            workflow = self._follower("workflow")
            # When the dispatcher saved nothing, the log after the workflows'
            # position is in the batch it just read, from a position not after
            # theirs (what others appended since is read next round).
            shared = None
            if dispatcher.acted == acted and workflow.position >= start:
                shared = [n for n in dispatcher.last if n.id > workflow.position]
            done += workflow.step(self._workflow, shared)
        if project and self.project is not None:
            done += self.project(self.ledger, known=self._decoded)
        low = min(f.position for f in self._followers.values())
        self._decoded = {k: v for k, v in self._decoded.items() if k > low}
        return done

    @contextlib.contextmanager
    def lease(self) -> Iterator[bool]:
        """Hold the lease for the block (if free); given back `LINGER` seconds
        after the last holder of this process leaves it."""
        scope = ",".join(sorted(self.hosts)) if self.hosts else ""
        taken = take(self.leases, self.lease_name, scope)
        try:
            self._moved = taken and self._resync()
            yield taken
        finally:
            if taken:
                give_back(self.leases, self.lease_name)

    def _resync(self) -> bool:
        """On taking the lease: what others did while we did not hold it."""
        names = [self.dispatcher.name] + (["workflow"] if self.hosts is None else [])
        new = any(name not in self._followers for name in names)
        moved = [self._follower(name).resync() for name in names]
        return new or any(moved)

    def _renew(self) -> None:
        if not renew_held(self.leases, self.lease_name):
            # It expired (a stall longer than its TTL) and another may have worked
            # meanwhile: go on from where it got to (a decision it already saved
            # would be refused by the tracking row anyway).
            self._resync()

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
        """Rounds until the workflow follower sees the job settle (its own decision
        or an event it reads); the job is loaded again only then, or when idle."""
        if self._moved:
            # Settled by another process, in events our followers now skip?
            job = self.job_settled(job_id)
            if job.settled:
                return job
        self._watched, self._settled, self._settled_job = job_id, False, None
        try:
            last_renew = time.monotonic()
            while True:
                progressed = self.step(project=False)
                if self._settled:
                    self._drain()
                    if self._settled_job is not None:
                        return self._settled_job  # saved: as a load would return it
                    return self.job_settled(job_id)
                if not progressed:
                    job = self.job_settled(job_id)
                    if job.settled:
                        return job
                    # Idle (an agent's answer pending elsewhere): the tables catch up.
                    self._final_projection()
                if deadline is not None and time.monotonic() > deadline:
                    return self.job_settled(job_id)
                if time.monotonic() - last_renew > RENEW:
                    self._renew()
                    last_renew = time.monotonic()
                if not progressed:
                    time.sleep(POLL)
        finally:
            self._watched, self._settled_job = None, None

    def _acted(self) -> int:
        return sum(f.acted for f in self._followers.values())

    def _drain(self) -> None:
        """What the job's last decisions set going (a leftover copy's delete after
        a failed migration): rounds until one saves nothing, as before the job
        settled the round that settled it also sent what it requested."""
        for _ in range(DRAIN_ROUNDS):
            before = self._acted()
            self.step(project=False)
            if self._acted() == before:
                return

    def _final_projection(self) -> None:
        if self.project is not None:
            with contextlib.suppress(StorctlError):
                self.project(self.ledger, known=self._decoded)

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
                    if time.monotonic() - last_renew > RENEW:
                        self._renew()
                        last_renew = time.monotonic()
                    if not progressed:
                        stop.wait(POLL * 4)
        return total
