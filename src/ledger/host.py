"""The Host aggregate: a hypervisor host, the endpoint that runs agent commands.

CloudStack keeps hosts in `host`; only `Up` hosts are chosen as endpoints. A host
moves through `fsm.HOST_TABLE` (storctl's own: one trigger leads to each state).
"""

from __future__ import annotations

from enum import Enum
from typing import Any
from uuid import UUID

from ledger.aggregate import Ctx, StorctlAggregate
from ledger.fsm import HOST
from ledger.values import HostState, Hypervisor

#: the trigger that asks for each state, read off the table (one per state)
ASKS: dict[HostState, str] = {HostState[to]: trigger for _, trigger, to in HOST.table}


class Host(StorctlAggregate):
    TOPIC = "storctl.Host"
    SPEC = HOST

    class Event(StorctlAggregate.Event):
        TOPIC = "storctl.Host.Event"

    class Registered(StorctlAggregate.Created, Event):
        TOPIC = "storctl.Host.Registered"
        name: str
        zone_id: str
        cluster_id: str
        hypervisor: Hypervisor

    class StateChanged(Event):
        """v2 added `trigger`, as a VM's and a pool's moves record theirs, so that
        the journal and `replay verify` read a host's move like any other. A v1
        event was written by code that asked for a state, not a trigger; the
        upcaster gives it the trigger that leads to that state. The mapping is
        written out, not read off today's table: what a stored event says must not
        change when the table does."""

        TOPIC = "storctl.Host.StateChanged"
        class_version = 2
        trigger: str
        from_state: HostState
        to_state: HostState

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            to_state = state["to_state"]
            name = to_state.name if isinstance(to_state, Enum) else str(to_state)
            v1_triggers = {"Up": "Enable", "Disabled": "Disable", "Down": "HostDown"}
            state["trigger"] = v1_triggers[name]

        def apply(self, aggregate: Any) -> None:
            aggregate.state = self.to_state

    def __init__(
        self,
        *,
        name: str,
        zone_id: str,
        cluster_id: str,
        hypervisor: Hypervisor,
        actor: str,
        job_id: str,
        causation_id: str,
    ) -> None:
        self.name = name
        self.zone_id = zone_id
        self.cluster_id = cluster_id
        self.hypervisor = hypervisor
        self.state = HostState.Up

    @classmethod
    def register(
        cls, ctx: Ctx, name: str, zone_id: str, cluster_id: str, hypervisor: Hypervisor
    ) -> Host:
        return cls.create(
            cls.Registered,
            ctx,
            name=name,
            zone_id=zone_id,
            cluster_id=cluster_id,
            hypervisor=hypervisor,
        )

    def change_state(self, ctx: Ctx, trigger: str) -> None:
        """Move the host as `trigger` asks, or `IllegalTransition`."""
        to_state = self.SPEC.next_state(self.id, self.state, trigger, self.name)
        self.emit(
            self.StateChanged,
            ctx,
            trigger=trigger,
            from_state=self.state,
            to_state=to_state,
        )

    def set_state(self, ctx: Ctx, to_state: HostState) -> None:
        """What `host enable|disable` asks: the trigger that leads to `to_state`."""
        self.change_state(ctx, ASKS[to_state])

    @property
    def host_id(self) -> UUID:
        return self.id
