"""CloudStack's staging cache: an S3 or Swift store's template reaches a pool
through the zone's cache store, which keeps its copies as refs with their own
state and evicts the least recently used past `storage.cache.size`.

The stores here are simulator stores that declare `needs_staging_cache`, as an S3
provider does, so the workflow runs end to end through the engine without a
backend; the S3 provider's own data path is tested against the lab.
"""

from __future__ import annotations

import pytest

from cli import bootstrap
from ledger.aggregate import Ctx
from ledger.commands import CopyCommand, from_dict
from ledger.copies import DataObjectInStore, copy_id
from ledger.errors import NotFound
from ledger.image_store import ImageStore
from ledger.job import Job
from ledger.usecases import infrastructure, snapshots, templates, vms, volumes
from ledger.values import (
    GiB,
    Hypervisor,
    ImageFormat,
    JobStatus,
    ObjectInStoreState,
    PoolType,
    Scope,
    StoreRole,
)

STAGED = {"needs_staging_cache": True}


def ctx() -> Ctx:
    return Ctx.new("t")


def settle(ledger, job: Job) -> Job:
    bootstrap.engine(ledger).run(once=True)
    return ledger.load(Job, job.id)


@pytest.fixture
def zone(ledger):
    """A simulator host, two pools, an S3-like image store and a cache."""
    infrastructure.register_host(ledger, ctx(), "sim", "z1", "c1", Hypervisor.Simulator)
    for name in ("p1", "p2"):
        infrastructure.register_pool(
            ledger, ctx(), name=name, zone="z1", path=f"/sim/{name}",
            capacity=100 * GiB, scope=Scope.ZONE, pool_type=PoolType.Simulator,
        )  # fmt: skip
    s3 = infrastructure.register_store(
        ledger, ctx(), "s3", "z1", "/sim/s3", "Simulator", capabilities=STAGED
    )
    cache = infrastructure.register_store(
        ledger, ctx(), "stage", "z1", "/sim/stage", "Simulator",
        role=StoreRole.ImageCache,
    )  # fmt: skip
    return s3, cache


def register(ledger, name: str) -> Job:
    job = templates.register_template(
        ledger, ctx(), name=name, url=f"http://x.invalid/{name}.qcow2",
        fmt=ImageFormat.QCOW2, zone="z1",
    )  # fmt: skip
    assert settle(ledger, job).status is JobStatus.succeeded
    return job


def deploy(ledger, name: str, template: str) -> Job:
    job = vms.deploy_vm(ledger, ctx(), name=name, template_ref=template, zone="z1")
    return settle(ledger, job)


def test_a_template_reaches_the_pool_through_the_cache(ledger, zone):
    _, cache = zone
    job = register(ledger, "t1")
    deployed = deploy(ledger, "vm1", "t1")
    assert deployed.status is JobStatus.succeeded, deployed.error
    staged = ledger.load(DataObjectInStore, copy_id(job.object_id, cache.id))
    assert staged.state is ObjectInStoreState.Ready
    assert staged.store_role is StoreRole.ImageCache
    # the pool's copy was made from the cache, not from the S3 store
    pool_copy = next(
        c
        for c in (
            ledger.find(DataObjectInStore, copy_id(job.object_id, pid))
            for pid in ledger.zone("z1").pools
        )
        if c is not None
    )
    assert pool_copy.is_ready
    src = pool_copy.last_command["srcTO"]["dataStore"]
    assert (src["uuid"], src["role"]) == (str(cache.id), "ImageCache")
    held = ledger.load(ImageStore, cache.id)
    assert str(staged.id) in held.cached
    assert staged.children == []  # the pool copy is done reading it


def test_a_second_pool_reads_the_cached_copy_without_staging_again(ledger, zone):
    _, cache = zone
    job = register(ledger, "t1")
    infrastructure.set_config(ledger, ctx(), "vm.allocation.algorithm", "firstfit")
    assert deploy(ledger, "vm1", "t1").status is JobStatus.succeeded
    staged = ledger.load(DataObjectInStore, copy_id(job.object_id, cache.id))
    stage_commands = sum(
        1 for e in ledger.events.get(staged.id) if type(e).__name__ == "CopyRequested"
    )
    infrastructure.change_pool_status(ledger, ctx(), "p1", "Disable")
    assert deploy(ledger, "vm2", "t1").status is JobStatus.succeeded
    again = [e for e in ledger.events.get(staged.id)]
    assert (
        sum(1 for e in again if type(e).__name__ == "CopyRequested") == stage_commands
    )
    served = [
        e
        for e in ledger.events.get(cache.id)
        if type(e).__name__ == "CopyServed" and e.copy_id == staged.id
    ]
    assert len(served) == 2  # once for each pool


def test_the_least_recently_used_copy_leaves_a_full_cache(ledger, zone):
    _, cache = zone
    # room for one copy: a simulated template is 512 MiB on disk
    infrastructure.set_config(ledger, ctx(), "storage.cache.size", str(768 << 20))
    first = register(ledger, "t1")
    assert deploy(ledger, "vm1", "t1").status is JobStatus.succeeded
    second = register(ledger, "t2")
    assert deploy(ledger, "vm2", "t2").status is JobStatus.succeeded
    held = ledger.load(ImageStore, cache.id)
    old = ledger.load(DataObjectInStore, copy_id(first.object_id, cache.id))
    new = ledger.load(DataObjectInStore, copy_id(second.object_id, cache.id))
    assert list(held.cached) == [str(new.id)]
    assert old.state is ObjectInStoreState.Destroyed
    assert new.is_ready
    assert held.cached_bytes <= 768 << 20


def test_a_deploy_from_a_staged_store_without_a_cache_is_refused(ledger):
    infrastructure.register_host(ledger, ctx(), "sim", "z1", "c1", Hypervisor.Simulator)
    infrastructure.register_pool(
        ledger, ctx(), name="p1", zone="z1", path="/sim/p1", capacity=100 * GiB,
        scope=Scope.ZONE, pool_type=PoolType.Simulator,
    )  # fmt: skip
    infrastructure.register_store(
        ledger, ctx(), "s3", "z1", "/sim/s3", "Simulator", capabilities=STAGED
    )
    register(ledger, "t1")
    before = ledger.recorder.max_notification_id()
    with pytest.raises(NotFound, match="staging cache"):
        vms.deploy_vm(ledger, ctx(), name="vm1", template_ref="t1", zone="z1")
    assert ledger.recorder.max_notification_id() == before


def test_a_backup_to_a_staged_store_names_the_cache(ledger, zone):
    _, cache = zone
    register(ledger, "t1")
    created = volumes.create_volume(
        ledger, ctx(), name="d1", zone="z1", size=GiB, pool_ref="p1"
    )
    assert settle(ledger, created).status is JobStatus.succeeded
    job = snapshots.snapshot_volume(ledger, ctx(), created.object_id, name="s1")
    assert settle(ledger, job).status is JobStatus.succeeded
    requested = [
        ledger.mapper.to_domain_event(n)
        for n in ledger.recorder.select_notifications(start=None, limit=10_000)
        if n.topic.endswith("DataObjectInStore.CopyRequested")
    ]
    backups = [
        from_dict(e.command)
        for e in requested
        if e.command["srcTO"]["kind"] == "SnapshotObjectTO"
    ]
    assert len(backups) == 1
    assert isinstance(backups[0], CopyCommand)
    assert backups[0].cacheTO is not None
    assert (backups[0].cacheTO.uuid, backups[0].cacheTO.role) == (
        str(cache.id),
        "ImageCache",
    )


def test_replay_verify_decides_the_staging_and_the_eviction_again(ledger, zone):
    """Today's workflows over the recorded log give the very same decisions."""
    from ledger.verify import verify

    infrastructure.set_config(ledger, ctx(), "storage.cache.size", str(768 << 20))
    for name in ("t1", "t2"):
        register(ledger, name)
        assert deploy(ledger, f"vm-{name}", name).status is JobStatus.succeeded
    report = verify(ledger)
    assert report.answers >= 8  # 2 downloads, 2 stagings, 2 pool copies, 2 clones
    assert report.divergences == []
