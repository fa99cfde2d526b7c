"""`sharedmountpoint`: a primary pool on a directory every host mounts at one path.

CloudStack's `StoragePoolType.SharedMountPoint` (a cluster file system such as OCFS2
or GFS2, mounted by the hosts themselves). To the agent it is a directory like any
other; it must exist on this machine when the pool is added.
"""

from __future__ import annotations

from executors.providers.directory.driver import primary_pool

PROVIDER = primary_pool(
    "sharedmountpoint",
    recorded_as="SharedMountPoint",
    summary="Primary pool on a directory shared by the hosts (SharedMountPoint).",
)
