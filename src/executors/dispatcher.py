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
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification, Tracking

from executors import endpoints
from executors.agents import Agents
from executors.command_pool import CommandPool, Flight, Landed
from ledger.aggregate import Ctx, Requested, StaleAnswer
from ledger.app import Ledger
from ledger.commands import DEFAULT_WAIT, Answer, from_dict
from ledger.commands import failure_for as failed
from ledger.host import Host

Progress = Callable[[str, float], None]

#: commands one host runs at once (CloudStack's agent `workers`, 5 by default);
#: the rest wait in the host's queue
WORKERS = 5


class Dispatcher:
    def __init__(
        self,
        ledger: Ledger,
        agents: Agents,
        hosts: set[str] | None = None,
        on_progress: Progress | None = None,
        interrupt: threading.Event | None = None,
    ) -> None:
        self.ledger = ledger
        self.hosts = hosts
        self.name = "dispatcher" + (":" + ",".join(sorted(hosts)) if hosts else "")
        self.on_progress = on_progress
        self.interrupt = interrupt or threading.Event()
        self.others: set[str] = set()  # hosts that have a worker of their own
        self.agents = agents
        self.pool = CommandPool(self.run, lambda: WORKERS)

    def offer(self, notification: Notification, event: Any) -> Landed | None:
        """Send the command of one request event, if it is still pending and ours:
        into the pool, or answered at once when no host can run it or its wait is
        over (a request another dispatcher sent and never answered)."""
        if not isinstance(event, Requested) or not event.command:
            return None
        if notification.id in self.pool.pending:
            return None  # in flight here already
        # Read only (not copied from the cache): the answer is folded on a fresh copy.
        obj: Any = self.ledger.repository.get(
            event.originator_id, deepcopy_from_cache=False
        )
        pending = getattr(obj, "pending", None)
        if not pending or pending.get("commandId") != event.command.get("commandId"):
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
        wait = float(getattr(command, "wait", 0) or DEFAULT_WAIT)
        left = wait - (datetime.now(UTC) - event.timestamp).total_seconds()
        if left <= 0:
            why = (
                f"no answer within its wait of {wait:g} s (sent before, never answered)"
            )
            return Landed(flight, failed(command, why))
        if hasattr(command, "wait"):
            # what is left of its wait (all of it, to the second, when just asked)
            flight = replace(flight, command=command.replace(wait=math.ceil(left)))
        self.pool.submit(flight)
        return None

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

        def progress(fraction: float) -> None:
            if self.on_progress is not None:
                self.on_progress(label, fraction)

        answer: Answer = agent.handle(command, on_progress=progress)
        return answer
