"""The dispatcher: every `...Requested` event with a command goes to an endpoint, and
the answer comes back as an event on the object that asked.

Commands run concurrently (`command_pool`: a few per host, each bounded by its own
wait), so no command waits on another's hang. Host work is at-least-once (the
dispatcher's tracking row never passes a request still in flight, so a dispatcher
killed mid-command, or a CLI that exits with another command still running, leaves
it to be sent again, with what is left of its wait; agents are idempotent); state
changes are exactly-once: an object refuses an answer for a command it no longer
waits for. A dispatcher given `--hosts` takes only the commands whose endpoint is
one of them; the others are left to their own workers.

Before a command is sent its host slot is claimed in the database (`host_slots`,
the rule in `ledger.host_limits`): beyond `concurrent.commands.threshold.perhost`
or `concurrent.snapshots.threshold.perhost` it is not sent but queued, asked
again every round in the order of the requests, and sent once a slot comes free
(a command returned, or its wait ended). Its wait runs from when it is sent: the
time it queued is given back (a dispatcher that dies forgets it, and the next
counts the wait from the request, as it always did).
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification, Tracking

from executors import endpoints
from executors.agents import Agents
from executors.command_pool import CommandPool, Flight, Landed
from executors.host_slots import Ask, Slots
from ledger.aggregate import Ctx, Requested, StaleAnswer
from ledger.app import Ledger
from ledger.commands import DEFAULT_WAIT, Answer, from_dict, moved_bytes
from ledger.commands import failure_for as failed
from ledger.host import Host
from ledger.host_limits import Limits, is_snapshot

#: (label, fraction done, bytes the command moves or None)
Progress = Callable[[str, float, int | None], None]

#: worker threads per host when `concurrent.commands.threshold.perhost` is 0 (no
#: limit); else that many, so that a command the slots let start never waits here
WORKERS = 64
#: seconds between two claims of the queued commands when nothing came free here
#: (a slot freed by another process is seen this late at most)
RETRY = 0.2


@dataclass
class Waiting:
    """A request not sent yet: its notification and event (offered again each
    round) and since when it queues (None: it runs under another holder)."""

    note: Notification
    event: Any
    since: float | None
    #: the flight made when it was first offered (its decoded command and the
    #: host chosen): offered again, only what may have changed is checked
    flight: Flight | None = None


class Dispatcher:
    def __init__(
        self,
        ledger: Ledger,
        agents: Agents,
        hosts: set[str] | None = None,
        on_progress: Progress | None = None,
        interrupt: threading.Event | None = None,
        slots: Slots | None = None,
    ) -> None:
        self.ledger = ledger
        self.hosts = hosts
        self.name = "dispatcher" + (":" + ",".join(sorted(hosts)) if hosts else "")
        self.on_progress = on_progress
        self.interrupt = interrupt or threading.Event()
        self.others: set[str] = set()  # hosts that have a worker of their own
        self.agents = agents
        #: the host slots (None: every command is sent at once, as `pool stats` does)
        self.slots = slots
        self.limits = Limits(0, 0)
        self.pool = CommandPool(self.run, self._workers, on_done=self._returned)
        #: requests queued for a host slot, by position
        self.queued: dict[int, Waiting] = {}
        self._asks: list[tuple[Notification, Any, Flight]] = []
        self._freed = threading.Event()  # a command of ours returned
        self._retried = 0.0
        self._unreleased: set[int] = set()  # slots a failed release left behind
        self._since: dict[int, float] = {}  # monotonic time each request queued

    def _workers(self) -> int:
        return self.limits.commands or WORKERS

    @property
    def busy(self) -> bool:
        return self.pool.busy or bool(self.queued)

    def waiting_since(self) -> int | None:
        """The oldest request not answered here yet, sent or queued."""
        sent = self.pool.waiting_since()
        asked = [flight.note_id for _, _, flight in self._asks]
        return min(
            [*self.queued, *asked, *([sent] if sent is not None else [])], default=None
        )

    def offer(self, notification: Notification, event: Any) -> Landed | None:
        """Send the command of one request event, if it is still pending and ours:
        into the pool, or answered at once when no host can run it or its wait is
        over (a request another dispatcher sent and never answered)."""
        if not isinstance(event, Requested) or not event.command:
            return None
        if notification.id in self.pool.pending or notification.id in self.queued:
            return None  # in flight or queued here already
        if self._answered(event):
            return None  # answered already (or superseded): nothing to send
        command = from_dict(event.command)
        choice = endpoints.select(self.ledger, command)
        mine = choice.host.name if choice.host else None
        if self.hosts is not None and mine not in self.hosts:
            return None
        if self.hosts is None and mine in self.others:
            return None
        ctx = Ctx(
            actor=getattr(event, "onbehalfof", None) or event.actor,
            job_id=event.job_id,
            causation_id=f"{event.originator_id}/{event.originator_version}",
        )
        flight = Flight(
            notification.id, UUID(str(event.originator_id)), ctx, choice.host, command
        )
        if choice.host is None:
            return Landed(flight, failed(command, choice.reason))
        wait, left = self._left(event, notification.id)
        if left <= 0:
            why = (
                f"no answer within its wait of {wait:g} s (sent before, never answered)"
            )
            return Landed(flight, failed(command, why))
        if hasattr(command, "wait"):
            # what is left of its wait (all of it, to the second, when just asked)
            flight = replace(flight, command=command.replace(wait=math.ceil(left)))
        if self.slots is None:
            self.pool.submit(flight)
        else:
            self._asks.append((notification, event, flight))
        return None

    # ------------------------------------------------------------ host slots

    def _queued_for(self, note_id: int) -> float:
        """Seconds this request has queued here (given back to its wait)."""
        waiting = self._since.get(note_id)
        return 0.0 if waiting is None else time.monotonic() - waiting

    def retry(self) -> list[Landed]:
        """Offer the queued requests again (every `RETRY` s, or at once when a
        command of ours returned): what no longer waits is dropped, with its
        slot; what is still wanted is asked for by the next `admit`."""
        if not self.queued or (
            not self._freed.is_set() and time.monotonic() - self._retried < RETRY
        ):
            return []
        self._freed.clear()
        self._retried = time.monotonic()
        again, self.queued = self.queued, {}
        landed: list[Landed] = []
        for _, waiting in sorted(again.items()):
            got = self._offer_again(waiting)
            if got is not None:
                landed.append(got)
        asked = {note.id for note, _, _ in self._asks}
        gone = [n for n in again if n not in asked]
        for note_id in gone:
            self._since.pop(note_id, None)
        self._release(gone)
        return landed

    def _answered(self, event: Any) -> bool:
        """Whether the request's object no longer waits for this command (it was
        answered, or a later request superseded it)."""
        # Read only (not copied from the cache): the answer is folded on a fresh copy.
        obj: Any = self.ledger.repository.get(
            event.originator_id, deepcopy_from_cache=False
        )
        pending = getattr(obj, "pending", None)
        return not pending or pending.get("commandId") != event.command.get("commandId")

    def _left(self, event: Any, note_id: int) -> tuple[float, float]:
        """The command's wait, and the seconds left of it (its time queued here
        given back)."""
        wait = float(event.command.get("wait") or DEFAULT_WAIT)
        left = wait - (datetime.now(UTC) - event.timestamp).total_seconds()
        return wait, left + self._queued_for(note_id)

    def _offer_again(self, waiting: Waiting) -> Landed | None:
        """`offer` for a request queued here: still pending, and its wait not
        over; its command is not decoded nor its host chosen again (with 50
        snapshots queued behind a threshold of 2, that was most of a round)."""
        flight = waiting.flight
        if flight is None:
            return self.offer(waiting.note, waiting.event)
        event = waiting.event
        if self._answered(event):
            return None  # answered meanwhile (by another dispatcher): dropped
        command = flight.command
        wait, left = self._left(event, waiting.note.id)
        if left <= 0:
            why = f"no answer within its wait of {wait:g} s (queued for a host slot)"
            return Landed(flight, failed(command, why))
        if hasattr(command, "wait"):
            flight = replace(flight, command=command.replace(wait=math.ceil(left)))
        self._asks.append((waiting.note, event, flight))
        return None

    def admit(self) -> None:
        """Claim the host slots of the commands offered this round, in one
        transaction: each starts on its host's workers, or queues."""
        asks, self._asks = self._asks, []
        if not asks or self.slots is None:
            return
        try:
            self.limits = Limits.of(self.ledger.settings())
            verdicts = self.slots.claim(
                [
                    Ask(
                        flight.note_id,
                        flight.host.name,
                        is_snapshot(flight.command),
                        flight.ctx.job_id,
                        flight.command.kind,
                        float(getattr(flight.command, "wait", 0) or DEFAULT_WAIT),
                    )
                    for _, _, flight in asks
                    if flight.host is not None
                ],
                self.limits,
            )
        except Exception:
            # Nothing claimed: every one is asked again next round (never lost:
            # the tracking row does not pass a queued request).
            verdicts = {}
        for note, event, flight in asks:
            verdict = verdicts.get(flight.note_id)
            if verdict is not None and verdict.start:
                self._since.pop(flight.note_id, None)
                self.pool.submit(flight)
                continue
            if verdict is not None and not verdict.elsewhere:
                self._since.setdefault(flight.note_id, time.monotonic())
            self.queued[flight.note_id] = Waiting(
                note, event, self._since.get(flight.note_id), flight
            )

    def _returned(self, flight: Flight) -> None:
        """A worker's command returned: its slot goes at once (in the worker's
        thread: an engine closed meanwhile still frees it)."""
        self._release([flight.note_id])
        self._freed.set()

    def _release(self, requests: list[int]) -> None:
        if self.slots is None or not requests:
            return
        try:
            self.slots.release(requests)
        except Exception:
            self._unreleased.update(requests)  # again at the next round

    def release_left(self) -> None:
        """Give back the slots a failed release left behind."""
        if self._unreleased:
            left, self._unreleased = sorted(self._unreleased), set()
            self._release(left)

    def close(self) -> None:
        """No more rounds: idle workers go, queued commands are left to others."""
        self.pool.close()
        self.queued.clear()
        if self.slots is not None:
            with contextlib.suppress(Exception):  # at worst they expire
                self.slots.drop_queued()

    def record(self, landed: list[Landed], tracking: Tracking | None) -> int:
        """Fold the answers on their objects, in one save with `tracking` (inside a
        follower's batch, in the batch); how many were recorded. An answer its
        object no longer waits for (another dispatcher's came first) is skipped."""
        recorded: list[Landed] = []

        def decide() -> list[Any]:
            recorded.clear()
            out: list[Any] = []
            for got in landed:
                obj: Any = self.ledger.repository.get(got.flight.object_id)
                try:
                    obj.fold_answer(got.flight.ctx, got.answer)
                except StaleAnswer:
                    continue
                out.append(obj)
                recorded.append(got)
            return out

        self.ledger.atomic(decide, tracking=tracking, what="answers")
        return len(recorded)

    def run(self, host: Host, command: Any) -> Answer:
        agent = self.agents.for_host(host, self.interrupt)
        label = f"{command.kind} on {host.name}"
        total = moved_bytes(command)

        def progress(fraction: float) -> None:
            if self.on_progress is not None:
                self.on_progress(label, fraction, total)

        answer: Answer = agent.handle(command, on_progress=progress)
        return answer
