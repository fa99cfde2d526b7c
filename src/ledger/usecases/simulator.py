"""Fault plans of simulator hosts: how each will answer which command, how often.

CloudStack's simulator keeps a mock-command table for the same purpose. Here the
plan is an aggregate, so separate CLI runs and workers see it, every configured
fault is in the audit trail, and a fault used up is a recorded fact (`FaultUsed`).
The simulator agent asks `use_fault` through the port the composition root gives
it, and never reads the ledger itself.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from ledger.aggregate import Ctx
from ledger.app import Ledger
from ledger.errors import InvalidInput
from ledger.host import Host
from ledger.simulator_plan import SimulatorPlan, plan_id
from ledger.store.reader import originators
from ledger.values import Hypervisor
from ledger.zone import Zone


def configure_simulator(
    ledger: Ledger,
    ctx: Ctx,
    host_ref: str,
    command: str,
    mode: str,
    *,
    details: str = "",
    delay: float = 0.0,
    count: int | None = None,
    target: str | None = None,
) -> SimulatorPlan:
    def decide() -> list[Aggregate]:
        host = ledger.resolve(Host, host_ref)
        if host.hypervisor is not Hypervisor.Simulator:
            raise InvalidInput("host", host_ref, "is not a simulator host")
        plan = ledger.find(SimulatorPlan, plan_id(host.id)) or SimulatorPlan.start(
            ctx, host.id
        )
        plan.configure(ctx, command, mode, details, delay, count, target)
        return [plan]

    return ledger.atomic(decide, what="simulator configure")[0]  # type: ignore[return-value]


def clear_simulator(ledger: Ledger, ctx: Ctx, host_ref: str | None) -> list[str]:
    """Clear the plans of one simulator host, or of all; the names cleared."""
    cleared: list[str] = []

    def decide() -> list[Aggregate]:
        cleared.clear()
        if host_ref is not None:
            hosts = [ledger.resolve(Host, host_ref)]
        else:
            hosts = [
                ledger.load(Host, UUID(h))
                for zone_id in originators(ledger.recorder, "storctl.Zone.Opened")
                for h in ledger.load(Zone, zone_id).hosts
            ]
        out: list[Aggregate] = []
        for host in hosts:
            plan = ledger.find(SimulatorPlan, plan_id(host.id))
            if plan is not None and plan.faults:
                plan.clear(ctx)
                out.append(plan)
                cleared.append(host.name)
        return out

    ledger.atomic(decide, what="simulator clear")
    return cleared


def use_fault(
    ledger: Ledger,
    host_id: UUID,
    kind: str,
    command_id: str,
    targets: Collection[str] = (),
) -> dict[str, Any] | None:
    """The fault the host's plan holds for a command of `kind` on `targets` (its
    objects' names and ids), used up by one (`FaultUsed`); None when the plan has
    none. Saved at once, outside any
    follower's batch (the dispatcher asks while deciding one): a use is a fact
    whether or not the answer's batch is saved."""
    for _ in range(10):
        plan = ledger.find(SimulatorPlan, plan_id(host_id))
        if plan is None:
            return None
        fault = plan.use(Ctx("simulator", "simulator", command_id), kind, targets)
        if fault is None:
            return None
        try:
            ledger.save(plan)
        except IntegrityError:
            continue  # another use won the race: read the plan again
        return fault
    return None
