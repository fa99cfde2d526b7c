"""`networkfilesystem`: a primary pool on an NFS export, mounted as a directory.

CloudStack's `StoragePoolType.NetworkFilesystem`, whose agent mounts
`nfs://server/export` at `/mnt/<pool uuid>`. storctl takes the mount point itself
(mounting is the host's business), so it must exist when the pool is added.
"""

from __future__ import annotations

from executors.providers.directory.driver import primary_pool

PROVIDER = primary_pool(
    "networkfilesystem",
    recorded_as="NetworkFilesystem",
    summary="Primary pool on a mounted NFS export (NetworkFilesystem).",
)
