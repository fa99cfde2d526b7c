"""The Volume aggregate, given its events, when a command, then the new events.

eventsourcing's `shopvertical` shape: each test builds a volume from its creation
through the real commands and answers, rebuilds it from those events (`given`), calls
one command method, and asserts on the events `collect_events()` hands back (their
classes and fields) and on the state they left. A refusal leaves no event and no
change. No store, no mocks: the commands are `ledger.commands`' own, built the way
`ledger.requests` builds them for the use cases.
"""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

import pytest

from ledger import requests, transfer
from ledger.aggregate import Ctx, StaleAnswer, StorctlAggregate
from ledger.commands import (
    Answer,
    AttachAnswer,
    CopyCmdAnswer,
    CopyCommand,
    CreateObjectAnswer,
    DettachAnswer,
    DettachCommand,
    ResizeVolumeAnswer,
    RevertSnapshotCommand,
    SnapshotObjectTO,
)
from ledger.errors import IllegalTransition
from ledger.pool import StoragePool
from ledger.values import GiB, PoolType, Scope, VolumeState, VolumeType
from ledger.vm import VirtualMachine
from ledger.volume import Volume

CTX = Ctx(actor="alice", job_id="job-1", causation_id="req-1")
WAIT = 60
SIZE = 5 * GiB

A = TypeVar("A", bound=StorctlAggregate)


# ----------------------------------------------------------------- given


def given(aggregate: A) -> A:
    """The aggregate rebuilt from the events that made it, none of them pending:
    what the test starts from is what those events' `apply` assign."""
    events = aggregate.collect_events()
    assert events, "given an aggregate with no events"
    assert isinstance(events[0], StorctlAggregate.Created), (
        "given() rebuilds from the whole history, creation first: call it once"
    )
    rebuilt: Any = None
    for event in events:
        rebuilt = event.mutate(rebuilt)
    return rebuilt


def new_pool(name: str = "primary") -> StoragePool:
    return given(
        StoragePool.register(
            CTX,
            name=name,
            zone_id="z1",
            cluster_id="c1",
            host_id=None,
            scope=Scope.CLUSTER,
            pool_type=PoolType.NetworkFilesystem,
            path=f"/export/{name}",
            capacity=100 * GiB,
            overprovision=None,
            tags=[],
        )
    )


def new_vm(name: str = "web1") -> VirtualMachine:
    return given(
        VirtualMachine.deploy(
            CTX,
            id=uuid.uuid4(),
            name=name,
            zone_id="z1",
            host_id=uuid.uuid4(),
            template_id=uuid.uuid4(),
            root_volume_id=uuid.uuid4(),
        )
    )


def allocated(
    volume_type: VolumeType = VolumeType.DATADISK, vm_id: uuid.UUID | None = None
) -> Volume:
    """A volume just allocated (no pool yet), with its events pending."""
    return Volume.allocate(
        CTX,
        name="data1" if volume_type is VolumeType.DATADISK else "ROOT-web1",
        volume_type=volume_type,
        size=SIZE,
        zone_id="z1",
        vm_id=vm_id,
        device_id=0 if vm_id is not None else None,
    )


def placed(pool: StoragePool, **kwargs: Any) -> Volume:
    volume = allocated(**kwargs)
    volume.change_pool(CTX, pool.id)
    return volume


def creating(pool: StoragePool, **kwargs: Any) -> Volume:
    volume = placed(pool, **kwargs)
    requests.create_volume(CTX, WAIT, volume, pool)
    return volume


def created_answer(
    volume: Volume, pool: StoragePool, *, path: str, size: int
) -> CreateObjectAnswer:
    assert volume.pending is not None
    return CreateObjectAnswer(
        commandId=volume.pending["commandId"],
        result=True,
        data=transfer.volume_to(volume, pool).replace(path=path, size=size),
    )


def ready(pool: StoragePool, **kwargs: Any) -> Volume:
    volume = creating(pool, **kwargs)
    volume.fold_answer(
        CTX, created_answer(volume, pool, path=f"{volume.id}.qcow2", size=SIZE)
    )
    return volume


def attached(pool: StoragePool, vm: VirtualMachine) -> Volume:
    volume = ready(pool)
    requests.attach_volume(CTX, WAIT, volume, pool, vm)
    volume.fold_answer(CTX, answer_to(volume, AttachAnswer))
    return volume


def answer_to(volume: Volume, cls: type[Any], *, result: bool = True, **fields: Any):
    """An answer of class `cls` to the volume's pending command."""
    assert volume.pending is not None, "no command is pending"
    return cls(commandId=volume.pending["commandId"], result=result, **fields)


def kinds(events: Any) -> list[type]:
    return [type(e) for e in events]


def assert_refused_without_events(volume: Volume, version: int, state: VolumeState):
    assert volume.collect_events() == []
    assert volume.version == version
    assert volume.state is state


# ----------------------------------------------------------------- placement


class TestPlacement:
    def test_placing_an_allocated_volume_records_pool_changed_from_no_pool(self):
        pool = new_pool()
        volume = given(allocated())

        volume.change_pool(CTX, pool.id)

        (event,) = volume.collect_events()
        assert type(event) is Volume.PoolChanged
        assert (event.from_pool_id, event.pool_id) == (None, pool.id)
        assert (event.actor, event.job_id, event.causation_id) == (
            "alice",
            "job-1",
            "req-1",
        )
        assert volume.pool_id == pool.id
        assert volume.last_pool_id is None

    def test_ready_volume_changes_pool_only_through_a_migration(self):
        pool, other = new_pool(), new_pool("other")
        volume = given(ready(pool))
        version = volume.version

        with pytest.raises(IllegalTransition, match="only an Allocated or Migrating"):
            volume.change_pool(CTX, other.id)

        assert_refused_without_events(volume, version, VolumeState.Ready)
        assert volume.pool_id == pool.id


# ----------------------------------------------------------------- create


class TestCreate:
    def test_create_request_without_a_pool_is_refused_and_records_nothing(self):
        pool = new_pool()
        volume = given(allocated())
        version = volume.version

        with pytest.raises(IllegalTransition, match="no pool chosen") as refused:
            requests.create_volume(CTX, WAIT, volume, pool)

        assert refused.value.trigger == "CreateRequested"
        assert_refused_without_events(volume, version, VolumeState.Allocated)
        assert volume.pending is None

    def test_create_request_moves_allocated_to_creating_and_records_the_command(
        self,
    ):
        pool = new_pool()
        volume = given(placed(pool))

        requests.create_volume(CTX, WAIT, volume, pool)

        (event,) = volume.collect_events()
        assert type(event) is Volume.CreateRequested
        assert event.trigger == "CreateRequested"
        assert (event.from_state, event.to_state) == (
            VolumeState.Allocated,
            VolumeState.Creating,
        )
        assert event.command["kind"] == "CreateObjectCommand"
        assert event.command["commandId"] == transfer.command_id(
            "req-1", volume.id, "create"
        )
        assert event.command["data"]["dataStore"]["uuid"] == str(pool.id)
        assert event.command["wait"] == WAIT
        assert volume.state is VolumeState.Creating
        assert volume.pending == event.command
        assert volume.pending_trigger == "CreateRequested"
        assert volume.last_command == event.command

    def test_successful_create_records_path_and_size_and_makes_volume_ready(self):
        pool = new_pool()
        volume = given(creating(pool))
        command_id = volume.pending["commandId"]
        answer = created_answer(volume, pool, path="vols/data1.qcow2", size=SIZE + 1)

        volume.fold_answer(CTX, answer)

        (event,) = volume.collect_events()
        assert type(event) is Volume.CreateAnswered
        assert event.trigger == "OperationSucceeded"
        assert (event.from_state, event.to_state) == (
            VolumeState.Creating,
            VolumeState.Ready,
        )
        assert (event.path, event.size) == ("vols/data1.qcow2", SIZE + 1)
        assert event.answer["commandId"] == command_id
        assert event.answer["result"] is True
        assert volume.state is VolumeState.Ready
        assert (volume.path, volume.size) == ("vols/data1.qcow2", SIZE + 1)
        assert volume.pending is None
        assert volume.last_answer == answer.to_dict()

    def test_failed_create_returns_volume_to_allocated(self):
        pool = new_pool()
        volume = given(creating(pool))

        volume.fold_answer(
            CTX, answer_to(volume, CreateObjectAnswer, result=False, details="no space")
        )

        (event,) = volume.collect_events()
        assert type(event) is Volume.CreateAnswered
        assert event.trigger == "OperationFailed"
        assert (event.from_state, event.to_state) == (
            VolumeState.Creating,
            VolumeState.Allocated,
        )
        assert (event.path, event.size) == (None, None)
        assert event.answer["details"] == "no space"
        assert volume.state is VolumeState.Allocated
        assert volume.pending is None
        assert volume.path is None
        assert volume.size == SIZE
        assert volume.pool_id == pool.id  # giving the place back is the workflow's

    def test_answer_to_another_command_is_stale_and_records_nothing(self):
        pool = new_pool()
        volume = given(creating(pool))
        pending, version = volume.pending, volume.version

        with pytest.raises(StaleAnswer, match="is not pending"):
            volume.fold_answer(
                CTX,
                CreateObjectAnswer(commandId="some-other-command", result=True),
            )

        assert_refused_without_events(volume, version, VolumeState.Creating)
        assert volume.pending == pending

    def test_answer_folded_twice_is_stale_the_second_time(self):
        pool = new_pool()
        volume = creating(pool)
        answer = created_answer(volume, pool, path="vols/data1.qcow2", size=SIZE)
        volume.fold_answer(CTX, answer)
        volume = given(volume)
        version = volume.version

        with pytest.raises(StaleAnswer):
            volume.fold_answer(CTX, answer)

        assert_refused_without_events(volume, version, VolumeState.Ready)

    def test_second_request_while_a_command_is_pending_is_refused(self):
        pool = new_pool()
        volume = given(creating(pool))
        version = volume.version

        # the table allows Creating -> CreateRequested; one command at a time does not
        with pytest.raises(IllegalTransition, match=r"CreateObjectCommand .* pending"):
            requests.create_volume(CTX.caused_by("req-2"), WAIT, volume, pool)

        assert_refused_without_events(volume, version, VolumeState.Creating)

    def test_copy_from_a_template_records_copy_answered_with_the_new_file(self):
        pool = new_pool()
        volume = given(placed(pool))
        dest = transfer.volume_to(volume, pool)
        command = CopyCommand(
            commandId="clone-1",
            srcTO=dest.replace(uuid=str(uuid.uuid4()), path="template/base.qcow2"),
            destTO=dest,
        )
        volume.request_copy(CTX, command, "CreateRequested")
        assert kinds(volume.collect_events()) == [Volume.CopyRequested]
        assert volume.state is VolumeState.Creating

        volume.fold_answer(
            CTX,
            answer_to(volume, CopyCmdAnswer, newData=dest.replace(path="clone.qcow2")),
        )

        (event,) = volume.collect_events()
        assert type(event) is Volume.CopyAnswered
        assert (event.path, event.size) == ("clone.qcow2", SIZE)
        assert volume.state is VolumeState.Ready
        assert volume.path == "clone.qcow2"


# ----------------------------------------------------------------- attach, detach


class TestAttach:
    def test_attach_answer_records_the_vm_and_its_device(self):
        pool, vm = new_pool(), new_vm()
        volume = given(ready(pool))
        requests.attach_volume(CTX, WAIT, volume, pool, vm)
        (requested,) = volume.collect_events()
        assert type(requested) is Volume.AttachRequested
        assert volume.state is VolumeState.Attaching
        assert requested.command["vmId"] == str(vm.id)

        volume.fold_answer(CTX, answer_to(volume, AttachAnswer))

        (event,) = volume.collect_events()
        assert type(event) is Volume.AttachAnswered
        assert (event.vm_id, event.device_id) == (vm.id, 1)
        assert (event.from_state, event.to_state) == (
            VolumeState.Attaching,
            VolumeState.Ready,
        )
        assert (volume.vm_id, volume.device_id) == (vm.id, 1)

    def test_failed_attach_leaves_the_volume_unattached(self):
        pool, vm = new_pool(), new_vm()
        volume = ready(pool)
        requests.attach_volume(CTX, WAIT, volume, pool, vm)
        volume = given(volume)

        volume.fold_answer(CTX, answer_to(volume, AttachAnswer, result=False))

        (event,) = volume.collect_events()
        assert type(event) is Volume.AttachAnswered
        assert event.trigger == "OperationFailed"
        assert volume.state is VolumeState.Ready
        assert (volume.vm_id, volume.device_id) == (None, None)

    def test_attached_data_disk_cannot_be_attached_again(self):
        pool, vm = new_pool(), new_vm()
        volume = given(attached(pool, vm))
        version = volume.version

        with pytest.raises(IllegalTransition, match=f"already attached to {vm.id}"):
            requests.attach_volume(CTX, WAIT, volume, pool, new_vm("web2"))

        assert_refused_without_events(volume, version, VolumeState.Ready)
        assert volume.vm_id == vm.id


class TestDetach:
    def test_detach_request_records_the_command_and_moves_no_state(self):
        pool, vm = new_pool(), new_vm()
        volume = given(attached(pool, vm))

        requests.detach_volume(CTX, WAIT, volume, pool, vm)

        (event,) = volume.collect_events()
        assert type(event) is Volume.DetachRequested
        assert event.command["kind"] == "DettachCommand"
        assert (event.from_state, event.to_state) == (
            VolumeState.Ready,
            VolumeState.Ready,
        )
        assert volume.state is VolumeState.Ready
        assert volume.pending == event.command

    def test_detach_answer_moves_no_state_and_frees_the_volume(self):
        pool, vm = new_pool(), new_vm()
        volume = attached(pool, vm)
        requests.detach_volume(CTX, WAIT, volume, pool, vm)
        volume = given(volume)

        volume.fold_answer(CTX, answer_to(volume, DettachAnswer))

        (event,) = volume.collect_events()
        assert type(event) is Volume.DetachAnswered
        assert event.trigger == "OperationSucceeded"
        assert (event.from_state, event.to_state) == (
            VolumeState.Ready,
            VolumeState.Ready,
        )
        assert volume.state is VolumeState.Ready
        assert (volume.vm_id, volume.device_id) == (None, None)
        assert volume.pending is None

    def test_failed_detach_keeps_the_volume_on_its_vm(self):
        pool, vm = new_pool(), new_vm()
        volume = attached(pool, vm)
        requests.detach_volume(CTX, WAIT, volume, pool, vm)
        volume = given(volume)

        volume.fold_answer(CTX, answer_to(volume, DettachAnswer, result=False))

        (event,) = volume.collect_events()
        assert type(event) is Volume.DetachAnswered
        assert event.to_state is VolumeState.Ready
        assert (volume.vm_id, volume.device_id) == (vm.id, 1)

    def test_volume_attached_to_no_vm_cannot_be_detached(self):
        pool, vm = new_pool(), new_vm()
        volume = given(ready(pool))
        version = volume.version

        with pytest.raises(IllegalTransition, match="attached to a VM can be detached"):
            volume.request_detach(
                CTX,
                DettachCommand(
                    commandId="detach-1",
                    disk=transfer.disk_to(volume, pool, 1, vm.name),
                    vmName=vm.name,
                ),
            )

        assert_refused_without_events(volume, version, VolumeState.Ready)

    def test_root_volume_cannot_be_detached_from_its_vm(self):
        pool, vm = new_pool(), new_vm()
        volume = given(ready(pool, volume_type=VolumeType.ROOT, vm_id=vm.id))
        version = volume.version

        with pytest.raises(IllegalTransition, match="ROOT volume stays with its VM"):
            requests.detach_volume(CTX, WAIT, volume, pool, vm)

        assert_refused_without_events(volume, version, VolumeState.Ready)
        assert volume.vm_id == vm.id


# ----------------------------------------------------------------- data changes


class TestSnapshot:
    def test_snapshot_request_moves_ready_to_snapshotting_with_no_command(self):
        volume = given(ready(new_pool()))
        snapshot_id = uuid.uuid4()

        volume.request_snapshot(CTX, snapshot_id)

        (event,) = volume.collect_events()
        assert type(event) is Volume.SnapshotRequested
        assert event.snapshot_id == snapshot_id
        assert event.command is None
        assert volume.state is VolumeState.Snapshotting
        assert (volume.pending, volume.pending_trigger) == (None, None)

    def test_finished_snapshot_becomes_the_head_of_the_chain(self):
        volume = ready(new_pool())
        snapshot_id = uuid.uuid4()
        volume.request_snapshot(CTX, snapshot_id)
        volume = given(volume)

        volume.finish_snapshot(CTX, snapshot_id, ok=True)

        (event,) = volume.collect_events()
        assert type(event) is Volume.SnapshotCompleted
        assert event.answer["result"] is True
        assert volume.state is VolumeState.Ready
        assert volume.snapshot_head == snapshot_id

    def test_failed_snapshot_leaves_the_head_where_it_was(self):
        volume = ready(new_pool())
        volume.request_snapshot(CTX, uuid.uuid4())
        volume = given(volume)

        volume.finish_snapshot(CTX, uuid.uuid4(), ok=False, details="backup failed")

        (event,) = volume.collect_events()
        assert type(event) is Volume.SnapshotCompleted
        assert event.trigger == "OperationFailed"
        assert volume.state is VolumeState.Ready
        assert volume.snapshot_head is None

    def test_revert_answer_returns_volume_to_ready(self):
        pool = new_pool()
        volume = given(ready(pool))
        snapshot_id = uuid.uuid4()
        command = RevertSnapshotCommand(
            commandId="revert-1",
            data=SnapshotObjectTO(
                uuid=str(snapshot_id),
                name="s1",
                volume=transfer.volume_to(volume, pool),
                dataStore=transfer.primary_to(pool),
            ),
        )
        volume.request_revert(CTX, command, snapshot_id)
        (requested,) = volume.collect_events()
        assert type(requested) is Volume.RevertRequested
        assert requested.snapshot_id == snapshot_id
        assert volume.state is VolumeState.RevertSnapshotting

        volume.fold_answer(CTX, answer_to(volume, Answer))

        (event,) = volume.collect_events()
        assert type(event) is Volume.RevertAnswered
        assert volume.state is VolumeState.Ready


class TestResize:
    def test_resize_answer_records_the_size_asked_for(self):
        pool = new_pool()
        volume = given(ready(pool))
        requests.resize_volume(CTX, WAIT, volume, pool, 8 * GiB)
        (requested,) = volume.collect_events()
        assert type(requested) is Volume.ResizeRequested
        assert requested.new_size == 8 * GiB
        assert volume.state is VolumeState.Resizing

        volume.fold_answer(CTX, answer_to(volume, ResizeVolumeAnswer, newSize=8 * GiB))

        (event,) = volume.collect_events()
        assert type(event) is Volume.ResizeAnswered
        assert event.size == 8 * GiB
        assert volume.state is VolumeState.Ready
        assert volume.size == 8 * GiB

    def test_failed_resize_keeps_the_old_size(self):
        pool = new_pool()
        volume = ready(pool)
        requests.resize_volume(CTX, WAIT, volume, pool, 8 * GiB)
        volume = given(volume)

        volume.fold_answer(CTX, answer_to(volume, ResizeVolumeAnswer, result=False))

        (event,) = volume.collect_events()
        assert type(event) is Volume.ResizeAnswered
        assert event.size is None
        assert volume.state is VolumeState.Ready
        assert volume.size == SIZE


# ----------------------------------------------------------------- migration


def migrating(source: StoragePool, target: StoragePool) -> Volume:
    volume = ready(source)
    requests.migrate_volume(CTX, WAIT, volume, source, target)
    return volume


class TestMigration:
    def test_migration_request_moves_ready_to_migrating_with_the_copy(self):
        source, target = new_pool(), new_pool("target")
        volume = given(ready(source))

        requests.migrate_volume(CTX, WAIT, volume, source, target)

        (event,) = volume.collect_events()
        assert type(event) is Volume.CopyRequested
        assert event.trigger == "MigrationRequested"
        assert event.command["destTO"]["dataStore"]["uuid"] == str(target.id)
        assert volume.state is VolumeState.Migrating
        assert volume.pending_trigger == "MigrationRequested"
        assert volume.pool_id == source.id  # until the copy succeeds

    def test_successful_migration_copy_moves_the_volume_to_the_copys_pool(self):
        source, target = new_pool(), new_pool("target")
        volume = given(migrating(source, target))
        new_file = transfer.volume_to(volume, target).replace(path="moved.qcow2")

        volume.fold_answer(CTX, answer_to(volume, CopyCmdAnswer, newData=new_file))

        changed, answered = events = volume.collect_events()
        assert kinds(events) == [Volume.PoolChanged, Volume.CopyAnswered]
        assert (changed.from_pool_id, changed.pool_id) == (source.id, target.id)
        assert answered.path == "moved.qcow2"
        assert answered.to_state is VolumeState.Ready
        assert volume.state is VolumeState.Ready
        assert (volume.pool_id, volume.last_pool_id) == (target.id, source.id)
        assert volume.path == "moved.qcow2"

    def test_failed_migration_copy_keeps_the_volume_on_its_pool(self):
        source, target = new_pool(), new_pool("target")
        volume = given(migrating(source, target))
        path = volume.path

        volume.fold_answer(CTX, answer_to(volume, CopyCmdAnswer, result=False))

        (event,) = volume.collect_events()
        assert type(event) is Volume.CopyAnswered
        assert event.trigger == "OperationFailed"
        assert volume.state is VolumeState.Ready
        assert (volume.pool_id, volume.path) == (source.id, path)

    def test_stale_successful_migration_answer_records_nothing(self):
        source, target = new_pool(), new_pool("target")
        volume = given(migrating(source, target))
        version = volume.version

        with pytest.raises(StaleAnswer):
            volume.fold_answer(
                CTX, CopyCmdAnswer(commandId="some-other-command", result=True)
            )

        assert volume.pool_id == source.id
        assert_refused_without_events(volume, version, VolumeState.Migrating)

    def test_successful_migration_answer_folded_twice_is_stale_the_second_time(self):
        source, target = new_pool(), new_pool("target")
        volume = migrating(source, target)
        answer = answer_to(
            volume, CopyCmdAnswer, newData=transfer.volume_to(volume, target)
        )
        volume.fold_answer(CTX, answer)
        volume = given(volume)
        version = volume.version

        with pytest.raises(StaleAnswer):
            volume.fold_answer(CTX, answer)

        assert_refused_without_events(volume, version, VolumeState.Ready)
        assert volume.pool_id == target.id

    def test_staged_copy_keeps_migrating_and_its_answer_moves_the_pool(self):
        source, target = new_pool(), new_pool("target")
        volume = given(ready(source))
        volume.request_migration(CTX, None)  # the first leg is the stage's command
        assert kinds(volume.collect_events()) == [Volume.CopyRequested]
        assert (volume.state, volume.pending) == (VolumeState.Migrating, None)
        command = CopyCommand(
            commandId="unstage-1",
            srcTO=transfer.volume_to(volume, source).replace(path="stage/v.qcow2"),
            destTO=transfer.volume_to(volume, target).replace(path=None),
        )

        volume.request_staged_copy(CTX, command)

        (staged,) = volume.collect_events()
        assert type(staged) is Volume.StagedCopyRequested
        assert (staged.from_state, staged.to_state) == (
            VolumeState.Migrating,
            VolumeState.Migrating,
        )
        volume.fold_answer(
            CTX,
            answer_to(
                volume,
                CopyCmdAnswer,
                newData=command.destTO.replace(path="moved.qcow2"),
            ),
        )
        events = volume.collect_events()
        assert kinds(events) == [Volume.PoolChanged, Volume.CopyAnswered]
        assert events[0].pool_id == target.id
        assert volume.state is VolumeState.Ready
        assert volume.pool_id == target.id

    def test_migration_failed_before_the_volumes_copy_settles_it_ready(self):
        source = new_pool()
        volume = ready(source)
        volume.request_migration(CTX, None)
        volume = given(volume)

        volume.fail_migration(CTX, "stage copy failed")

        (event,) = volume.collect_events()
        assert type(event) is Volume.MigrationSettled
        assert event.answer["details"] == "stage copy failed"
        assert event.trigger == "OperationFailed"
        assert volume.state is VolumeState.Ready
        assert volume.pool_id == source.id


# ----------------------------------------------------------------- destroy, expunge


class TestDestroy:
    def test_destroy_refuses_an_attached_data_disk(self):
        pool, vm = new_pool(), new_vm()
        volume = given(attached(pool, vm))
        version = volume.version

        with pytest.raises(IllegalTransition, match="detach it first"):
            volume.destroy(CTX)

        assert_refused_without_events(volume, version, VolumeState.Ready)

    def test_with_vm_does_not_let_an_attached_data_disk_go(self):
        pool, vm = new_pool(), new_vm()
        volume = given(attached(pool, vm))
        version = volume.version

        with pytest.raises(IllegalTransition, match="detach it first"):
            volume.destroy(CTX, with_vm=True)

        assert_refused_without_events(volume, version, VolumeState.Ready)

    def test_destroy_refuses_a_root_volume_without_its_vm(self):
        pool, vm = new_pool(), new_vm()
        volume = given(ready(pool, volume_type=VolumeType.ROOT, vm_id=vm.id))
        version = volume.version

        with pytest.raises(IllegalTransition, match="goes with the VM") as refused:
            volume.destroy(CTX)

        assert refused.value.trigger == "DestroyRequested"
        assert_refused_without_events(volume, version, VolumeState.Ready)

    def test_root_volume_is_destroyed_with_its_vm(self):
        pool, vm = new_pool(), new_vm()
        volume = given(ready(pool, volume_type=VolumeType.ROOT, vm_id=vm.id))

        volume.destroy(CTX, with_vm=True)

        (event,) = volume.collect_events()
        assert type(event) is Volume.DestroyRequested
        assert event.command is None
        assert (event.from_state, event.to_state) == (
            VolumeState.Ready,
            VolumeState.Destroy,
        )
        assert volume.state is VolumeState.Destroy
        assert volume.pending is None
        assert not volume.counts_against_pool

    def test_destroy_waits_for_the_pending_command(self):
        pool = new_pool()
        volume = given(creating(pool))
        version = volume.version

        with pytest.raises(IllegalTransition, match="is pending"):
            volume.destroy(CTX)

        assert_refused_without_events(volume, version, VolumeState.Creating)

    def test_recover_returns_a_destroyed_volume_to_ready(self):
        volume = ready(new_pool())
        volume.destroy(CTX)
        volume = given(volume)
        assert not volume.counts_against_pool

        volume.recover(CTX)

        (event,) = volume.collect_events()
        assert type(event) is Volume.RecoverRequested
        assert (event.from_state, event.to_state) == (
            VolumeState.Destroy,
            VolumeState.Ready,
        )
        assert volume.counts_against_pool


class TestExpunge:
    def test_expunge_with_no_file_answers_itself(self):
        volume = allocated()
        volume.destroy(CTX)
        volume = given(volume)

        volume.request_expunge(CTX, None)

        requested, answered = events = volume.collect_events()
        assert kinds(events) == [Volume.ExpungeRequested, Volume.ExpungeAnswered]
        assert requested.command is None
        assert (requested.from_state, requested.to_state) == (
            VolumeState.Destroy,
            VolumeState.Expunging,
        )
        assert answered.trigger == "OperationSucceeded"
        assert answered.answer == {
            "kind": "Answer",
            "commandId": None,
            "result": True,
            "details": "no file on primary storage",
        }
        assert (answered.from_state, answered.to_state) == (
            VolumeState.Expunging,
            VolumeState.Expunged,
        )
        assert volume.state is VolumeState.Expunged
        assert volume.pending is None

    def test_expunge_of_a_created_volume_waits_for_the_delete(self):
        pool = new_pool()
        volume = ready(pool)
        volume.destroy(CTX)
        volume = given(volume)

        sent = requests.expunge_volume(CTX, WAIT, volume, pool)

        assert sent is True
        (event,) = volume.collect_events()
        assert type(event) is Volume.ExpungeRequested
        assert event.command["kind"] == "DeleteCommand"
        assert event.command["data"]["path"] == volume.path
        assert volume.state is VolumeState.Expunging
        assert volume.pending == event.command

    def test_delete_answer_expunges_the_volume(self):
        pool = new_pool()
        volume = ready(pool)
        volume.destroy(CTX)
        requests.expunge_volume(CTX, WAIT, volume, pool)
        volume = given(volume)

        volume.fold_answer(CTX, answer_to(volume, Answer))

        (event,) = volume.collect_events()
        assert type(event) is Volume.ExpungeAnswered
        assert volume.state is VolumeState.Expunged

    def test_failed_delete_returns_the_volume_to_destroy(self):
        pool = new_pool()
        volume = ready(pool)
        volume.destroy(CTX)
        requests.expunge_volume(CTX, WAIT, volume, pool)
        volume = given(volume)

        volume.fold_answer(CTX, answer_to(volume, Answer, result=False))

        (event,) = volume.collect_events()
        assert type(event) is Volume.ExpungeAnswered
        assert event.to_state is VolumeState.Destroy
        assert volume.state is VolumeState.Destroy
        assert volume.path is not None  # the file is still there

    def test_live_volume_cannot_be_expunged(self):
        volume = given(ready(new_pool()))
        version = volume.version

        with pytest.raises(IllegalTransition, match="ExpungingRequested"):
            volume.request_expunge(CTX, None)

        assert_refused_without_events(volume, version, VolumeState.Ready)
