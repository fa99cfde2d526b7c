"""`filesystem`: a primary pool that is a directory on the host's own file system.

CloudStack's `StoragePoolType.Filesystem` (local storage, through the default primary
provider). The directory must exist when the pool is added: a pool registered on a
missing mount would fail every command sent to it later.
"""

from __future__ import annotations

from executors.providers.directory.driver import DRIVER
from executors.providers.locations import existing_directory
from executors.providers.provider import SCOPES, Capabilities, Provider, Role

PROVIDER = Provider(
    name="filesystem",
    roles=frozenset({Role.PRIMARY}),
    recorded_as="Filesystem",
    schemes=("file",),
    validate=existing_directory,
    capabilities=Capabilities(
        linked_clones=True,
        native_snapshots=False,
        needs_staging_cache=False,
        scopes=frozenset(SCOPES),
    ),
    driver=DRIVER,
    summary="Primary pool on a local directory (CloudStack's Filesystem pool type).",
)
