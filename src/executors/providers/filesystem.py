"""`filesystem`: a primary pool that is a directory on the host's own file system.

CloudStack's `StoragePoolType.Filesystem` (local storage, through the default primary
provider). The directory must exist when the pool is added: a pool registered on a
missing mount would fail every command sent to it later.
"""

from __future__ import annotations

from executors.providers.directory.driver import primary_pool

PROVIDER = primary_pool(
    "filesystem",
    recorded_as="Filesystem",
    summary="Primary pool on a local directory (CloudStack's Filesystem pool type).",
)
