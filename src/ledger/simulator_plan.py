"""A simulator host's fault plan: how it will answer which command, how many times.

CloudStack's simulator has a mock-command table for the same purpose. Here the plan is
an aggregate, so separate CLI runs and workers see it, every configured fault is in the
audit trail, and a fault used up is a recorded fact (`FaultUsed`).
"""

from __future__ import annotations

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

        def apply(self, aggregate: Any) -> None:
            aggregate.faults[self.command] = {
                "mode": self.mode,
                "details": self.details,
                "delay": self.delay,
                "count": self.count,
            }

    class FaultUsed(Event):
        TOPIC = "storctl.SimulatorPlan.FaultUsed"
        command: str

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
        self.emit(
            self.FaultConfigured,
            ctx,
            command=command,
            mode=mode,
            details=details,
            delay=delay,
            count=count,
        )

    def use(self, ctx: Ctx, command: str) -> dict[str, Any] | None:
        fault = self.faults.get(command)
        if fault is None:
            return None
        fault = dict(fault)
        self.emit(self.FaultUsed, ctx, command=command)
        return fault

    def clear(self, ctx: Ctx) -> None:
        self.emit(self.Cleared, ctx)
