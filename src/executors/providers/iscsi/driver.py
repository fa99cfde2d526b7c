"""The iSCSI driver's table: each operation, and the method that does it.

Every handler builds `Volumes` on the command's run (its runner, deadline and
progress) and calls one method, so nothing is kept between commands: what tgtd
holds is read from tgtd each time (`targets`), what the disk holds from the disk.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from executors.providers import block_copies
from executors.providers.command_run import CommandRun
from executors.providers.directory.driver import DRIVER as DIRECTORY
from executors.providers.driver import Handler, Operation, TableDriver
from executors.providers.iscsi import stats
from executors.providers.iscsi.copies import Copies
from executors.providers.iscsi.snapshots import Snapshots
from executors.providers.iscsi.volumes import Volumes, is_iscsi
from executors.providers.rbd.driver import acted_on
from executors.providers.rbd.pools import on_rbd
from ledger.commands import (
    Answer,
    Command,
    CopyCommand,
    DeleteCommand,
    SnapshotObjectTO,
    VolumeObjectTO,
)


def _on(method: Callable[..., Answer]) -> Handler:
    def handle(run: CommandRun, command: Command, *objects: Any) -> Answer:
        return method(Volumes(run), command, *objects)

    return handle


def _copying(method: Callable[..., Answer]) -> Handler:
    def handle(run: CommandRun, command: Command, *objects: Any) -> Answer:
        return method(Copies(Volumes(run)), command, *objects)

    return handle


def _snapshots(operation: Operation, method: Callable[..., Answer]) -> Handler:
    """`method` of `Snapshots` when the command acts on an iSCSI pool; the
    directory driver's handler when all it touches are directories (a template
    or a volume on a directory pool made from an iSCSI volume's backup)."""
    directory = DIRECTORY.handlers.get(operation)

    def handle(run: CommandRun, command: Command, *objects: Any) -> Answer:
        if directory is not None and not any(map(is_iscsi, acted_on(command))):
            return directory(run, command, *objects)
        return method(Snapshots(Volumes(run)), command, *objects)

    return handle


def _delete_snapshot(
    run: CommandRun, command: DeleteCommand, snapshot: SnapshotObjectTO
) -> Answer:
    """Nothing of a snapshot stays on the pool; its backup goes as a file."""
    if is_iscsi(snapshot.dataStore):
        return Answer(commandId=command.commandId, result=True)
    return DIRECTORY.handlers[Operation.DELETE_SNAPSHOT](run, command, snapshot)


def _copy_volume(
    run: CommandRun, cmd: CopyCommand, src: VolumeObjectTO, dest: VolumeObjectTO
) -> Answer:
    """A migration onto the pool from RBD is one convert between the backends."""
    if on_rbd(src):
        return block_copies.rbd_to_iscsi(run, cmd, src, dest)
    return Copies(Volumes(run)).copy_volume(cmd, src, dest)


DRIVER = TableDriver(
    name="iscsi",
    handlers={
        Operation.CREATE_VOLUME: _on(Volumes.create_volume),
        Operation.CREATE_VOLUME_FROM_TEMPLATE: _on(Volumes.create_from_template),
        Operation.COPY_VOLUME_PRIMARY_TO_PRIMARY: _copy_volume,
        Operation.COPY_VOLUME_TO_SECONDARY: _copying(Copies.stage_volume),
        Operation.COPY_VOLUME_FROM_CACHE: _copying(Copies.unstage_volume),
        Operation.CREATE_SNAPSHOT: _snapshots(
            Operation.CREATE_SNAPSHOT, Snapshots.create_snapshot
        ),
        Operation.BACKUP_SNAPSHOT: _snapshots(
            Operation.BACKUP_SNAPSHOT, Snapshots.backup_snapshot
        ),
        Operation.REVERT_SNAPSHOT: _snapshots(
            Operation.REVERT_SNAPSHOT, Snapshots.revert_snapshot
        ),
        Operation.DELETE_SNAPSHOT: _delete_snapshot,
        Operation.CREATE_VOLUME_FROM_SNAPSHOT: _snapshots(
            Operation.CREATE_VOLUME_FROM_SNAPSHOT, Snapshots.volume_from_snapshot
        ),
        Operation.CREATE_TEMPLATE_FROM_VOLUME: _snapshots(
            Operation.CREATE_TEMPLATE_FROM_VOLUME, Snapshots.template_from_volume
        ),
        Operation.CREATE_TEMPLATE_FROM_SNAPSHOT: _snapshots(
            Operation.CREATE_TEMPLATE_FROM_SNAPSHOT, Snapshots.template_from_volume
        ),
        Operation.DELETE: _on(Volumes.delete),
        Operation.ATTACH: _on(Volumes.attach),
        Operation.DETACH: _on(Volumes.attach),
        Operation.RESIZE: _on(Volumes.resize),
        Operation.STORAGE_STATS: stats.storage_stats,
    },
)
