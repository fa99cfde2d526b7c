"""The pool, VM, host and job guard exactly by their tables: from any state, the
aggregate's own method refuses a trigger when `fsm`'s table has no row for it
(one line naming kind, object, state and trigger; nothing recorded), and
otherwise records the move to the row's state. The oracle is the raw table, not
the `Spec` built from it."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import fsm
from ledger.aggregate import Ctx
from ledger.errors import NOUNS, IllegalTransition
from ledger.host import ASKS, Host
from ledger.job import Job
from ledger.pool import StoragePool
from ledger.values import GiB, HostState, Hypervisor, JobStatus, PoolType, Scope
from ledger.vm import VirtualMachine

CTX = Ctx.new("test")
GIVEN = "(given)"  # the trigger of the events that put an object in its state

#: every trigger any table knows, and one none does: each kind is asked them all
ANY_TRIGGER = (*sorted({t for s in fsm.SPECS.values() for _, t, _ in s.table}), "Poke")


def pool_in(state: Enum) -> StoragePool:
    pool = StoragePool.register(
        CTX,
        name="p",
        zone_id="z",
        cluster_id="c",
        host_id=None,
        scope=Scope.CLUSTER,
        pool_type=PoolType.Simulator,
        path="/p",
        capacity=GiB,
        overprovision=None,
        tags=[],
    )
    if state is not pool.status:
        pool.trigger_event(
            StoragePool.StatusChanged,
            **CTX.fields(),
            trigger=GIVEN,
            from_status=pool.status,
            to_status=state,
        )
    return pool


def vm_in(state: Enum) -> VirtualMachine:
    vm = VirtualMachine.deploy(
        CTX,
        uuid.uuid4(),
        name="vm",
        zone_id="z",
        host_id=uuid.uuid4(),
        template_id=uuid.uuid4(),
        root_volume_id=uuid.uuid4(),
    )
    if state is not vm.state:
        vm.trigger_event(
            VirtualMachine.StateChanged,
            **CTX.fields(),
            trigger=GIVEN,
            from_state=vm.state,
            to_state=state,
        )
    return vm


def host_in(state: Enum) -> Host:
    host = Host.register(CTX, "h", "z", "c", Hypervisor.KVM)
    if state is not host.state:
        host.trigger_event(
            Host.StateChanged,
            **CTX.fields(),
            trigger=GIVEN,
            from_state=host.state,
            to_state=state,
        )
    return host


def job_in(state: Enum) -> Job:
    job = Job.submit(Ctx.new("test"), "volume.create", "volume", uuid.uuid4())
    if state is JobStatus.succeeded:
        job.trigger_event(Job.Succeeded, **CTX.fields(), result={})
    elif state is JobStatus.failed:
        job.trigger_event(Job.Failed, **CTX.fields(), error="given")
    return job


def settle(job: Job, trigger: str) -> None:
    if trigger == "Succeeded":
        job.succeed(CTX, {"given": True})
    else:
        job.fail(CTX, "given")


@dataclass(frozen=True)
class Kind:
    """One aggregate kind as these tests drive it."""

    name: str
    table: fsm.Table
    states: type[Enum]
    make: Callable[[Enum], Any]  # an aggregate in that state
    ask: Callable[[Any, str], None]  # its public method for a trigger
    triggers: tuple[str, ...]  # what it can be asked

    def state_of(self, aggregate: Any) -> Enum:
        value: Enum = getattr(aggregate, "state", None) or aggregate.status
        return value

    def __str__(self) -> str:
        return self.name


KINDS = [
    Kind(
        "StoragePool",
        fsm.POOL_TABLE,
        fsm.POOL.states,
        pool_in,
        lambda pool, t: pool.change_status(CTX, t),
        ANY_TRIGGER,
    ),
    Kind(
        "VirtualMachine",
        fsm.VM_TABLE,
        fsm.VM.states,
        vm_in,
        lambda vm, t: vm.change_state(CTX, t),
        ANY_TRIGGER,
    ),
    Kind(
        "Host",
        fsm.HOST_TABLE,
        fsm.HOST.states,
        host_in,
        lambda host, t: host.change_state(CTX, t),
        ANY_TRIGGER,
    ),
    # a job is asked only through succeed() and fail()
    Kind("Job", fsm.JOB_TABLE, fsm.JOB.states, job_in, settle, ("Succeeded", "Failed")),
]


def _moved(event: Any, end: str) -> Enum:
    value: Enum = getattr(event, f"{end}_state", None) or getattr(
        event, f"{end}_status"
    )
    return value


def check_step(kind: Kind, aggregate: Any, trigger: str) -> None:
    """Ask `trigger` once and hold the answer to the table's row."""
    aggregate.collect_events()
    before = kind.state_of(aggregate)
    rows = {(source, t): dest for source, t, dest in kind.table}
    dest = rows.get((before.name, trigger))
    if dest is None:
        with pytest.raises(IllegalTransition) as err:
            kind.ask(aggregate, trigger)
        # the object by its name (else its short id), under the operator's noun
        who = getattr(aggregate, "name", None) or str(aggregate.id)[:8]
        assert str(err.value) == (
            f"{NOUNS.get(kind.name, kind.name)} {who} is {before.name}:"
            f" {trigger} is not allowed"
        )
        assert aggregate.collect_events() == []
        assert kind.state_of(aggregate) is before
        return
    kind.ask(aggregate, trigger)
    assert kind.state_of(aggregate) is kind.states[dest]
    (event,) = aggregate.collect_events()
    assert event.trigger == trigger
    assert _moved(event, "to") is kind.states[dest]
    if kind.name != "Job":  # a settlement records no from-state
        assert _moved(event, "from") is before


@pytest.mark.parametrize("kind", KINDS, ids=str)
def test_every_state_and_trigger_is_guarded_by_the_table(kind: Kind) -> None:
    for state in kind.states:
        for trigger in kind.triggers:
            check_step(kind, kind.make(state), trigger)


@pytest.mark.parametrize("kind", KINDS, ids=str)
@given(data=st.data())
def test_a_walk_moves_only_as_the_table_says(kind: Kind, data: st.DataObject) -> None:
    """From any state, a random walk of moves; at every state it reaches, every
    trigger is asked of a copy, and the walk goes on by one of them (refused or
    not)."""
    aggregate = kind.make(data.draw(st.sampled_from(list(kind.states))))
    for trigger in data.draw(st.lists(st.sampled_from(kind.triggers), max_size=8)):
        for each in kind.triggers:
            check_step(kind, copy.deepcopy(aggregate), each)
        check_step(kind, aggregate, trigger)


@pytest.mark.parametrize("to_state", list(HostState))
@pytest.mark.parametrize("state", list(HostState))
def test_host_set_state_refuses_only_the_state_it_is_in(state, to_state) -> None:
    """`host enable|disable` ask a state: refused only when the host is in it,
    naming the trigger that leads there."""
    host = host_in(state)
    host.collect_events()
    if to_state is state:
        with pytest.raises(IllegalTransition) as err:
            host.set_state(CTX, to_state)
        assert err.value.trigger == ASKS[to_state]
        assert host.collect_events() == []
        return
    host.set_state(CTX, to_state)
    (event,) = host.collect_events()
    assert (event.trigger, event.from_state, event.to_state) == (
        ASKS[to_state],
        state,
        to_state,
    )
