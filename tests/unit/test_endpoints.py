"""Endpoint choice reads the stores, zones and hosts as they are now, whoever
changed them: another process's new host or state change is seen at the next
command."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import pytest

from executors.endpoints import NO_ENDPOINT, select
from ledger.aggregate import Ctx
from ledger.app import Ledger
from ledger.commands import ImageStoreTO, PrimaryDataStoreTO
from ledger.store.database import parse_db
from ledger.usecases import infrastructure
from ledger.values import HostState, Hypervisor, PoolType, Scope


def ctx() -> Ctx:
    return Ctx.new("t")


@dataclass
class Data:
    dataStore: Any


@dataclass
class Copy:
    """What `select` reads of a command: its data objects' stores."""

    srcTO: Data
    destTO: Data
    vmId: str | None = None


@pytest.fixture
def other(ledger: Ledger, db_url: str) -> Iterator[Ledger]:
    app = Ledger(env=parse_db(db_url).env)
    yield app
    app.close()


@pytest.fixture
def copy(ledger: Ledger) -> Copy:
    infrastructure.register_host(ledger, ctx(), "h2", "z1", "c1", Hypervisor.Simulator)
    infrastructure.register_host(ledger, ctx(), "h3", "z1", "c1", Hypervisor.Simulator)
    pool = infrastructure.register_pool(
        ledger,
        ctx(),
        name="p1",
        zone="z1",
        path="/sim/p1",
        capacity=1 << 40,
        scope=Scope.CLUSTER,
        pool_type=PoolType.Simulator,
        cluster="c1",
        overprovision=1.0,
    )
    store = infrastructure.register_store(ledger, ctx(), "s1", "z1", "/sim/s1")
    return Copy(
        srcTO=Data(ImageStoreTO(uuid=str(store.id), name="s1", uri="/sim/s1")),
        destTO=Data(
            PrimaryDataStoreTO(
                uuid=str(pool.id), name="p1", poolType="Simulator", path="/sim/p1"
            )
        ),
    )


def test_the_first_up_host_by_name_and_what_another_process_changed(
    ledger: Ledger, other: Ledger, copy: Copy
) -> None:
    chosen = select(ledger, copy).host
    assert chosen is not None
    assert chosen.name == "h2"
    infrastructure.register_host(other, ctx(), "h1", "z1", "c1", Hypervisor.Simulator)
    chosen = select(ledger, copy).host
    assert chosen is not None
    assert chosen.name == "h1"
    infrastructure.set_host_state(other, ctx(), "h1", HostState.Down)
    infrastructure.set_host_state(other, ctx(), "h2", HostState.Disabled)
    chosen = select(ledger, copy).host
    assert chosen is not None
    assert chosen.name == "h3"
    infrastructure.set_host_state(other, ctx(), "h3", HostState.Down)
    choice = select(ledger, copy)
    assert choice.host is None
    assert choice.reason.startswith(NO_ENDPOINT)


def test_a_host_of_another_cluster_does_not_reach_a_cluster_pool(
    ledger: Ledger, other: Ledger, copy: Copy
) -> None:
    infrastructure.register_host(other, ctx(), "a0", "z1", "c2", Hypervisor.Simulator)
    chosen = select(ledger, copy).host
    assert chosen is not None
    assert chosen.name == "h2"


def test_an_unknown_store_is_no_endpoint(ledger: Ledger, copy: Copy) -> None:
    ghost = PrimaryDataStoreTO(uuid=str(uuid4()), name="x", poolType="X", path="/x")
    choice = select(ledger, Copy(srcTO=copy.srcTO, destTO=Data(ghost)))
    assert choice.host is None
    assert "pool" in choice.reason
    assert choice.reason.startswith(NO_ENDPOINT)
