"""Disks and what uses them: `volumes`, `snapshots` and `vm_instance`.

CloudStack's `volumes` row follows the Volume machine: `state` from each step's
`to_state`, `updated_count` counting the transitions (CloudStack's optimistic-lock
counter), `pool_id`/`last_pool_id` from `PoolChanged`, `path`/`size`/`format` from a
successful create or copy answer, `instance_id`/`device_id` from attach and detach,
`removed` once Expunged. The allocator's `AllocationDecided` changes no row: it is
in `event_journal`. `snapshots.location_type` is PRIMARY once created on the pool,
SECONDARY once backed up; `removed` once Destroyed. `vm_instance` follows the VM's
`StateChanged` (`removed` once Expunging).
"""

from __future__ import annotations

from typing import Any

from ledger.aggregate import Answered, Requested
from ledger.snapshot import Snapshot
from ledger.values import SnapshotState, VmState, VolumeState
from ledger.vm import VirtualMachine
from ledger.volume import Volume
from projections.db import Db, iso, text
from projections.routing import on_steps, project

# ---------------------------------------------------------------- volumes


@project.register
def _volume_allocated(event: Volume.Allocated, db: Db) -> None:
    db.insert(
        "volumes",
        {
            "uuid": str(event.originator_id),
            "name": event.name,
            "pool_id": None,
            "last_pool_id": None,
            "instance_id": text(event.vm_id),
            "device_id": event.device_id,
            "volume_type": text(event.volume_type),
            "size": event.size,
            "path": None,
            "template_id": text(event.template_id),
            "snapshot_id": text(event.snapshot_id),
            "state": VolumeState.Allocated.value,
            "format": None,
            "data_center_id": event.zone_id,
            "created": iso(event.timestamp),
            "removed": None,
            "updated_count": 0,
        },
        key="uuid",
    )


@project.register
def _volume_pool(event: Volume.PoolChanged, db: Db) -> None:
    volume_id = str(event.originator_id)
    if event.from_pool_id is not None:
        db.update(
            "volumes",
            "uuid",
            volume_id,
            pool_id=text(event.pool_id),
            last_pool_id=str(event.from_pool_id),
        )
    else:
        db.update("volumes", "uuid", volume_id, pool_id=text(event.pool_id))


@project.register
def _volume_decided(event: Volume.AllocationDecided, db: Db) -> None:
    """The allocator's decision is journal only (see `storctl why`)."""


@on_steps("Volume")
def _volume_step(event: Requested | Answered, db: Db) -> None:
    values: dict[str, Any] = {}
    if event.to_state is VolumeState.Expunged:
        values["removed"] = iso(event.timestamp)
    if isinstance(event, Answered) and event.answer.get("result"):
        values.update(_answer_values(event))
    changed = event.from_state is not event.to_state
    sets = ", ".join(["state = ?", *(f"{c} = ?" for c in values)])
    db.execute(
        f"UPDATE volumes SET {sets}, updated_count = updated_count + ? WHERE uuid = ?",
        [
            text(event.to_state),
            *values.values(),
            int(changed),
            str(event.originator_id),
        ],
    )


def _answer_values(event: Answered) -> dict[str, Any]:
    """What a successful answer tells the row, beyond its state."""
    values: dict[str, Any] = {}
    if isinstance(event, Volume.ResizeAnswered) and event.size is not None:
        values["size"] = event.size
    if isinstance(event, Volume.CreateAnswered):  # and CopyAnswered
        if event.path is not None:
            values["path"] = event.path
        if event.size is not None:
            values["size"] = event.size
        data = event.answer.get("data") or event.answer.get("newData") or {}
        if isinstance(data, dict) and data.get("format"):
            values["format"] = data["format"]
    elif isinstance(event, Volume.AttachAnswered):
        values["instance_id"] = text(event.vm_id)
        values["device_id"] = event.device_id
    elif isinstance(event, Volume.DetachAnswered):
        values["instance_id"] = None
        values["device_id"] = None
    return values


# ---------------------------------------------------------------- snapshots


@project.register
def _snapshot_allocated(event: Snapshot.Allocated, db: Db) -> None:
    db.insert(
        "snapshots",
        {
            "uuid": str(event.originator_id),
            "name": event.name,
            "volume_id": str(event.volume_id),
            "status": SnapshotState.Allocated.value,
            "snapshot_type": "MANUAL",
            "prev_snapshot_id": text(event.prev_snapshot_id),
            "size": event.size,
            "physical_size": 0,
            "location_type": None,
            "created": iso(event.timestamp),
            "removed": None,
        },
        key="uuid",
    )


@on_steps("Snapshot")
def _snapshot_step(event: Requested | Answered, db: Db) -> None:
    values: dict[str, Any] = {"status": text(event.to_state)}
    if event.to_state is SnapshotState.Destroyed:
        values["removed"] = iso(event.timestamp)
    if isinstance(event, Snapshot.CreateAnswered):  # and BackupAnswered
        if event.physical_size is not None:
            values["physical_size"] = event.physical_size
        if event.answer.get("result"):
            backup = isinstance(event, Snapshot.BackupAnswered | Snapshot.BackupSettled)
            values["location_type"] = "SECONDARY" if backup else "PRIMARY"
    db.update("snapshots", "uuid", str(event.originator_id), **values)


# ---------------------------------------------------------------- vm_instance


@project.register
def _vm_deployed(event: VirtualMachine.Deployed, db: Db) -> None:
    db.insert(
        "vm_instance",
        {
            "uuid": str(event.originator_id),
            "name": event.name,
            "data_center_id": event.zone_id,
            "host_id": str(event.host_id),
            "state": VmState.Stopped.value,
            "vm_template_id": str(event.template_id),
            "root_volume_id": str(event.root_volume_id),
            "created": iso(event.timestamp),
            "removed": None,
        },
        key="uuid",
    )


@project.register
def _vm_state(event: VirtualMachine.StateChanged, db: Db) -> None:
    removed = iso(event.timestamp) if event.to_state is VmState.Expunging else None
    db.update(
        "vm_instance",
        "uuid",
        str(event.originator_id),
        state=text(event.to_state),
        removed=removed,
    )
