"""The composition root: what it wires, and that a second start skips the DDL."""

from __future__ import annotations

import threading

import pytest

from cli import bootstrap
from executors.agents.kvm import KvmAgent
from executors.agents.simulator import SimulatorAgent
from ledger.aggregate import Ctx
from ledger.host import Host
from ledger.store.database import parse_db
from ledger.usecases import infrastructure, simulator
from ledger.values import Hypervisor
from projections.table_candidates import TableCandidates
from tests.conftest import drop_pg_schema, fresh_pg_url


def test_the_ledger_is_opened_with_the_tables_candidates(ledger):
    assert isinstance(ledger.candidates, TableCandidates)


def test_each_host_gets_the_agent_of_its_hypervisor_and_faults_come_from_its_plan(
    ledger,
):
    ctx = Ctx.new("t")
    infrastructure.register_host(ledger, ctx, "kvm1", "z1", "c1", Hypervisor.KVM)
    infrastructure.register_host(ledger, ctx, "sim1", "z1", "c1", Hypervisor.Simulator)
    simulator.configure_simulator(
        ledger, ctx, "sim1", "CopyCommand", "fail", details="boom", count=1
    )
    agents = bootstrap.agents(ledger)
    stop = threading.Event()
    kvm = agents.for_host(ledger.resolve(Host, "kvm1"), stop)
    sim = agents.for_host(ledger.resolve(Host, "sim1"), stop)
    assert isinstance(kvm, KvmAgent)
    assert agents.for_host(ledger.resolve(Host, "kvm1"), stop) is kvm  # one for all
    assert isinstance(sim, SimulatorAgent)
    assert not hasattr(sim, "ledger")
    host = ledger.resolve(Host, "sim1")
    assert sim.faults(host.id, "CopyCommand", "c-1")["details"] == "boom"
    assert sim.faults(host.id, "CopyCommand", "c-2") is None  # used up, recorded


@pytest.mark.postgres
def test_a_second_start_on_postgres_skips_the_ddl(monkeypatch):
    """Every start used to run the DDL (CREATE INDEX IF NOT EXISTS takes a lock
    on each table), which could deadlock with another process's catch-up."""
    url = fresh_pg_url()
    try:
        bootstrap.open_ledger(url).close()

        def ddl_taken(db):
            raise AssertionError("the DDL lock was taken by a second start")

        monkeypatch.setattr(bootstrap, "ddl_lock", ddl_taken)
        bootstrap.open_ledger(url).close()
    finally:
        drop_pg_schema(parse_db(url))
