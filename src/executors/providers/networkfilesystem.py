"""`networkfilesystem`: a primary pool on an NFS export, mounted as a directory.

CloudStack's `StoragePoolType.NetworkFilesystem`, whose agent mounts
`nfs://server/export` at `/mnt/<pool uuid>`. storctl takes the mount point itself
(mounting is the host's business), so it must exist when the pool is added.
"""

from __future__ import annotations

from executors.providers.directory.driver import DRIVER
from executors.providers.locations import existing_directory
from executors.providers.provider import SCOPES, Capabilities, Provider, Role

PROVIDER = Provider(
    name="networkfilesystem",
    roles=frozenset({Role.PRIMARY}),
    recorded_as="NetworkFilesystem",
    schemes=("file",),
    validate=existing_directory,
    capabilities=Capabilities(
        linked_clones=True,
        native_snapshots=False,
        needs_staging_cache=False,
        scopes=frozenset(SCOPES),
    ),
    driver=DRIVER,
    summary="Primary pool on a mounted NFS export (NetworkFilesystem).",
)
