"""Snapshots of RBD volumes: native RBD snapshots, backed up whole to the image
store, reverted in place.

What each operation runs, as CloudStack's KVM agent does for an RBD pool:

- `createSnapshot`: `rbd snap create <pool>/<volume>@<snapshot uuid>`; its path
  on primary is `<volume>@<snapshot uuid>`.
- `backupSnapshot`: `qemu-img convert -O qcow2 rbd:<pool>/<volume>@<snap>` to
  `snapshots/<volume uuid>/<snapshot uuid>.qcow2` on the image store, always a
  full copy (the ledger asks full backups of pools that snapshot natively). The
  RBD snapshot stays on primary whatever `removeAfterCopy` says, as CloudStack
  keeps it: a revert then rolls back in Ceph without reading the backup.
- `revertSnapshot`: `rbd snap rollback` while the snapshot is on primary; else the
  backup is written back over the image (`qemu-img convert -n`), guarded by a
  snapshot of the volume taken first and rolled back to if the write fails, so a
  failed revert leaves the volume as it was.
- `deleteSnapshot`: the RBD snapshot (unprotected first if it is protected) and
  the backup file; either already gone counts as done.
"""

from __future__ import annotations

from pathlib import Path

from executors.paths import contained, store_root
from executors.providers.directory.images import remove_with_dir
from executors.providers.directory.snapshots import snapshot_path
from executors.providers.driver import AgentFailure
from executors.providers.rbd.ceph import Ceph
from executors.providers.rbd.location import image_name
from executors.providers.rbd.pools import Pools, is_rbd, on_rbd, to_file
from executors.providers.rbd.volumes import name_of
from ledger.commands import (
    Answer,
    CopyCmdAnswer,
    CopyCommand,
    CreateObjectAnswer,
    CreateObjectCommand,
    DeleteCommand,
    RevertSnapshotCommand,
    SnapshotObjectTO,
    VolumeObjectTO,
)
from ledger.errors import InvalidInput

#: The snapshot a revert from a backup takes first, to go back to on failure.
GUARD = "storctl-revert-guard"


def volume_of(snapshot: SnapshotObjectTO) -> VolumeObjectTO:
    if snapshot.volume is None:
        raise InvalidInput("snapshot", snapshot.uuid, "names no volume")
    return snapshot.volume


def rbd_snapshot(snapshot: SnapshotObjectTO) -> tuple[str, str]:
    """(image, snapshot) an RBD snapshot is: its path `image@snap`, else the
    volume's image and the snapshot's uuid."""
    if snapshot.path and "@" in snapshot.path:
        image, _, snap = snapshot.path.partition("@")
        return image_name(image), image_name(snap, "snapshot")
    return name_of(volume_of(snapshot)), image_name(snapshot.uuid, "snapshot")


def create_snapshot(
    pools: Pools, cmd: CreateObjectCommand, snapshot: SnapshotObjectTO
) -> Answer:
    """`createSnapshot`: a native RBD snapshot of the volume; a repeat finds it."""
    volume = volume_of(snapshot)
    ceph = pools.on(volume.dataStore)
    image, snap = name_of(volume), image_name(snapshot.uuid, "snapshot")
    size = ceph.existing(image).size
    if snap not in ceph.snapshots(image):
        ceph.snap_create(image, snap)
    data = snapshot.replace(path=f"{image}@{snap}", physicalSize=size)
    return CreateObjectAnswer(commandId=cmd.commandId, result=True, data=data)


def backup_snapshot(
    pools: Pools, cmd: CopyCommand, src: SnapshotObjectTO, dest: SnapshotObjectTO
) -> Answer:
    """`backupSnapshot`: the RBD snapshot as a full qcow2 on the image store; the
    RBD snapshot is kept (CloudStack's rule for RBD, whatever removeAfterCopy)."""
    ceph = pools.on(src.dataStore)
    root = store_root(dest.dataStore)
    volume = dest.volume or src.volume
    name = dest.path or snapshot_path(dest, volume.uuid if volume else None)
    final = contained(root, name)
    image, snap = rbd_snapshot(src)
    if pools.images.finished(final, "qcow2") is None and snap not in ceph.snapshots(
        image
    ):
        raise AgentFailure(f"snapshot {ceph.cluster.spec(image, snap)} not found")
    to_file(pools, ceph, (image, snap), final, root)
    new = dest.replace(
        path=name, physicalSize=final.stat().st_size, parentSnapshotPath=None
    )
    return CopyCmdAnswer(commandId=cmd.commandId, result=True, newData=new)


def revert_snapshot(pools: Pools, cmd: RevertSnapshotCommand) -> Answer:
    """`LibvirtRevertSnapshotCommandWrapper` on RBD: roll back to the snapshot if
    it is still on primary, else write its backup over the image."""
    snapshot = cmd.data
    volume = volume_of(snapshot)
    ceph = pools.on(volume.dataStore)
    image = name_of(volume)
    ceph.existing(image)
    snap = image_name(snapshot.uuid, "snapshot")
    if snap in ceph.snapshots(image):
        ceph.rollback(image, snap)
        return Answer(commandId=cmd.commandId, result=True, details="rbd snap rollback")
    on_primary = cmd.dataOnPrimaryStorage
    if is_rbd(snapshot.dataStore) or (on_primary is not None and on_rbd(on_primary)):
        raise AgentFailure(f"snapshot {ceph.cluster.spec(image, snap)} not found")
    root = store_root(snapshot.dataStore)
    backup = contained(root, snapshot.path or snapshot_path(snapshot, volume.uuid))
    pools.images.checked_source(backup, root, "qcow2", "snapshot")
    _write_back(pools, ceph, image, backup)
    return Answer(commandId=cmd.commandId, result=True, details="from the backup")


def _write_back(pools: Pools, ceph: Ceph, image: str, backup: Path) -> None:
    """The backup over the image, all or nothing: a guard snapshot first, rolled
    back to if anything fails, removed in the end either way."""
    size = pools.images.info(backup, "qcow2").virtual_size
    snaps = ceph.snapshots(image)
    if GUARD in snaps:  # a crashed earlier revert's: its data is the volume's
        ceph.rollback(image, GUARD)
        ceph.snap_remove(image, GUARD, protected=snaps[GUARD])
    ceph.snap_create(image, GUARD)
    try:
        if ceph.existing(image).size != size:
            ceph.resize(image, size, shrink=True)
        ceph.convert(str(backup), "qcow2", ceph.qemu(image), "raw", existing=True)
    except BaseException:
        # The guard goes only once the volume is back on it; else a repeat
        # finds it and rolls back first.
        if ceph.quietly(lambda: ceph.rollback(image, GUARD)):
            ceph.quietly(lambda: ceph.snap_remove(image, GUARD, protected=False))
        raise
    ceph.quietly(lambda: ceph.snap_remove(image, GUARD, protected=False))


def delete_snapshot(
    pools: Pools, cmd: DeleteCommand, snapshot: SnapshotObjectTO
) -> Answer:
    """`deleteSnapshot`: the RBD snapshot first (a backup outliving it still
    reverts), then the backup file when the command names one."""
    on_primary = _on_primary(pools, snapshot)
    if on_primary is not None:
        ceph, image, snap = on_primary
        snaps = ceph.snapshots(image)
        if snap in snaps:
            ceph.snap_remove(image, snap, protected=snaps[snap])
    if not is_rbd(snapshot.dataStore):
        root = store_root(snapshot.dataStore)
        target = contained(root, snapshot.path or snapshot_path(snapshot))
        if target.is_dir():
            raise AgentFailure(f"snapshot path {target} is a directory")
        remove_with_dir(target, root)
    return Answer(commandId=cmd.commandId, result=True)


def _on_primary(
    pools: Pools, snapshot: SnapshotObjectTO
) -> tuple[Ceph, str, str] | None:
    """Where the RBD snapshot of `snapshot` is (the command names it on primary,
    or names its backup with the volume on an RBD pool); None off RBD."""
    if is_rbd(snapshot.dataStore):
        return (pools.on(snapshot.dataStore), *rbd_snapshot(snapshot))
    volume = volume_of(snapshot)
    if not on_rbd(volume):
        return None
    return (
        pools.on(volume.dataStore),
        name_of(volume),
        image_name(snapshot.uuid, "snapshot"),
    )
