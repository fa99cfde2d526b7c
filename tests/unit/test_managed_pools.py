"""Managed storage (CloudStack's SolidFire model, storctl's iSCSI provider): a pool
that cannot clone gets the template written whole into each volume, and keeps no
base image of its own."""

from __future__ import annotations

from uuid import UUID

from cli import bootstrap
from ledger.aggregate import Ctx
from ledger.copies import DataObjectInStore, copy_id
from ledger.job import Job
from ledger.pool import StoragePool
from ledger.usecases import infrastructure, templates, vms
from ledger.values import GiB, Hypervisor, ImageFormat, JobStatus, PoolType, Scope
from ledger.volume import Volume

MANAGED = {"linked_clones": False}


def ctx() -> Ctx:
    return Ctx.new("t")


def settle(ledger, job: Job) -> Job:
    bootstrap.engine(ledger).run(once=True)
    return ledger.load(Job, job.id)


def test_a_root_volume_on_a_pool_that_cannot_clone_is_a_full_copy(ledger):
    infrastructure.register_host(ledger, ctx(), "sim", "z1", "c1", Hypervisor.Simulator)
    pool = infrastructure.register_pool(
        ledger, ctx(), name="lun", zone="z1", path="/sim/lun", capacity=100 * GiB,
        scope=Scope.ZONE, pool_type=PoolType.Simulator, capabilities=MANAGED,
    )  # fmt: skip
    store = infrastructure.register_store(ledger, ctx(), "sec", "z1", "/sim/sec")
    registered = templates.register_template(
        ledger, ctx(), name="t", url="http://x.invalid/t.qcow2",
        fmt=ImageFormat.QCOW2, zone="z1",
    )  # fmt: skip
    assert settle(ledger, registered).status is JobStatus.succeeded
    deployed = settle(
        ledger, vms.deploy_vm(ledger, ctx(), name="vm", template_ref="t", zone="z1")
    )
    assert deployed.status is JobStatus.succeeded, deployed.error
    root = ledger.load(Volume, UUID(deployed.params["volume_id"]))
    command = root.last_command
    assert command["kind"] == "CopyCommand"
    assert command["srcTO"]["dataStore"]["uuid"] == str(store.id)  # the image store
    assert command["destTO"]["kind"] == "VolumeObjectTO"
    # no base image on the pool, and only the volume holds capacity there
    assert (
        ledger.find(DataObjectInStore, copy_id(registered.object_id, pool.id)) is None
    )
    held = ledger.load(StoragePool, pool.id)
    assert (held.allocated, held.objects) == (root.size, 1)


def test_a_snapshot_on_a_pool_that_takes_none_is_refused_with_nothing_written(ledger):
    import pytest

    from ledger.errors import IllegalTransition
    from ledger.usecases import snapshots, volumes

    infrastructure.register_host(ledger, ctx(), "sim", "z1", "c1", Hypervisor.Simulator)
    infrastructure.register_pool(
        ledger, ctx(), name="lun", zone="z1", path="/sim/lun", capacity=100 * GiB,
        scope=Scope.ZONE, pool_type=PoolType.Simulator,
        capabilities={"linked_clones": False, "snapshots": False},
    )  # fmt: skip
    created = settle(
        ledger,
        volumes.create_volume(
            ledger, ctx(), name="d", zone="z1", size=GiB, pool_ref="lun"
        ),
    )
    assert created.status is JobStatus.succeeded
    before = ledger.recorder.max_notification_id()
    with pytest.raises(IllegalTransition, match="takes no snapshots"):
        snapshots.snapshot_volume(ledger, ctx(), created.object_id)
    assert ledger.recorder.max_notification_id() == before
