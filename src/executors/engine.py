"""The engine: the followers of the notification log, driven inline or as a worker.

Three followers, each with its own tracking row: the workflows (next steps after
each answer), the dispatcher (commands to agents, concurrently; answers back) and
the projections (the tables). SQLite cannot push notifications, so followers pull
from their tracked position; a follower that decided nothing for an event writes
nothing, and reads the event again after a restart (its decisions are pure, so
nothing changes). A follower decides a whole batch of notifications as one unit of
work and saves it in one transaction with the last one's tracking row
(`follower.Follower`): with many jobs in flight, one commit for many decisions; a
batch that loses a race is decided again one notification at a time.

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
from uuid import UUID, uuid4

from eventsourcing.persistence import Notification, Tracking

from executors.agents import Agents
from executors.command_pool import Landed
from executors.dispatcher import Dispatcher, Progress
from executors.follower import BATCH, FLUSH, Follower
from executors.host_slots import Slots
from executors.lease import RENEW, Leases, give_back, renew_held, take
from ledger.app import Ledger
from ledger.errors import StorctlError
from ledger.job import Job
from ledger.store.database import Database
from ledger.workflows import decide

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
        self.leases = Leases(db)
        self.dispatcher = Dispatcher(
            ledger,
            agents,
            hosts,
            on_progress,
            self.interrupt,
            slots=Slots(self.leases, uuid4().hex[:12]),
        )
        #: the workflows' policy: what follows each answer (`ledger.workflows`)
        self.decide = decide
        # The projections are the caller's to give (executors never import them).
        self.project = project if hosts is None else None
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
        #: the dispatcher's tracking row as this engine last saved it, and answers
        #: landed that a failed save did not record (tried again next round)
        self._dispatched_to = 0
        self._unrecorded: list[Landed] = []
        #: rounds `run` completed and notifications they read: what a worker that
        #: outlives database failures (`worker.keep_running`) counts
        self.rounds = 0
        self.read = 0

    def close(self) -> None:
        """Give back the hosts' idle workers and the lease connection now rather
        than whenever the collector finds them (the workers keep this engine
        reachable, and a SQLite file's last connection rewrites its WAL)."""
        self.dispatcher.close()
        self.leases.close()

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

    def _dispatch(self, follower: Follower) -> int:
        """One round of the dispatcher: send what was requested since its position
        to the hosts' workers (`CommandPool`: nothing waits on another command),
        wait up to `FLUSH` for what is in flight, and record every answer landed
        in one save with the tracking row. The row never passes a request still
        in flight, so a dispatcher that dies sends it again after a restart."""
        notes = list(follower.select(follower.position, BATCH, None))
        follower.last = notes
        pool = self.dispatcher.pool
        if not notes and not self.dispatcher.busy:
            return 0
        landed, self._unrecorded = self._unrecorded, []
        read_to = notes[-1].id if notes else follower.position
        try:
            with self.ledger.following(follower.position, notes, self._decode) as batch:
                # the queued first: they were asked before anything read now
                landed += self.dispatcher.retry()
                for note in notes:
                    got = self.dispatcher.offer(note, self._decode(note))
                    if got is not None:
                        landed.append(got)
                self.dispatcher.admit()
                landed += self._landed(time.monotonic() + FLUSH)
                tracking = self._dispatch_tracking(read_to)
                acted = self.dispatcher.record(landed, None) if landed else 0
            self.ledger.save_batch(batch, tracking)
        except Exception:
            follower.fallbacks += 1
            acted = self._record_one_by_one(landed)
            tracking = self._dispatch_tracking(read_to)
        if tracking is not None and not self._tracked_since(tracking):
            self.ledger.save_tracked([], tracking)
        if tracking is not None:
            self._dispatched_to = tracking.notification_id
        pool.recorded(landed)
        self.dispatcher.release_left()
        follower.position = read_to
        follower.acted += acted
        return len(notes) + len(landed)

    def _landed(self, until: float) -> list[Landed]:
        """The answers landing until `until`; while commands of ours are queued
        for a host slot, each answer frees one, so they are sent in the same
        round (as the hosts' workers once took the next from their queue)."""
        pool, dispatcher = self.dispatcher.pool, self.dispatcher
        landed: list[Landed] = []
        while True:
            queued = bool(dispatcher.queued)
            got = pool.landed(until, first=queued)
            landed += got
            if not (queued and got) or time.monotonic() >= until:
                return landed
            landed += dispatcher.retry()
            dispatcher.admit()

    def _dispatch_tracking(self, read_to: int) -> Tracking | None:
        """The dispatcher's tracking row to save: the last position read, or just
        before the oldest request still in flight; None if it does not move."""
        waiting = self.dispatcher.waiting_since()
        safe = read_to if waiting is None else min(read_to, waiting - 1)
        if safe <= self._dispatched_to:
            return None
        return Tracking(self.dispatcher.name, safe)

    def _tracked_since(self, tracking: Tracking) -> bool:
        """Whether the tracking row is already saved (with the answers' batch)."""
        recorder: Any = self.ledger.recorder
        return bool(
            recorder.has_tracking_id(
                tracking.application_name, tracking.notification_id
            )
        )

    def _record_one_by_one(self, landed: list[Landed]) -> int:
        """After a batch that lost a race: each answer from fresh state, alone."""
        done = 0
        for got in landed:
            done += self.dispatcher.record([got], None)
        return done

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
        done += self._dispatch(dispatcher)
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
                    self.rounds += 1
                    self.read += progressed
                    if once and not progressed:
                        return total
                    if time.monotonic() - last_renew > RENEW:
                        self._renew()
                        last_renew = time.monotonic()
                    if not progressed:
                        stop.wait(POLL * 4)
        return total
