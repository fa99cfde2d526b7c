"""The agents: one per hypervisor, like CloudStack's `ServerResource` implementations.

Each takes a `ledger.commands` command and returns its answer, never raising, so a
failure becomes a recorded `result=false` answer instead of a lost job. `Agents`
says which one serves a host; the composition root (`cli.bootstrap`) builds it and
gives it to the dispatcher, which builds none itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from ledger.commands import Answer
from ledger.host import Host
from ledger.values import Hypervisor

ProgressCallback = Callable[[float], None]


class Agent(Protocol):
    """Answers one command; never raises (a failure is `result=false`)."""

    def handle(
        self, command: Any, on_progress: ProgressCallback | None = None
    ) -> Answer: ...


#: builds (or returns) the agent for one host; `stop` is set when the engine is
#: interrupted, so an agent waiting on something gives up
AgentFor = Callable[[Host, threading.Event], Agent]


class Agents:
    """Which agent runs a host's commands, by the host's hypervisor."""

    def __init__(self, by_hypervisor: Mapping[Hypervisor, AgentFor]) -> None:
        self.by_hypervisor = dict(by_hypervisor)

    def for_host(self, host: Host, stop: threading.Event) -> Agent:
        return self.by_hypervisor[host.hypervisor](host, stop)
