"""The state machines hold exactly CloudStack's tables, and guard every trigger."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ledger import fsm
from ledger.errors import IllegalTransition
from ledger.values import SnapshotState, VolumeState

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
