"""The whole engine under random operations and injected faults.

A `RuleBasedStateMachine` drives the service (deploy, create, attach, detach,
snapshot, revert, migrate, delete, recover, expunge, maintenance) on simulator hosts,
with random injected failures and hangs, every operation driven until its job
settles. After every step:

- a pool's allocated size is the sum of its live volumes (neither Destroy nor gone)
  and cached template copies, and never passes its threshold;
- every volume is held by at most one pool (two only while Migrating);
- nothing sits in a transitional state once every job has settled;
- every `...Requested` command has at most one answer, and the configured wait;
- snapshot chains are acyclic;
- every aggregate rebuilt from its events equals the live one;
and, at the end of each run, the projected tables equal a fresh rebuild.

`HYPOTHESIS_PROFILE=slow` runs many more examples.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any
from uuid import UUID

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    rule,
)

from cli import bootstrap
from ledger.aggregate import Answered, Ctx, Requested
from ledger.copies import DataObjectInStore
from ledger.errors import StorctlError
from ledger.job import Job
from ledger.pool import StoragePool
from ledger.simulator_plan import SimulatorPlan, plan_id
from ledger.snapshot import Snapshot
from ledger.usecases import infrastructure, migration, simulator, templates
from ledger.usecases import snapshots as snapshot_ops
from ledger.usecases import vms as vm_ops
from ledger.usecases import volumes as volume_ops
from ledger.values import (
    GiB,
    Hypervisor,
    ImageFormat,
    JobStatus,
    PoolType,
    Scope,
    VolumeState,
)
from ledger.verify import verify
from ledger.volume import Volume
from projections.projector import catch_up, rebuild
from projections.view import reader

THRESHOLD = 0.85
COMMANDS = ["CreateObjectCommand", "CopyCommand", "DeleteCommand", "AttachCommand",
            "DettachCommand"]  # fmt: skip
TABLES = ["storage_pool", "volumes", "snapshots", "template_spool_ref", "async_job",
          "vm_instance", "snapshot_store_ref"]  # fmt: skip


def ctx() -> Ctx:
    return Ctx.new("model")


def live(volume: Volume) -> bool:
    return volume.pool_id is not None and volume.counts_against_pool


class System(RuleBasedStateMachine):
    vms = Bundle("vms")
    volumes = Bundle("volumes")
    snapshots = Bundle("snapshots")

    def __init__(self) -> None:
        super().__init__()
        #: jobs submitted and not yet worked (`BatchedSystem`); none here
        self.queued: list[Job] = []
        self.dir = Path(tempfile.mkdtemp(prefix="system-"))
        self.ledger = bootstrap.open_ledger(str(self.dir / "ledger.db"))
        self.engine = bootstrap.engine(self.ledger)
        c = ctx()
        for key in ("wait", "copy.volume.wait", "primary.storage.download.wait",
                    "backup.snapshot.wait"):  # fmt: skip
            infrastructure.set_config(
                self.ledger, c, key, "1"
            )  # a hang times out in a second
        for host, cluster in (("sim-a", "c1"), ("sim-b", "c2")):
            infrastructure.register_host(
                self.ledger, c, host, "z1", cluster, Hypervisor.Simulator
            )
        self.pools = {}
        for name, cluster, cap in (("p1", "c1", 12), ("p2", "c1", 8), ("p3", "c2", 10)):
            pool = infrastructure.register_pool(
                self.ledger,
                c,
                name=name,
                zone="z1",
                path=f"/sim/{name}",
                capacity=cap * GiB,
                scope=Scope.CLUSTER,
                pool_type=PoolType.Simulator,
                cluster=cluster,
                overprovision=1.0,
            )
            self.pools[name] = pool.id
        infrastructure.register_store(self.ledger, c, "sec", "z1", "/sim/sec")
        self.drive(
            templates.register_template(
                self.ledger,
                c,
                name="t1",
                url="http://example.invalid/t1",
                fmt=ImageFormat.QCOW2,
                zone="z1",
            )
        )
        self.vm_count = 0
        self.failed_jobs = 0

    def teardown(self) -> None:
        try:
            catch_up(self.ledger)
            before = self.tables()
            rebuild(self.ledger)
            assert self.tables() == before, "projections differ from a fresh rebuild"
            # replay verify is silent on every history storctl writes
            report = verify(self.ledger)
            assert report.divergences == [], report.divergences
        finally:
            self.ledger.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    # ------------------------------------------------------------ helpers

    def drive(self, job: Job) -> Job:
        job = self.engine.drive(job.id, timeout=30)
        assert job.settled, f"job {job.cmd} did not settle"
        if job.status is JobStatus.failed:
            self.failed_jobs += 1
        return job

    def attempt(self, op: Any) -> Job | None:
        """Run an operation; a refusal (exit 2) is a fine outcome of a random step."""
        try:
            job = op()
        except StorctlError as exc:
            refused = exc
        else:
            job = self.drive(job)
            event(f"job {job.cmd} {job.status.name}")
            return job
        assert refused.exit_code == 2, refused
        event(f"refused: {type(refused).__name__}")
        return None

    def tables(self) -> dict[str, list[tuple[Any, ...]]]:
        with reader(self.ledger) as r:
            return {
                t: sorted(
                    tuple(sorted(row.items())) for row in r.all(f"SELECT * FROM {t}")
                )
                for t in TABLES
            }

    def all_ids(self, topic_prefix: str) -> list[UUID]:
        notes = self.ledger.recorder.select_notifications(start=None, limit=100000)
        return sorted(
            {n.originator_id for n in notes if n.topic.startswith(topic_prefix)}
        )

    # ------------------------------------------------------------ faults

    @rule(command=st.sampled_from(COMMANDS), host=st.sampled_from(["sim-a", "sim-b"]),
          mode=st.sampled_from(["fail", "fail", "fail", "hang"]))  # fmt: skip
    def inject_fault(self, command: str, host: str, mode: str) -> None:
        simulator.configure_simulator(
            self.ledger, ctx(), host, command, mode, details=f"injected {mode}", count=1
        )

    @rule()
    def clear_faults(self) -> None:
        simulator.clear_simulator(self.ledger, ctx(), None)

    # ------------------------------------------------------------ operations

    @rule(target=vms, host=st.sampled_from(["sim-a", "sim-b"]))
    def deploy(self, host: str) -> str:
        self.vm_count += 1
        name = f"vm-{self.vm_count}"
        self.attempt(
            lambda: vm_ops.deploy_vm(
                self.ledger,
                ctx(),
                name=name,
                template_ref="t1",
                zone="z1",
                host_ref=host,
            )
        )
        return name

    @rule(
        target=volumes, size=st.integers(1, 4), pool=st.sampled_from([None, "p1", "p3"])
    )
    def create(self, size: int, pool: str | None) -> UUID:
        job = volume_ops.create_volume(
            self.ledger, ctx(), name="d", zone="z1", size=size * GiB // 2, pool_ref=pool
        )
        self.drive(job)
        return job.object_id

    @rule(volume=volumes, vm=vms)
    def attach(self, volume: UUID, vm: str) -> None:
        self.attempt(lambda: volume_ops.attach_volume(self.ledger, ctx(), volume, vm))

    @rule(volume=volumes)
    def detach(self, volume: UUID) -> None:
        self.attempt(lambda: volume_ops.detach_volume(self.ledger, ctx(), volume))

    @rule(target=snapshots, volume=volumes)
    def snapshot(self, volume: UUID) -> UUID:
        job = self.attempt(
            lambda: snapshot_ops.snapshot_volume(self.ledger, ctx(), volume)
        )
        return job.object_id if job else UUID(int=0)

    @rule(snapshot=snapshots)
    def revert(self, snapshot: UUID) -> None:
        self.attempt(
            lambda: snapshot_ops.revert_snapshot(self.ledger, ctx(), str(snapshot))
        )

    @rule(snapshot=consumes(snapshots))
    def delete_snapshot(self, snapshot: UUID) -> None:
        self.attempt(
            lambda: snapshot_ops.delete_snapshot(self.ledger, ctx(), str(snapshot))
        )

    @rule(volume=volumes, pool=st.sampled_from(["p1", "p2", "p3"]))
    def migrate(self, volume: UUID, pool: str) -> None:
        self.attempt(lambda: migration.migrate_volume(self.ledger, ctx(), volume, pool))

    @rule(volume=volumes)
    def delete(self, volume: UUID) -> None:
        self.attempt(lambda: volume_ops.delete_volume(self.ledger, ctx(), volume))

    @rule(volume=volumes)
    def recover(self, volume: UUID) -> None:
        self.attempt(lambda: volume_ops.recover_volume(self.ledger, ctx(), volume))

    @rule(volume=consumes(volumes))
    def expunge(self, volume: UUID) -> None:
        self.attempt(lambda: volume_ops.expunge_volume(self.ledger, ctx(), volume))

    @rule(pool=st.sampled_from(["p1", "p2", "p3"]), enable=st.booleans())
    def maintenance(self, pool: str, enable: bool) -> None:
        try:
            infrastructure.pool_maintenance(self.ledger, ctx(), pool, enable=enable)
        except StorctlError as exc:
            refused = exc
        else:
            return
        assert refused.exit_code == 2

    # ------------------------------------------------------------ invariants

    @invariant()
    def capacity_is_the_sum_of_what_is_on_the_pool(self) -> None:
        if self.queued:
            return  # holds once the jobs in flight settled
        volumes = [self.ledger.load(Volume, v) for v in self.all_ids("storctl.Volume.")]
        copies = [
            self.ledger.load(DataObjectInStore, c)
            for c in self.all_ids("storctl.DataObjectInStore.")
        ]
        for name, pid in self.pools.items():
            pool = self.ledger.load(StoragePool, pid)
            expected = sum(v.size for v in volumes if v.pool_id == pid and live(v))
            # a volume migrating here holds its reservation before it arrives
            expected += sum(
                v.size
                for v in volumes
                if v.state is VolumeState.Migrating
                and v.held_on(pid) is not None
                and v.pool_id != pid
            )
            expected += sum(c.held_on(pid) or 0 for c in copies if c.store_id == pid)
            assert pool.allocated == expected, name
            # the pool's totals are the sum of its holders' own records
            holders = [h for h in [*volumes, *copies] if h.held_on(pid) is not None]
            assert pool.objects == len(holders), name
            assert pool.allocated == sum(h.held_on(pid) or 0 for h in holders), name
            assert pool.allocated <= THRESHOLD * pool.capacity * pool.factor(2.0) + 1

    @invariant()
    def a_volume_is_on_at_most_one_pool(self) -> None:
        if self.queued:
            return  # holds once the jobs in flight settled
        for vid in self.all_ids("storctl.Volume."):
            volume = self.ledger.load(Volume, vid)
            allowed = 2 if volume.state is VolumeState.Migrating else 1
            assert len(volume.holds) <= allowed
            assert set(volume.holds) <= {str(pid) for pid in self.pools.values()}

    @invariant()
    def nothing_transitional_once_jobs_settled(self) -> None:
        if self.queued:
            return  # holds once the jobs in flight settled
        for jid in self.all_ids("storctl.Job."):
            assert self.ledger.load(Job, jid).settled
        for prefix, cls in (
            ("storctl.Volume.", Volume),
            ("storctl.Snapshot.", Snapshot),
            ("storctl.DataObjectInStore.", DataObjectInStore),
        ):
            for oid in self.all_ids(prefix):
                obj = self.ledger.load(cls, oid)
                assert not obj.SPEC.is_transitional(obj.state), (
                    cls.__name__,
                    obj.state,
                )
                assert obj.pending is None

    @invariant()
    def every_request_has_at_most_one_answer(self) -> None:
        answers: dict[tuple[UUID, str], int] = {}
        for note in self.ledger.recorder.select_notifications(start=None, limit=100000):
            event = self.ledger.mapper.to_domain_event(note)
            if isinstance(event, Answered) and event.answer.get("commandId"):
                key = (event.originator_id, event.answer["commandId"])
                answers[key] = answers.get(key, 0) + 1
            if isinstance(event, Requested) and event.command:
                answers.setdefault((event.originator_id, event.command["commandId"]), 0)
                # every wait setting is 1 here: no command may bring its default
                assert event.command.get("wait") == 1, event.command
        assert all(n <= 1 for n in answers.values()), answers

    @invariant()
    def snapshot_chains_are_acyclic(self) -> None:
        for cid in self.all_ids("storctl.DataObjectInStore."):
            seen: set[UUID] = set()
            copy: DataObjectInStore | None = self.ledger.load(DataObjectInStore, cid)
            while copy is not None:
                assert copy.id not in seen, "cycle"
                seen.add(copy.id)
                copy = (self.ledger.load(DataObjectInStore, copy.parent_id)
                        if copy.parent_id else None)  # fmt: skip

    @invariant()
    def rebuilt_from_events_equals_live(self) -> None:
        for oid in self.all_ids("storctl."):
            live_obj = self.ledger.repository.get(oid)
            replayed = None
            for stored in self.ledger.events.get(oid):
                replayed = stored.mutate(replayed)
            assert replayed is not None
            assert vars(replayed) == vars(live_obj), type(live_obj).__name__

    @invariant()
    def simulator_plans_exist_only_for_simulator_hosts(self) -> None:
        for pid in self.all_ids("storctl.SimulatorPlan."):
            plan = self.ledger.load(SimulatorPlan, pid)
            assert plan.id == plan_id(plan.host_id)


class BatchedSystem(System):
    """The same operations, submitted without waiting (`--async`) and worked
    together when `work` runs: the engine's followers then decide many
    notifications per batch, with faults injected as before. Every invariant
    holds between steps; those about settled jobs once `work` has settled them."""

    def drive(self, job: Job) -> Job:
        self.queued.append(job)
        return job

    @rule()
    def work(self) -> None:
        deadline = time.monotonic() + 120
        while True:
            self.engine.run(once=True)
            jobs = [self.ledger.load(Job, j.id) for j in self.queued]
            if all(j.settled for j in jobs):
                break
            assert time.monotonic() < deadline, "jobs in flight did not settle"
        self.failed_jobs += sum(j.status is JobStatus.failed for j in jobs)
        event(f"worked {len(jobs)} jobs together")
        self.queued = []

    def teardown(self) -> None:
        try:
            self.work()
        finally:
            super().teardown()


SLOW = os.environ.get("HYPOTHESIS_PROFILE") == "slow"
System.TestCase.settings = settings(
    max_examples=300 if SLOW else 25,
    stateful_step_count=40 if SLOW else 20,
    deadline=None,
)
TestSystem = System.TestCase
BatchedSystem.TestCase.settings = settings(
    max_examples=200 if SLOW else 15,
    stateful_step_count=40 if SLOW else 25,
    deadline=None,
)
TestBatchedSystem = BatchedSystem.TestCase
