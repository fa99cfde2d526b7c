"""A simulator host's fault plan: how it will answer which command, how many times.

CloudStack's simulator has a mock-command table for the same purpose. Here the plan is
an aggregate, so separate CLI runs and workers see it, every configured fault is in the
audit trail, and a fault used up is a recorded fact (`FaultUsed`).

A fault may be aimed at one object (`target`: a volume's, snapshot's or template's
name or id, as the command carries it, `commands.targets`): of two commands of one
type in flight on the host, only that object's meets it, whichever the host gets
first. A targeted fault is kept beside the command type's untargeted one, under its
own key (`fault_key`), and is met first.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any
from uuid import UUID

from ledger.aggregate import Ctx, StorctlAggregate
from ledger.errors import InvalidInput
from ledger.values import derived_id

MODES = ("fail", "hang", "delay")
COMMANDS = (
    "CreateObjectCommand",
    "CopyCommand",
    "DeleteCommand",
    "AttachCommand",
    "DettachCommand",
    "DownloadCommand",
    "ResizeVolumeCommand",
    "RevertSnapshotCommand",
)


def plan_id(host_id: UUID) -> UUID:
    return derived_id("simulator-plan", host_id)


def fault_key(command: str, target: str | None) -> str:
    """Where a plan keeps a fault: the command type, and the object it aims at."""
    return command if target is None else f"{command} on {target}"


class SimulatorPlan(StorctlAggregate):
    TOPIC = "storctl.SimulatorPlan"

    class Event(StorctlAggregate.Event):
        TOPIC = "storctl.SimulatorPlan.Event"

    class Started(StorctlAggregate.Created, Event):
        TOPIC = "storctl.SimulatorPlan.Started"
        host_id: UUID

    class FaultConfigured(Event):
        TOPIC = "storctl.SimulatorPlan.FaultConfigured"
        command: str
        mode: str
        details: str
        delay: float
        count: int | None
        #: the object aimed at (None: any command of the type); faults recorded
        #: before targeting existed read as None
        target: str | None = None

        def apply(self, aggregate: Any) -> None:
            aggregate.faults[fault_key(self.command, self.target)] = {
                "mode": self.mode,
                "details": self.details,
                "delay": self.delay,
                "count": self.count,
                "target": self.target,
            }

    class FaultUsed(Event):
        TOPIC = "storctl.SimulatorPlan.FaultUsed"
        command: str  # the fault's key (`fault_key`): its type, and its target

        def apply(self, aggregate: Any) -> None:
            fault = aggregate.faults.get(self.command)
            if fault is not None and fault["count"] is not None:
                fault["count"] -= 1
                if fault["count"] <= 0:
                    del aggregate.faults[self.command]

    class Cleared(Event):
        TOPIC = "storctl.SimulatorPlan.Cleared"

        def apply(self, aggregate: Any) -> None:
            aggregate.faults = {}

    def __init__(
        self, *, host_id: UUID, actor: str, job_id: str, causation_id: str
    ) -> None:
        self.host_id = host_id
        self.faults: dict[str, dict[str, Any]] = {}

    @classmethod
    def start(cls, ctx: Ctx, host_id: UUID) -> SimulatorPlan:
        return cls.create(cls.Started, ctx, id=plan_id(host_id), host_id=host_id)

    def configure(
        self,
        ctx: Ctx,
        command: str,
        mode: str,
        details: str = "",
        delay: float = 0.0,
        count: int | None = None,
        target: str | None = None,
    ) -> None:
        if command not in COMMANDS:
            raise InvalidInput(
                "command", command, f"expected one of {', '.join(COMMANDS)}"
            )
        if mode not in MODES:
            raise InvalidInput("mode", mode, f"expected one of {', '.join(MODES)}")
        if count is not None and count < 1:
            raise InvalidInput("count", str(count), "at least 1")
        if delay < 0:
            raise InvalidInput("delay", str(delay), "not negative")
        if target is not None and not target.strip():
            raise InvalidInput("target", target, "a name or an id, not empty")
        self.emit(
            self.FaultConfigured,
            ctx,
            command=command,
            mode=mode,
            details=details,
            delay=delay,
            count=count,
            target=target,
        )

    def use(
        self, ctx: Ctx, command: str, targets: Collection[str] = ()
    ) -> dict[str, Any] | None:
        """The fault a command of type `command` on `targets` (the names and
        ids of its objects) meets, used up by it; None when it meets none."""
        keys = [fault_key(command, t) for t in sorted(targets)] + [command]
        key = next((k for k in keys if k in self.faults), None)
        if key is None:
            return None
        fault = dict(self.faults[key])
        self.emit(self.FaultUsed, ctx, command=key)
        return fault

    def clear(self, ctx: Ctx) -> None:
        self.emit(self.Cleared, ctx)
