"""The state machines hold exactly CloudStack's tables, and guard every trigger."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ledger import fsm
from ledger.errors import IllegalTransition
from ledger.host import Host
from ledger.job import Job
from ledger.pool import StoragePool
from ledger.values import (
    HostState,
    JobStatus,
    PoolStatus,
    SnapshotState,
    VmState,
    VolumeState,
)
from ledger.vm import VirtualMachine

HERE = Path(__file__).resolve().parent
VENDORED = HERE.parent / "data" / "cloudstack_fsm.json"
SHARED = HERE.parents[2] / "shared" / "reference" / "cloudstack_fsm.json"

KINDS = {
    "Volume": fsm.VOLUME,
    "Snapshot": fsm.SNAPSHOT,
    "ObjectInDataStore": fsm.OBJECT_IN_STORE,
    "Template": fsm.TEMPLATE,
}


def reference() -> dict:
    return json.loads(VENDORED.read_text())


def test_vendored_reference_is_the_shared_one():
    if not SHARED.exists():
        pytest.skip("shared/ is not beside this checkout")
    assert json.loads(SHARED.read_text()) == reference()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_machine_holds_every_transition_of_the_reference(kind):
    spec = KINDS[kind]
    expected = {tuple(t) for t in reference()[kind]["transitions"]}
    machine_rows = {
        (source, trigger, t.dest)
        for trigger, event in spec.machine.events.items()
        for source, ts in event.transitions.items()
        for t in ts
    }
    assert machine_rows == expected
    assert {(s, t, d) for (s, t), d in spec.lookup.items()} == expected


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_machine_states_are_the_reference_states(kind):
    spec = KINDS[kind]
    assert [s.name for s in spec.states] == reference()[kind]["states"]
    assert set(spec.machine.states) == set(reference()[kind]["states"])


def test_illegal_trigger_names_object_state_and_trigger():
    with pytest.raises(IllegalTransition) as err:
        fsm.VOLUME.next_state("vol-1", VolumeState.Expunged, "AttachRequested")
    assert err.value.kind == "Volume"
    assert err.value.id == "vol-1"
    assert err.value.state == "Expunged"
    assert err.value.trigger == "AttachRequested"
    assert "Expunged" in str(err.value)
    assert "AttachRequested" in str(err.value)


def test_failed_create_returns_volume_to_allocated():
    assert fsm.VOLUME.next_state("v", VolumeState.Creating, "OperationFailed") is (
        VolumeState.Allocated
    )


def test_snapshot_backup_path():
    s = SnapshotState.Allocated
    for trigger in (
        "CreateRequested",
        "OperationSucceeded",
        "BackupToSecondary",
        "OperationSucceeded",
    ):
        s = fsm.SNAPSHOT.next_state("s", s, trigger)
    assert s is SnapshotState.BackedUp


def test_no_machine_invents_an_initial_state():
    for spec in KINDS.values():
        assert "initial" not in spec.machine.states


# ------------------------------------------------ storctl's own tables

#: the moves storctl allowed before its four aggregates asked a table, written out
#: as the hand-written guards had them: the tables must allow exactly these
MOVES_BEFORE_TABLES = {
    "StoragePool": {
        ("Up", "Disable", "Disabled"),
        ("Disabled", "Enable", "Up"),
        *(
            (source, "PrepareForMaintenance", "PrepareForMaintenance")
            for source in ("Up", "Disabled", "ErrorInMaintenance")
        ),
        ("PrepareForMaintenance", "MaintenanceReached", "Maintenance"),
        ("PrepareForMaintenance", "MaintenanceFailed", "ErrorInMaintenance"),
        *(
            (source, "CancelMaintenance", "Up")
            for source in ("Maintenance", "PrepareForMaintenance", "ErrorInMaintenance")
        ),
        ("Maintenance", "Remove", "Removed"),
    },
    "VirtualMachine": {
        ("Stopped", "StartRequested", "Running"),
        ("Running", "StopRequested", "Stopped"),
        ("Stopped", "DestroyRequested", "Destroyed"),
        ("Running", "DestroyRequested", "Destroyed"),
        ("Destroyed", "ExpungeRequested", "Expunging"),
    },
    "Job": {("pending", "Succeeded", "succeeded"), ("pending", "Failed", "failed")},
}

OWN = {
    "StoragePool": fsm.POOL,
    "VirtualMachine": fsm.VM,
    "Host": fsm.HOST,
    "Job": fsm.JOB,
}


def rows_of(spec: fsm.Spec) -> set[tuple[str, str, str]]:
    return {
        (source, trigger, t.dest)
        for trigger, event in spec.machine.events.items()
        for source, ts in event.transitions.items()
        for t in ts
    }


@pytest.mark.parametrize("kind", sorted(MOVES_BEFORE_TABLES))
def test_table_allows_exactly_the_moves_allowed_before(kind):
    assert set(OWN[kind].table) == MOVES_BEFORE_TABLES[kind]


def test_host_table_moves_any_state_to_any_other_with_one_trigger_per_state():
    moves = {(source, dest) for source, _, dest in fsm.HOST_TABLE}
    names = [s.name for s in HostState]
    assert moves == {(a, b) for a in names for b in names if a != b}
    leads_to: dict[str, set[str]] = {}
    for _, trigger, dest in fsm.HOST_TABLE:
        leads_to.setdefault(trigger, set()).add(dest)
    assert leads_to == {"Enable": {"Up"}, "Disable": {"Disabled"}, "HostDown": {"Down"}}


@pytest.mark.parametrize("kind", sorted(OWN))
def test_own_machine_holds_its_table_and_its_enum_states(kind):
    spec = OWN[kind]
    assert spec.kind == kind
    assert rows_of(spec) == set(spec.table)
    assert len(spec.table) == len(set(spec.table))
    assert {(s, t, d) for (s, t), d in spec.lookup.items()} == set(spec.table)
    assert list(spec.machine.states) == [s.name for s in spec.states]
    assert spec.transitional <= set(spec.machine.states)


def test_specs_hold_every_kind_and_every_aggregate_guards_through_its_own():
    assert set(fsm.SPECS) == {
        "volume", "snapshot", "objectinstore", "template",
        "pool", "vm", "host", "job",
    }  # fmt: skip
    for aggregate, key in (
        (StoragePool, "pool"),
        (VirtualMachine, "vm"),
        (Host, "host"),
        (Job, "job"),
    ):
        assert aggregate.SPEC is fsm.SPECS[key]
    for spec in fsm.SPECS.values():
        assert "initial" not in spec.machine.states


@pytest.mark.parametrize(
    ("spec", "state", "trigger", "says"),
    [
        (
            fsm.POOL,
            PoolStatus.Up,
            "Remove",
            "pool p is Up: Remove is not allowed",
        ),
        (
            fsm.VM,
            VmState.Running,
            "StartRequested",
            "VM p is Running: StartRequested is not allowed",
        ),
        (fsm.HOST, HostState.Up, "Enable", "host p is Up: Enable is not allowed"),
        (
            fsm.JOB,
            JobStatus.failed,
            "Succeeded",
            "job p is failed: Succeeded is not allowed",
        ),
    ],
)
def test_own_refusal_names_kind_object_state_and_trigger(spec, state, trigger, says):
    with pytest.raises(IllegalTransition) as err:
        spec.next_state("p", state, trigger)
    assert str(err.value) == says


def test_job_settlements_make_the_move_their_table_row_names():
    for event in (Job.Succeeded, Job.Failed):
        assert fsm.JOB.next_state("j", JobStatus.pending, event.trigger) is (
            event.to_state
        )
