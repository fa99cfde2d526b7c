"""What every aggregate and event shares: who asked, in which job, because of what.

Every event carries `actor`, `job_id` (CloudStack's async job, our correlation id) and
`causation_id` (the event or request that led to it), so the journal can answer "who did
this, as part of what, and why" for any row. Aggregates decide in their public methods
(asking `fsm`), and the nested events only assign in `apply`, so any stored stream loads
under any later code.
"""

from __future__ import annotations

import getpass
import uuid
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar, TypeVar

from eventsourcing.domain import Aggregate

from ledger.errors import IllegalTransition
from ledger.fsm import Spec

T = TypeVar("T", bound="StorctlAggregate")


@dataclass(frozen=True)
class Ctx:
    """The request context every command method takes and every event records."""

    actor: str
    job_id: str
    causation_id: str

    @staticmethod
    def new(actor: str | None = None, job_id: str | None = None) -> Ctx:
        job = job_id or str(uuid.uuid4())
        return Ctx(actor=actor or _login(), job_id=job, causation_id=job)

    def caused_by(self, causation_id: str) -> Ctx:
        return Ctx(self.actor, self.job_id, causation_id)

    def fields(self) -> dict[str, str]:
        return {
            "actor": self.actor,
            "job_id": self.job_id,
            "causation_id": self.causation_id,
        }


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        return "unknown"


class StorctlAggregate(Aggregate):
    """Base of every aggregate; `Event` adds the request context to each event."""

    class Event(Aggregate.Event):
        actor: str
        job_id: str
        causation_id: str

    def emit(self, event_class: type[Aggregate.Event], ctx: Ctx, **fields: Any) -> None:
        self.trigger_event(event_class, **ctx.fields(), **fields)

    @classmethod
    def create(
        cls: type[T],
        event_class: type[Any],
        ctx: Ctx,
        id: uuid.UUID | None = None,
        **fields: Any,
    ) -> T:
        return cls._create(event_class, id=id or uuid.uuid4(), **ctx.fields(), **fields)


class StaleAnswer(IllegalTransition):
    """An answer for a command the object no longer waits for (already answered)."""


class Requested(StorctlAggregate.Event):
    """Base of every `...Requested` event: the trigger, the states, the command."""

    command: dict[str, Any] | None
    trigger: str
    from_state: Enum
    to_state: Enum

    def apply(self, aggregate: Any) -> None:
        aggregate.state = self.to_state
        aggregate.pending = self.command
        aggregate.pending_trigger = self.trigger if self.command else None
        if self.command:
            aggregate.last_command = self.command


class Answered(StorctlAggregate.Event):
    """Base of every `...Answered` event: the answer folded as a trigger."""

    answer: dict[str, Any]
    trigger: str
    from_state: Enum
    to_state: Enum

    def apply(self, aggregate: Any) -> None:
        aggregate.state = self.to_state
        aggregate.pending = None
        aggregate.last_answer = self.answer


class Commandable(StorctlAggregate):
    """An aggregate that sends one agent command at a time and folds its answer.

    `pending` is the command (as a dict) waiting for its answer; an answer whose
    `commandId` is not the pending one is stale and refused, so a command answered
    twice (a dispatcher restarted after a crash) changes nothing the second time.
    """

    SPEC: ClassVar[Spec]
    KIND: ClassVar[str]
    SUCCEEDED: ClassVar[str] = "OperationSucceeded"
    FAILED: ClassVar[str] = "OperationFailed"

    state: Enum
    pending: dict[str, Any] | None

    def next(self, trigger: str) -> Any:
        return self.SPEC.next_state(
            self.id, self.state, trigger, getattr(self, "name", None)
        )

    def request(
        self,
        event_class: type[Any],
        ctx: Ctx,
        trigger: str,
        command: Any | None,
        to_state: Enum | None = None,
        **extra: Any,
    ) -> None:
        """Guard `trigger`, then record the command it sends (None: no host work)."""
        if self.pending is not None:
            raise IllegalTransition(
                self.KIND,
                str(self.id),
                self.state.name,
                trigger,
                why=f"{self.pending['kind']} {self.pending['commandId']} is pending",
            )
        dest = to_state if to_state is not None else self.next(trigger)
        self.emit(
            event_class,
            ctx,
            command=command.to_dict() if command else None,
            trigger=trigger,
            from_state=self.state,
            to_state=dest,
            **extra,
        )

    def answer(
        self, event_class: type[Any], ctx: Ctx, answer: Any, **extra: Any
    ) -> None:
        """Fold an agent's answer as CloudStack's OperationSucceeded/Failed."""
        self.require_pending(answer)
        trigger = self.SUCCEEDED if answer.result else self.FAILED
        self.emit(
            event_class,
            ctx,
            answer=answer.to_dict(),
            trigger=trigger,
            from_state=self.state,
            to_state=self.answer_state(trigger),
            **extra,
        )

    def require_pending(self, answer: Any) -> None:
        """Refuse an answer to a command this object does not wait for (answered
        already, or never sent) before anything is decided from it."""
        if self.pending is None or self.pending["commandId"] != answer.commandId:
            raise StaleAnswer(
                self.KIND,
                str(self.id),
                self.state.name,
                "answer",
                why=f"command {answer.commandId} is not pending",
            )

    def answer_state(self, trigger: str) -> Any:
        return self.next(trigger)

    def settle(
        self,
        event_class: type[Any],
        ctx: Ctx,
        *,
        ok: bool,
        details: str = "",
        **extra: Any,
    ) -> None:
        """Fold the outcome of a step whose command another object sent (a
        snapshot's backup is the copy's command; the volume waits on both)."""
        if self.pending is not None:
            raise IllegalTransition(
                self.KIND,
                str(self.id),
                self.state.name,
                "settle",
                why=f"{self.pending['kind']} {self.pending['commandId']} is pending",
            )
        trigger = self.SUCCEEDED if ok else self.FAILED
        self.emit(
            event_class,
            ctx,
            answer={
                "kind": "Answer",
                "commandId": None,
                "result": ok,
                "details": details,
            },
            trigger=trigger,
            from_state=self.state,
            to_state=self.next(trigger),
            **extra,
        )
