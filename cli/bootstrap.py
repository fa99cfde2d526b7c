"""The one composition root: how storctl's parts are put together.

The CLI, `storctl executor run`, the benchmarks and the tests all open the ledger and
build the engine here, so every one of them takes the path production takes: the
ledger with its projection tables, placement nominated by those tables
(`TableCandidates`), the dispatcher given its agents (KVM, simulator), and the
engine's followers decoding once for the projections too. Nothing else builds any
of these (cosmicpython's `bootstrap`).
"""

from __future__ import annotations

import threading
from functools import partial
from typing import TYPE_CHECKING, Any

from ledger.app import Ledger
from ledger.store.database import (
    Database,
    database_of,
    ddl_lock,
    parse_db,
    prepare,
    tables_exist,
)
from projections.table_candidates import TableCandidates
from projections.view import view_for

if TYPE_CHECKING:
    from executors.agents import Agents
    from executors.dispatcher import Progress
    from executors.engine import Engine


def open_ledger(
    url: str | None = None, *, cls: type[Ledger] = Ledger, **env: str
) -> Ledger:
    """The ledger on `url` (default: `STORCTL_DB`, else the user's data folder),
    its store's place made and its projection tables created.

    On PostgreSQL, CREATE ... IF NOT EXISTS from processes starting together
    collide (and CREATE INDEX blocks writers), so tables are created once, under a
    lock, and later starts skip the DDL. `cls` and `env` are for the benchmarks (a
    ledger that never snapshots, a cold cache)."""
    db = parse_db(url)
    prepare(db)
    # eventsourcing names PostgreSQL tables after the application
    name = cls.name.lower()
    ledger_tables = [
        f"{name}_{t}" for t in ("events", "snapshots", "tracking", "events_hashes")
    ]
    if tables_exist(db, *ledger_tables, "event_journal"):
        ledger = cls(
            env={**db.env, "CREATE_TABLE": "n", **env}, candidates=TableCandidates
        )
        view_for(ledger)
        return ledger
    with ddl_lock(db):
        ledger = cls(env={**db.env, **env}, candidates=TableCandidates)
        view_for(ledger)
    return ledger


def agents(ledger: Ledger, kvm: Any = None) -> Agents:
    """Who runs a host's commands: one KVM agent for every KVM host (real
    `qemu-img`), a simulator agent per simulator host, following its fault plan.
    The executors are imported here, not above: a command that only records
    events (`volume create`, which stays Allocated) never needs them."""
    from executors.agents import Agents
    from executors.agents.kvm import KvmAgent
    from executors.agents.simulator import SimulatorAgent
    from ledger.host import Host
    from ledger.usecases.simulator import use_fault
    from ledger.values import Hypervisor

    kvm_agent = kvm if kvm is not None else KvmAgent()
    faults = partial(use_fault, ledger)

    def simulator(host: Host, stop: threading.Event) -> SimulatorAgent:
        return SimulatorAgent(host.id, faults, stop)

    return Agents(
        {Hypervisor.KVM: lambda host, stop: kvm_agent, Hypervisor.Simulator: simulator}
    )


def engine(
    ledger: Ledger,
    with_agents: Agents | None = None,
    *,
    hosts: set[str] | None = None,
    on_progress: Progress | None = None,
    project: bool = True,
    db: Database | None = None,
) -> Engine:
    """The followers of `ledger`'s log: workflows, dispatcher and (unless
    `project` is false) the projections, sharing one decoder."""
    from executors.engine import Engine
    from projections.projector import catch_up, decoder

    return Engine(
        ledger,
        db or database_of(ledger.env),
        with_agents or agents(ledger),
        hosts,
        on_progress,
        project=catch_up if project else None,
        decode=decoder(ledger),
    )
