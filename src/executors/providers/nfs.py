"""`nfs`: an image store (secondary storage) that is a mounted NFS export.

CloudStack's default image store provider ("NFS"), which the SSVM mounts to download
templates and the hosts mount to read them and to back up snapshots. storctl takes
the mount point; it must exist when the store is added, since a missing one would
fail every template registration in the zone.
"""

from __future__ import annotations

from executors.providers.directory.driver import DRIVER
from executors.providers.locations import existing_directory
from executors.providers.provider import Capabilities, Provider, Role

PROVIDER = Provider(
    name="nfs",
    roles=frozenset({Role.IMAGE}),
    recorded_as="NFS",
    schemes=("file",),
    validate=existing_directory,
    capabilities=Capabilities(
        linked_clones=False,
        native_snapshots=False,
        needs_staging_cache=False,
        scopes=frozenset({"zone"}),
    ),
    driver=DRIVER,
    summary="Image store on a mounted NFS export (CloudStack's NFS secondary).",
)
