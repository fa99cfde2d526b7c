"""The simulator agent: answers every command without disk I/O, as planned.

CloudStack ships a simulator hypervisor for the same reasons: scale tests and fault
injection. This one says so in every answer's details, and follows the host's
`SimulatorPlan` (fail with given details, hang past the wait, or delay), which
`storctl simulator configure` records in the ledger so every process sees it. The
agent does not read the ledger: it asks `faults` (the composition root gives it
`usecases.simulator.use_fault`) for the fault a command meets.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from uuid import UUID

from executors.providers.simulator import success_for
from ledger.commands import (
    Answer,
    Command,
    failure_for,
    targets,
)

#: (host id, command kind, command id, the names and ids of its objects) -> the
#: fault planned for it, used up; or None
Faults = Callable[[UUID, str, str, frozenset[str]], dict[str, Any] | None]


class SimulatorAgent:
    def __init__(
        self, host_id: UUID, faults: Faults, interrupt: threading.Event | None = None
    ) -> None:
        self.host_id = host_id
        self.faults = faults
        self.interrupt = interrupt or threading.Event()

    def _fault(self, command: Command) -> dict[str, Any] | None:
        return self.faults(
            self.host_id, command.kind, command.commandId, targets(command)
        )

    def handle(
        self, command: Any, on_progress: Callable[[float], None] | None = None
    ) -> Answer:
        fault = self._fault(command)
        wait = float(getattr(command, "wait", 0) or 0)
        if fault is not None:
            if fault["mode"] == "fail":
                return failure_for(command, fault["details"] or "simulated failure")
            if fault["mode"] == "hang":
                # A hung agent answers nothing; the management side times it out.
                self.interrupt.wait(wait)
                return failure_for(command, f"timed out after {int(wait)} s")
            delay = float(fault["delay"])
            if delay >= wait > 0:
                self.interrupt.wait(wait)
                return failure_for(command, f"timed out after {int(wait)} s")
            self.interrupt.wait(delay)
        if on_progress is not None:
            on_progress(1.0)
        return success_for(command)
