"""`GetStorageStatsCommand` on a KVM host: how much of a pool's directory is in use.

CloudStack's libvirt agent answers with the storage pool's allocation as libvirt
sees it. A storctl pool is a directory with a declared capacity (several pools may
share one filesystem), so its physical use is what its own files occupy on disk:
allocated blocks, not apparent sizes, since sparse qcow2 files are the rule.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from executors.paths import pool_root
from ledger.commands import GetStorageStatsAnswer, GetStorageStatsCommand


def storage_stats(cmd: GetStorageStatsCommand) -> GetStorageStatsAnswer:
    root = pool_root(cmd.store)
    fs = os.statvfs(root)
    return GetStorageStatsAnswer(
        commandId=cmd.commandId,
        result=True,
        details=f"{root}: allocated blocks of its files",
        capacityBytes=fs.f_blocks * fs.f_frsize,
        usedBytes=used_bytes(root),
    )


def used_bytes(root: Path) -> int:
    """Bytes allocated on disk to the regular files under `root` (symlinks are not
    followed, so nothing outside the pool is counted)."""
    total = 0
    pending = [str(root)]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(info.st_mode):
                    pending.append(entry.path)
                elif stat.S_ISREG(info.st_mode):
                    total += info.st_blocks * 512
    return total
