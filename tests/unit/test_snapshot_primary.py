"""A snapshot's place on primary (`Snapshot.primary_path`), kept apart from its
backup's path: set when the snapshot is taken on the pool, kept by a backup on a
pool that keeps native snapshots (RBD), gone after a backup that removed it
(`removeAfterCopy` on a directory pool), kept when a backup fails. `storctl
reconcile` claims a snapshot on primary by it, so an RBD pool's native snapshots
are not reported as orphans."""

from __future__ import annotations

import uuid

import pytest

from ledger.aggregate import Ctx
from ledger.commands import (
    CreateObjectAnswer,
    CreateObjectCommand,
    PrimaryDataStoreTO,
    SnapshotObjectTO,
)
from ledger.snapshot import Snapshot
from ledger.values import SnapshotState

CTX = Ctx(actor="alice", job_id="job-1", causation_id="req-1")
POOL = PrimaryDataStoreTO(str(uuid.uuid4()), "ceph", "RBD", "rbd://admin@mon/rbd")


def taken(*, ok: bool = True) -> Snapshot:
    snapshot = Snapshot.allocate(
        CTX, name="nightly", volume_id=uuid.uuid4(), prev_snapshot_id=None, size=1
    )
    data = SnapshotObjectTO(str(snapshot.id), "nightly", None, POOL)
    command = CreateObjectCommand(commandId="take-1", data=data)
    snapshot.request_create(CTX, command)
    answer = CreateObjectAnswer(
        commandId="take-1",
        result=ok,
        details="" if ok else "rbd snap create failed",
        data=data.replace(path=f"vol@{snapshot.id}") if ok else None,
    )
    snapshot.fold_answer(CTX, answer)
    return snapshot


def test_taken_on_primary_records_where() -> None:
    snapshot = taken()
    assert snapshot.state is SnapshotState.CreatedOnPrimary
    assert snapshot.primary_path == f"vol@{snapshot.id}"
    assert snapshot.path == snapshot.primary_path
    assert snapshot.primary_pool_id == POOL.uuid  # the volume may move later


def test_a_failed_take_records_nothing_on_primary() -> None:
    snapshot = taken(ok=False)
    assert snapshot.primary_path is None


@pytest.mark.parametrize(
    ("kept", "ok", "on_primary"),
    [
        (True, True, True),  # RBD: the native snapshot stays after its backup
        (False, True, False),  # directory pool: removeAfterCopy removed it
        (False, False, True),  # a failed backup leaves it where it was
        (True, False, True),
    ],
)
def test_backup_keeps_or_clears_primary_path(
    kept: bool, ok: bool, on_primary: bool
) -> None:
    snapshot = taken()
    where = snapshot.primary_path
    snapshot.request_backup(CTX, None)
    snapshot.finish_backup(
        CTX,
        ok=ok,
        path="snapshots/vol/snap.qcow2" if ok else None,
        details="" if ok else "backup failed",
        kept_on_primary=kept,
    )
    assert snapshot.primary_path == (where if on_primary else None)
    if ok:
        assert snapshot.path == "snapshots/vol/snap.qcow2"  # the backup's


def test_events_recorded_before_the_field_read_as_removed() -> None:
    """A `BackupSettled` stored before `kept_on_primary` existed decodes without
    it (the decoder sets `__dict__`): the class default, a directory pool's
    rule, the only one there was then."""
    event = object.__new__(Snapshot.BackupSettled)
    assert event.kept_on_primary is False
    assert Snapshot.primary_path is None  # an old aggregate snapshot loads


# ------------------------------------------------------------ delete


class Copy:
    """What `delete_plan` reads of a backup (`DataObjectInStore`)."""

    def __init__(self, install_path: str | None, children: list[str]) -> None:
        self.install_path, self.children = install_path, children


@pytest.mark.parametrize(
    ("on_primary", "copy", "plan"),
    [
        (True, None, "primary"),  # kept on primary only: delete it there
        (True, Copy(None, []), "primary"),  # a backup that never made its file
        (False, None, "none"),  # nowhere: nothing to send
        (False, Copy(None, []), "none"),
        (True, Copy("snapshots/v/s.qcow2", []), "backup"),  # rbd: both, one command
        (False, Copy("snapshots/v/s.qcow2", []), "backup"),
        (True, Copy("snapshots/v/s.qcow2", ["delta"]), "hidden"),
    ],
)
def test_delete_sends_to_primary_what_has_no_backup(on_primary, copy, plan) -> None:
    from ledger.usecases.snapshots import delete_plan

    snapshot = taken()
    if not on_primary:
        snapshot.primary_path = None
    assert delete_plan(snapshot, copy) == plan  # type: ignore[arg-type]


def test_a_kept_on_primary_snapshot_is_backed_up_without_a_backup() -> None:
    """`snapshot.backup.to.secondary` false: OperationNotPerformed, BackedUp,
    still on primary; its delete on primary answered clears `primary_path`."""
    from ledger.commands import Answer, DeleteCommand

    snapshot = taken()
    snapshot.skip_backup(CTX, "kept on primary only")
    assert snapshot.state is SnapshotState.BackedUp
    assert snapshot.primary_path == f"vol@{snapshot.id}"
    data = SnapshotObjectTO(str(snapshot.id), "nightly", None, POOL,
                            path=snapshot.primary_path)  # fmt: skip
    snapshot.request_destroy(CTX, DeleteCommand(commandId="del-1", data=data))
    assert snapshot.state is SnapshotState.Destroying
    failed = Answer(commandId="del-1", result=False, details="rbd: busy")
    snapshot.fold_answer(CTX, failed)
    assert snapshot.state is SnapshotState.BackedUp  # still there: still claimed
    assert snapshot.primary_path is not None
    snapshot.request_destroy(CTX, DeleteCommand(commandId="del-2", data=data))
    snapshot.fold_answer(CTX, Answer(commandId="del-2", result=True))
    assert snapshot.state is SnapshotState.Destroyed
    assert snapshot.primary_path is None
