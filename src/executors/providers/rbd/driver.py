"""The rbd driver's table: each operation, and the function that does it.

A command reaches this driver when one of its stores is an RBD pool (the KVM
agent's rule: the one non-directory driver of a command takes it). The stores it
writes or reads may still all be directories: a template made from a snapshot's
backup, a volume of an RBD pool's snapshot restored onto a filesystem pool, the
backup's deletion. Each handler therefore looks at the stores the command acts on
(not the volume a snapshot merely names) and hands a command with no RBD pool
among them to the directory driver, which does it as it always has; the rbd
driver reads and writes directories itself only where an RBD image is at the
other end.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from executors.providers import block_copies
from executors.providers.command_run import CommandRun
from executors.providers.directory.driver import DRIVER as DIRECTORY
from executors.providers.driver import Handler, Operation, TableDriver
from executors.providers.iscsi.volumes import is_iscsi
from executors.providers.rbd import copies, snapshots, volumes
from executors.providers.rbd.pools import Pools, is_rbd
from ledger.commands import (
    Answer,
    AttachCommand,
    Command,
    CopyCommand,
    CreateObjectCommand,
    DataStoreTO,
    DeleteCommand,
    DettachCommand,
    GetStorageStatsCommand,
    ResizeVolumeCommand,
    RevertSnapshotCommand,
    SnapshotObjectTO,
    VolumeObjectTO,
)


def acted_on(command: Command) -> Iterator[DataStoreTO | None]:
    """The stores `command` reads or writes: a copy's two ends, the object a
    create or delete names (and, for a snapshot's deletion, its volume's pool,
    where the RBD snapshot is), the volume a revert, resize, attach or detach
    changes, the pool a stats command measures."""
    if isinstance(command, CopyCommand):
        yield command.srcTO.dataStore
        yield command.destTO.dataStore
    elif isinstance(command, CreateObjectCommand | DeleteCommand):
        yield command.data.dataStore
        if isinstance(command, DeleteCommand) and isinstance(
            command.data, SnapshotObjectTO
        ):
            yield command.data.volume.dataStore if command.data.volume else None
    elif isinstance(command, RevertSnapshotCommand):
        yield command.data.volume.dataStore if command.data.volume else None
    elif isinstance(command, ResizeVolumeCommand):
        yield command.volume.dataStore
    elif isinstance(command, AttachCommand | DettachCommand):
        yield command.disk.data.dataStore
    elif isinstance(command, GetStorageStatsCommand):
        yield command.store


def _on(operation: Operation, function: Callable[..., Answer]) -> Handler:
    """`function(pools, command, *objects)` when the command acts on an RBD pool,
    the directory driver's handler for `operation` when it does not."""
    directory = DIRECTORY.handlers.get(operation)

    def handle(run: CommandRun, command: Command, *objects: Any) -> Answer:
        if directory is not None and not any(map(is_rbd, acted_on(command))):
            return directory(run, command, *objects)
        with contextlib.ExitStack() as stack:
            return function(Pools(run, stack), command, *objects)

    return handle


def _copy_volume(
    pools: Pools, cmd: CopyCommand, src: VolumeObjectTO, dest: VolumeObjectTO
) -> Answer:
    """A migration onto the pool from an iSCSI pool is one convert between the
    backends (`block_copies`); from a directory or RBD, `volumes`."""
    if is_iscsi(src.dataStore):
        return block_copies.iscsi_to_rbd(pools, cmd, src, dest)
    return volumes.copy_volume_to_primary(pools, cmd, src, dest)


#: What each operation runs on an RBD pool (the modules say how).
FUNCTIONS: dict[Operation, Callable[..., Answer]] = {
    Operation.COPY_TEMPLATE_TO_PRIMARY: copies.copy_template_to_primary,
    Operation.CLONE_VOLUME_FROM_BASE_TEMPLATE: volumes.clone_from_base_template,
    Operation.COPY_VOLUME_PRIMARY_TO_PRIMARY: _copy_volume,
    Operation.CREATE_VOLUME: volumes.create_volume,
    Operation.DELETE: volumes.delete,
    Operation.ATTACH: volumes.check_disk,
    Operation.DETACH: volumes.check_disk,
    Operation.RESIZE: volumes.resize,
    Operation.STORAGE_STATS: volumes.storage_stats,
    Operation.CREATE_SNAPSHOT: snapshots.create_snapshot,
    Operation.BACKUP_SNAPSHOT: snapshots.backup_snapshot,
    Operation.REVERT_SNAPSHOT: snapshots.revert_snapshot,
    Operation.DELETE_SNAPSHOT: snapshots.delete_snapshot,
    Operation.CREATE_VOLUME_FROM_SNAPSHOT: copies.volume_from_snapshot,
    Operation.CREATE_TEMPLATE_FROM_VOLUME: copies.create_template,
    Operation.CREATE_TEMPLATE_FROM_SNAPSHOT: copies.create_template,
    Operation.COPY_VOLUME_TO_SECONDARY: copies.stage_volume,
    Operation.COPY_VOLUME_FROM_CACHE: copies.unstage_volume,
}

DRIVER = TableDriver(
    name="rbd", handlers={op: _on(op, fn) for op, fn in FUNCTIONS.items()}
)
