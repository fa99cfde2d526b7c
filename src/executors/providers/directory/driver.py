"""The directory driver's table: each operation, and the method that does it.

One driver serves every provider whose pools and stores are mounted directories
(`filesystem`, `sharedmountpoint`, `networkfilesystem`, `nfs`): the data path is
`qemu-img` on files, and every path stays inside its root (`paths.contained`)
whatever a name contains. Each handler builds the operation's object on the
command's run and calls it, so an operation holds no state between commands.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from executors.providers.command_run import CommandRun
from executors.providers.directory import stats
from executors.providers.directory.images import Images
from executors.providers.directory.inventory import list_pool
from executors.providers.directory.snapshot_copies import SnapshotCopies
from executors.providers.directory.snapshots import Snapshots
from executors.providers.directory.templates import Templates
from executors.providers.directory.volumes import Volumes
from executors.providers.driver import Handler, Operation, TableDriver
from executors.providers.locations import directory_place, existing_directory
from executors.providers.provider import SCOPES, Capabilities, Provider, Role
from ledger.commands import Answer, Command, GetStorageStatsCommand


def _on(kind: Callable[[Images], Any], method: Callable[..., Answer]) -> Handler:
    """A handler that runs `method` of a `kind` bound to the command's run."""

    def handle(run: CommandRun, command: Command, *objects: Any) -> Answer:
        return method(kind(Images(run)), command, *objects)

    return handle


def _storage_stats(run: CommandRun, command: GetStorageStatsCommand) -> Answer:
    return stats.storage_stats(command)


DRIVER = TableDriver(
    name="directory",
    handlers={
        Operation.DOWNLOAD: _on(Templates, Templates.download),
        Operation.COPY_TEMPLATE_TO_PRIMARY: _on(
            Templates, Templates.copy_template_to_primary
        ),
        Operation.CLONE_VOLUME_FROM_BASE_TEMPLATE: _on(
            Volumes, Volumes.clone_from_base_template
        ),
        Operation.COPY_VOLUME_PRIMARY_TO_PRIMARY: _on(
            Volumes, Volumes.copy_volume_to_primary
        ),
        Operation.CREATE_VOLUME: _on(Volumes, Volumes.create_volume),
        Operation.DELETE: _on(Volumes, Volumes.delete),
        Operation.ATTACH: _on(Volumes, Volumes.check_disk),
        Operation.DETACH: _on(Volumes, Volumes.check_disk),
        Operation.RESIZE: _on(Volumes, Volumes.resize),
        Operation.STORAGE_STATS: _storage_stats,
        Operation.CREATE_SNAPSHOT: _on(Snapshots, Snapshots.create_snapshot),
        Operation.BACKUP_SNAPSHOT: _on(Snapshots, Snapshots.backup_snapshot),
        Operation.REVERT_SNAPSHOT: _on(Snapshots, Snapshots.revert_snapshot),
        Operation.DELETE_SNAPSHOT: _on(Snapshots, Snapshots.delete_snapshot),
        Operation.CREATE_VOLUME_FROM_SNAPSHOT: _on(
            SnapshotCopies, SnapshotCopies.volume_from_snapshot
        ),
        Operation.CREATE_TEMPLATE_FROM_VOLUME: _on(
            SnapshotCopies, SnapshotCopies.create_template
        ),
        Operation.CREATE_TEMPLATE_FROM_SNAPSHOT: _on(
            SnapshotCopies, SnapshotCopies.create_template
        ),
        Operation.COPY_VOLUME_TO_SECONDARY: _on(
            SnapshotCopies, SnapshotCopies.stage_volume
        ),
        Operation.COPY_VOLUME_FROM_CACHE: _on(
            SnapshotCopies, SnapshotCopies.unstage_volume
        ),
    },
)


def primary_pool(name: str, recorded_as: str, summary: str) -> Provider:
    """A primary-pool provider whose pool is a mounted directory: what
    `filesystem`, `sharedmountpoint` and `networkfilesystem` share (the directory
    must exist when the pool is added, any scope, linked clones by qcow2
    backing files); they differ in CloudStack's pool type and in who mounts it."""
    return Provider(
        name=name,
        roles=frozenset({Role.PRIMARY}),
        recorded_as=recorded_as,
        schemes=("file",),
        validate=existing_directory,
        capabilities=Capabilities(
            linked_clones=True,
            native_snapshots=False,
            needs_staging_cache=False,
            scopes=frozenset(SCOPES),
        ),
        driver=DRIVER,
        summary=summary,
        inventory=list_pool,
        place=directory_place,
    )
