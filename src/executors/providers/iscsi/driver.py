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
from executors.providers.driver import Handler, Operation, TableDriver
from executors.providers.iscsi import stats
from executors.providers.iscsi.copies import Copies
from executors.providers.iscsi.volumes import Volumes
from executors.providers.rbd.pools import on_rbd
from ledger.commands import Answer, Command, CopyCommand, VolumeObjectTO


def _on(method: Callable[..., Answer]) -> Handler:
    def handle(run: CommandRun, command: Command, *objects: Any) -> Answer:
        return method(Volumes(run), command, *objects)

    return handle


def _copying(method: Callable[..., Answer]) -> Handler:
    def handle(run: CommandRun, command: Command, *objects: Any) -> Answer:
        return method(Copies(Volumes(run)), command, *objects)

    return handle


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
        Operation.DELETE: _on(Volumes.delete),
        Operation.ATTACH: _on(Volumes.attach),
        Operation.DETACH: _on(Volumes.attach),
        Operation.RESIZE: _on(Volumes.resize),
        Operation.STORAGE_STATS: stats.storage_stats,
    },
)
