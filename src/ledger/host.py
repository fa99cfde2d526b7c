"""The Host aggregate: a hypervisor host, the endpoint that runs agent commands.

CloudStack keeps hosts in `host`; only `Up` hosts are chosen as endpoints.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from ledger.aggregate import Ctx, StorctlAggregate
from ledger.errors import IllegalTransition
from ledger.values import HostState, Hypervisor


class Host(StorctlAggregate):
    TOPIC = "storctl.Host"

    class Event(StorctlAggregate.Event):
        TOPIC = "storctl.Host.Event"

    class Registered(StorctlAggregate.Created, Event):
        TOPIC = "storctl.Host.Registered"
        name: str
        zone_id: str
        cluster_id: str
        hypervisor: Hypervisor

    class StateChanged(Event):
        TOPIC = "storctl.Host.StateChanged"
        from_state: HostState
        to_state: HostState

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

    def set_state(self, ctx: Ctx, to_state: HostState) -> None:
        if to_state is self.state:
            raise IllegalTransition(
                "Host", str(self.id), self.state.name, to_state.name
            )
        self.emit(self.StateChanged, ctx, from_state=self.state, to_state=to_state)

    @property
    def host_id(self) -> UUID:
        return self.id
