"""Property: over random snapshot, delete, revert and write sequences on a real qcow2
volume, the snapshot chain stays acyclic and every surviving snapshot restores its
own data (read through its backup's chain of deltas with qemu-io)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from uuid import UUID

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from cli import bootstrap
from ledger.aggregate import Ctx
from ledger.copies import DataObjectInStore
from ledger.inventory import backup_of
from ledger.job import Job
from ledger.snapshot import Snapshot
from ledger.usecases import infrastructure, snapshots, volumes
from ledger.values import GiB, Hypervisor, JobStatus, PoolType, Scope, SnapshotState
from ledger.volume import Volume

pytestmark = pytest.mark.skipif(shutil.which("qemu-io") is None, reason="no qemu-io")


def qemu_io(path: Path, command: str, *, read_only: bool = False) -> str:
    argv = ["qemu-io", *(["-r"] if read_only else []), "-f", "qcow2", "-c", command,
            str(path)]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    return proc.stdout + proc.stderr


def ctx() -> Ctx:
    return Ctx.new("prop")


class SnapshotChains(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="chains-"))
        for d in ("pool", "sec"):
            (self.dir / d).mkdir()
        self.ledger = bootstrap.open_ledger(str(self.dir / "ledger.db"))
        self.engine = bootstrap.engine(self.ledger, project=False)
        infrastructure.register_host(
            self.ledger, ctx(), "kvm", "z1", "c1", Hypervisor.KVM
        )
        infrastructure.register_pool(
            self.ledger,
            ctx(),
            name="p",
            zone="z1",
            path=str(self.dir / "pool"),
            capacity=10 * GiB,
            scope=Scope.CLUSTER,
            pool_type=PoolType.Filesystem,
            cluster="c1",
        )
        infrastructure.register_store(
            self.ledger, ctx(), "s", "z1", str(self.dir / "sec")
        )
        infrastructure.set_config(self.ledger, ctx(), "snapshot.delta.max", "3")
        job = self.run_job(
            volumes.create_volume(
                self.ledger, ctx(), name="v", zone="z1", size=16 << 20, pool_ref="p"
            )
        )
        self.volume_id = job.object_id
        self.pattern = 1
        self.write(self.pattern)
        self.model: dict[UUID, int] = {}  # surviving snapshot -> its pattern

    def teardown(self) -> None:
        self.ledger.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def run_job(self, job: Job) -> Job:
        job = self.engine.drive(job.id, timeout=60)
        assert job.status is JobStatus.succeeded, job.error
        return job

    @property
    def disk(self) -> Path:
        volume = self.ledger.load(Volume, self.volume_id)
        return self.dir / "pool" / str(volume.path)

    def write(self, pattern: int) -> None:
        assert "wrote 65536/65536" in qemu_io(self.disk, f"write -P {pattern} 0 64k")

    @rule()
    def write_new_data(self) -> None:
        self.pattern = self.pattern % 250 + 1
        self.write(self.pattern)

    @rule()
    def take_snapshot(self) -> None:
        job = self.run_job(
            snapshots.snapshot_volume(self.ledger, ctx(), self.volume_id)
        )
        self.model[job.object_id] = self.pattern

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def delete_snapshot(self, data: st.DataObject) -> None:
        victim = data.draw(st.sampled_from(sorted(self.model)))
        self.run_job(snapshots.delete_snapshot(self.ledger, ctx(), str(victim)))
        del self.model[victim]

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def revert(self, data: st.DataObject) -> None:
        target = data.draw(st.sampled_from(sorted(self.model)))
        self.run_job(snapshots.revert_snapshot(self.ledger, ctx(), str(target)))
        self.pattern = self.model[target]
        out = qemu_io(self.disk, f"read -P {self.pattern} 0 64k", read_only=True)
        assert "read 65536/65536" in out, out
        assert "Pattern verification failed" not in out, out

    @invariant()
    def chains_are_acyclic(self) -> None:
        for sid in self.model:
            seen: set[UUID] = set()
            copy = backup_of(self.ledger, self.ledger.load(Snapshot, sid))
            while copy is not None:
                assert copy.id not in seen, "cycle in the snapshot chain"
                seen.add(copy.id)
                copy = (
                    self.ledger.load(DataObjectInStore, copy.parent_id)
                    if copy.parent_id
                    else None
                )

    @invariant()
    def every_surviving_snapshot_restores_its_own_data(self) -> None:
        for sid, pattern in self.model.items():
            snapshot = self.ledger.load(Snapshot, sid)
            assert snapshot.state is SnapshotState.BackedUp
            copy = backup_of(self.ledger, snapshot)
            assert copy is not None
            assert copy.install_path is not None
            backup = self.dir / "sec" / copy.install_path
            out = qemu_io(backup, f"read -P {pattern} 0 64k", read_only=True)
            assert "Pattern verification failed" not in out, (sid, out)
            assert "read 65536/65536" in out, out


SnapshotChains.TestCase.settings = settings(
    max_examples=8, stateful_step_count=10, deadline=None
)
TestSnapshotChains = SnapshotChains.TestCase
