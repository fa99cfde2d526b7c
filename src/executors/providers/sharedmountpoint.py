"""`sharedmountpoint`: a primary pool on a directory every host mounts at one path.

CloudStack's `StoragePoolType.SharedMountPoint` (a cluster file system such as OCFS2
or GFS2, mounted by the hosts themselves). To the agent it is a directory like any
other; it must exist on this machine when the pool is added.
"""

from __future__ import annotations

from executors.providers.directory.driver import DRIVER
from executors.providers.locations import existing_directory
from executors.providers.provider import SCOPES, Capabilities, Provider, Role

PROVIDER = Provider(
    name="sharedmountpoint",
    roles=frozenset({Role.PRIMARY}),
    recorded_as="SharedMountPoint",
    schemes=("file",),
    validate=existing_directory,
    capabilities=Capabilities(
        linked_clones=True,
        native_snapshots=False,
        needs_staging_cache=False,
        scopes=frozenset(SCOPES),
    ),
    driver=DRIVER,
    summary="Primary pool on a directory shared by the hosts (SharedMountPoint).",
)
