"""`GetStorageStatsCommand` on an iSCSI pool: what its LUN files occupy on disk.

The LUN files are sparse, so a pool's physical use is the blocks they hold (the
same measure as a directory pool's, `directory.stats.used_bytes`), in the pool's
own folder of the LUN directory; the capacity is that of the LUN directory's file
system, where tgtd writes.
"""

from __future__ import annotations

import os

from executors.paths import contained
from executors.providers.command_run import CommandRun
from executors.providers.directory.stats import used_bytes
from executors.providers.iscsi.layout import canonical_uuid
from executors.providers.iscsi.location import profile_of
from ledger.commands import GetStorageStatsAnswer, GetStorageStatsCommand


def storage_stats(
    run: CommandRun, cmd: GetStorageStatsCommand
) -> GetStorageStatsAnswer:
    profile = profile_of(cmd.store)
    root = contained(profile.lun_dir, canonical_uuid(cmd.store.uuid, "pool uuid"))
    fs = os.statvfs(profile.lun_dir)
    return GetStorageStatsAnswer(
        commandId=cmd.commandId,
        result=True,
        details=f"{root}: allocated blocks of its LUN files",
        capacityBytes=fs.f_blocks * fs.f_frsize,
        usedBytes=used_bytes(root) if root.is_dir() else 0,
    )
