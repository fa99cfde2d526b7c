"""The dispatcher: every `...Requested` event with a command goes to an endpoint, and
the answer comes back as an event on the object that asked.

Host work is at-least-once (a dispatcher killed mid-command runs it again after a
restart; agents are idempotent), state changes are exactly-once: the answer is saved
with the dispatcher's tracking row in one transaction, and an object refuses an answer
for a command it no longer waits for. A dispatcher given `--hosts` takes only the
commands whose endpoint is one of them; the others are left to their own workers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification, Tracking

from executors import endpoints
from executors.agents import Agents
from ledger.aggregate import Ctx, Requested, StaleAnswer
from ledger.app import Ledger
from ledger.commands import Answer, from_dict
from ledger.commands import failure_for as failed
from ledger.host import Host
from ledger.usecases.answers import record_answer

Progress = Callable[[str, float], None]


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

    def handle(self, notification: Notification, event: Any) -> bool:
        """Send the command of one request event, if it is still pending and ours."""
        if not isinstance(event, Requested) or not event.command:
            return False
        # Read only (not copied from the cache): the answer is folded on a fresh copy.
        obj: Any = self.ledger.repository.get(
            event.originator_id, deepcopy_from_cache=False
        )
        pending = getattr(obj, "pending", None)
        if not pending or pending.get("commandId") != event.command.get("commandId"):
            return False  # answered already (or superseded): nothing to send
        command = from_dict(event.command)
        choice = endpoints.select(self.ledger, command)
        mine = choice.host.name if choice.host else None
        if self.hosts is not None and mine not in self.hosts:
            return False
        if self.hosts is None and mine in self.others:
            return False
        if choice.host is None:
            answer: Answer = failed(command, choice.reason)
        else:
            answer = self.run(choice.host, command)
        ctx = Ctx(
            actor=event.actor,
            job_id=event.job_id,
            causation_id=f"{event.originator_id}/{event.originator_version}",
        )
        try:
            record_answer(
                self.ledger,
                ctx,
                UUID(str(event.originator_id)),
                answer,
                tracking=Tracking(self.name, notification.id),
            )
        except StaleAnswer:
            return False
        return True

    def run(self, host: Host, command: Any) -> Answer:
        agent = self.agents.for_host(host, self.interrupt)
        label = f"{command.kind} on {host.name}"

        def progress(fraction: float) -> None:
            if self.on_progress is not None:
                self.on_progress(label, fraction)

        answer: Answer = agent.handle(command, on_progress=progress)
        return answer
