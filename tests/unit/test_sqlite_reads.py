"""The one-statement reads on SQLite answer exactly what the library's reads
answer, and see every commit, this process's or another's, made before them."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from eventsourcing.sqlite import SQLiteProcessRecorder

from ledger.aggregate import Ctx
from ledger.app import Ledger
from ledger.host import Host
from ledger.store.database import parse_db
from ledger.usecases import infrastructure
from ledger.values import HostState, Hypervisor


def ctx() -> Ctx:
    return Ctx.new("t")


@pytest.fixture
def two(tmp_path: Path) -> Iterator[tuple[Ledger, Ledger]]:
    env = parse_db(str(tmp_path / "ledger.db")).env
    apps = Ledger(env=env), Ledger(env=env)
    yield apps
    for app in apps:
        app.close()


def test_reads_match_the_library_for_every_argument(two: tuple[Ledger, Ledger]) -> None:
    ledger, _ = two
    host = infrastructure.register_host(
        ledger, ctx(), "kvm-01", "z1", "c1", Hypervisor.KVM
    )
    for state in [HostState.Disabled, HostState.Up] * 3:
        infrastructure.set_host_state(ledger, ctx(), "kvm-01", state)
    fast = ledger.recorder
    assert "select_events" in vars(fast)  # installed on this instance
    assert isinstance(fast, SQLiteProcessRecorder)
    for gt, lte, desc, limit in itertools.product(
        (None, 0, 3), (None, 2, 5), (False, True), (None, 1, 3)
    ):
        got = fast.select_events(host.id, gt=gt, lte=lte, desc=desc, limit=limit)
        want = SQLiteProcessRecorder.select_events(
            fast, host.id, gt=gt, lte=lte, desc=desc, limit=limit
        )
        assert got == want, (gt, lte, desc, limit)
    assert len(fast.select_events(host.id)) == 7


def test_reads_see_another_process_commit_at_once(two: tuple[Ledger, Ledger]) -> None:
    ledger, other = two
    host = infrastructure.register_host(
        ledger, ctx(), "kvm-01", "z1", "c1", Hypervisor.KVM
    )
    assert ledger.load(Host, host.id).state is HostState.Up
    infrastructure.set_host_state(other, ctx(), "kvm-01", HostState.Disabled)
    assert ledger.load(Host, host.id).state is HostState.Disabled
    infrastructure.set_host_state(ledger, ctx(), "kvm-01", HostState.Up)
    assert other.load(Host, host.id).state is HostState.Up
