"""A follower's batch belongs to its thread (issue 19's soak found otherwise).

While the dispatcher decides a batch, host commands it started run in threads of
their own (`command_pool`), and the simulator agent loads and saves its host's fault
plan from there (`use_fault`). Those loads must be copies read from the store, never
the batch's uncopied cached aggregate: two threads that shared it appended the
plan's events out of version order (v6 at a lower position than v5), which `replay
verify` then could not load."""

from __future__ import annotations

import threading
from typing import Any

from ledger.aggregate import Ctx
from ledger.app import Ledger
from ledger.simulator_plan import SimulatorPlan, plan_id
from ledger.usecases import infrastructure, simulator
from ledger.values import Hypervisor


def in_thread(fn: Any) -> Any:
    out: list[Any] = []
    t = threading.Thread(target=lambda: out.append(fn()))
    t.start()
    t.join(timeout=30)
    return out[0]


def test_another_thread_never_gets_the_batchs_own_aggregate(ledger: Ledger):
    host = infrastructure.register_host(
        ledger, Ctx.new("t"), "sim1", "z1", "c1", Hypervisor.Simulator
    )
    simulator.configure_simulator(
        ledger, Ctx.new("t"), "sim1", "DeleteCommand", "fail", count=2
    )
    pid = plan_id(host.id)
    head = ledger.recorder.max_notification_id() or 0
    with ledger.following(head, [], lambda n: n) as batch:
        mine = ledger.load(SimulatorPlan, pid)  # the follower's, as it decides
        assert batch.loaded.get(pid) is mine
        theirs = in_thread(lambda: ledger.load(SimulatorPlan, pid))
        assert theirs is not mine
        # a command thread uses the fault and saves; the batch's object is untouched
        used = in_thread(
            lambda: simulator.use_fault(ledger, host.id, "DeleteCommand", "c-1")
        )
        assert used is not None
        assert mine.faults["DeleteCommand"]["count"] == 2
    # and the stream's versions follow its positions
    events = ledger.recorder.select_events(pid)
    assert [e.originator_version for e in events] == list(range(1, len(events) + 1))
    assert ledger.load(SimulatorPlan, pid).faults["DeleteCommand"]["count"] == 1
