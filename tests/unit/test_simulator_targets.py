"""A simulator fault aimed at one object: only the commands on it meet the fault,
whichever command the host gets first (issue 19's flaky hang test)."""

from __future__ import annotations

import json

import pytest

from ledger.aggregate import Ctx
from ledger.app import Ledger
from ledger.commands import (
    AttachCommand,
    CreateObjectCommand,
    DiskTO,
    DownloadCommand,
    ImageStoreTO,
    SnapshotObjectTO,
    VolumeObjectTO,
    targets,
)
from ledger.errors import InvalidInput
from ledger.simulator_plan import SimulatorPlan, plan_id
from ledger.usecases import infrastructure, simulator
from ledger.values import Hypervisor


def volume(uuid: str, name: str) -> VolumeObjectTO:
    return VolumeObjectTO(uuid=uuid, name=name, volumeType="DATADISK", size=1,
                          dataStore=None)  # fmt: skip


def test_a_commands_targets_are_the_names_and_ids_of_its_objects():
    create = CreateObjectCommand(commandId="c", data=volume("id-a", "a"))
    assert targets(create) == {"id-a", "a"}
    attach = AttachCommand(
        commandId="c",
        disk=DiskTO(data=volume("id-b", "b"), diskSeq=1, path=None, type="DATADISK"),
        vmName="vm1",
    )
    assert targets(attach) == {"id-b", "b"}
    snap = SnapshotObjectTO(uuid="id-s", name="s", volume=volume("id-a", "a"),
                            dataStore=None)  # fmt: skip
    assert targets(CreateObjectCommand(commandId="c", data=snap)) == {
        "id-s", "s", "id-a", "a",
    }  # fmt: skip
    store = ImageStoreTO(uuid="u", name="s1", uri="nfs://x")
    download = DownloadCommand(
        commandId="c", url="http://x/t", format="QCOW2", name="t1",
        resourceType="TEMPLATE", installPath="template/t1", store=store,
    )  # fmt: skip
    assert targets(download) == {"t1"}


def _host(ledger: Ledger):
    return infrastructure.register_host(
        ledger, Ctx.new("t"), "sim1", "z1", "c1", Hypervisor.Simulator
    )


def test_a_targeted_fault_is_met_only_by_its_object(ledger: Ledger):
    host = _host(ledger)
    simulator.configure_simulator(
        ledger, Ctx.new("t"), "sim1", "CreateObjectCommand", "hang",
        count=1, target="a",
    )  # fmt: skip
    kind = "CreateObjectCommand"
    # the other volume's command, however early, meets nothing
    assert simulator.use_fault(ledger, host.id, kind, "c-1", {"b", "id-b"}) is None
    assert simulator.use_fault(ledger, host.id, kind, "c-2") is None
    hit = simulator.use_fault(ledger, host.id, kind, "c-3", {"a", "id-a"})
    assert hit is not None
    assert (hit["mode"], hit["target"]) == ("hang", "a")
    # used up: count 1
    assert simulator.use_fault(ledger, host.id, kind, "c-4", {"a", "id-a"}) is None


def test_a_targeted_fault_goes_first_and_an_untargeted_one_stays(ledger: Ledger):
    host = _host(ledger)
    ctx = Ctx.new("t")
    kind = "DeleteCommand"
    simulator.configure_simulator(ledger, ctx, "sim1", kind, "fail",
                                  details="any", count=2)  # fmt: skip
    simulator.configure_simulator(ledger, ctx, "sim1", kind, "hang",
                                  count=1, target="a")  # fmt: skip
    first = simulator.use_fault(ledger, host.id, kind, "c-1", {"a"})
    assert first is not None
    assert first["mode"] == "hang"
    second = simulator.use_fault(ledger, host.id, kind, "c-2", {"a"})
    assert second is not None
    assert second["details"] == "any"
    plan = ledger.load(SimulatorPlan, plan_id(host.id))
    assert plan.faults == {
        kind: {"mode": "fail", "details": "any", "delay": 0.0, "count": 1,
               "target": None},
    }  # fmt: skip


def test_an_empty_target_is_refused(ledger: Ledger):
    _host(ledger)
    with pytest.raises(InvalidInput, match="target"):
        simulator.configure_simulator(
            ledger, Ctx.new("t"), "sim1", "CopyCommand", "fail", target=" "
        )


def test_a_fault_recorded_before_targeting_reads_as_untargeted(ledger: Ledger):
    """Stored `FaultConfigured` events have no `target`: still any command's."""
    host = _host(ledger)
    simulator.configure_simulator(ledger, Ctx.new("t"), "sim1", "CopyCommand", "fail")
    pid = plan_id(host.id)
    stored = ledger.recorder.select_events(pid)
    configured = next(e for e in stored if e.topic.endswith("FaultConfigured"))
    state = json.loads(configured.state)
    assert state.pop("target") is None
    older = type(configured)(
        originator_id=configured.originator_id,
        originator_version=configured.originator_version,
        topic=configured.topic,
        state=json.dumps(state).encode(),
    )
    event = ledger.mapper.to_domain_event(older)
    plan = SimulatorPlan.__new__(SimulatorPlan)
    plan.faults = {}
    event.apply(plan)
    assert plan.faults["CopyCommand"]["target"] is None
