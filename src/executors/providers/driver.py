"""The agent-side half of a provider: CloudStack's `StorageProcessor`, as a table.

CloudStack's KVM agent routes each storage command (in
`StorageSubsystemCommandHandlerBase`) by the kinds of its data objects and stores to
one `StorageProcessor` method, and each backend implements those methods. Here the
agent's routing table (`executors.agents.kvm.ROUTES`) names the same methods as
`Operation`s, and a `Driver` is a table from each operation it does to the function
that does it. An operation missing from a driver's table is answered as unsupported,
not guessed at.
"""

from __future__ import annotations

import errno
import urllib.error
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from ledger.commands import Answer


class Operation(Enum):
    """One thing a driver does, named as CloudStack's `StorageProcessor` method."""

    DOWNLOAD = "downloadTemplate"  # the SSVM's DownloadCommand into an image store
    COPY_TEMPLATE_TO_PRIMARY = "copyTemplateToPrimaryStorage"
    #: CloudStack's managed storage (SolidFire): no base image on the pool, the
    #: template written whole into the volume's own LUN (its KVM agent does this in
    #: `copyTemplateToPrimaryStorage` when the destination is a managed volume)
    CREATE_VOLUME_FROM_TEMPLATE = "createVolumeFromTemplate"
    CLONE_VOLUME_FROM_BASE_TEMPLATE = "cloneVolumeFromBaseTemplate"
    COPY_VOLUME_PRIMARY_TO_PRIMARY = "copyVolumeFromPrimaryToPrimary"
    CREATE_VOLUME = "createVolume"
    DELETE = "deleteVolume"  # a volume, or a template copy (same steps)
    ATTACH = "attachVolume"
    DETACH = "dettachVolume"  # sic, CloudStack's spelling
    RESIZE = "resizeVolume"
    STORAGE_STATS = "getStorageStats"
    CREATE_SNAPSHOT = "createSnapshot"
    BACKUP_SNAPSHOT = "backupSnapshot"
    REVERT_SNAPSHOT = "revertSnapshot"
    CREATE_VOLUME_FROM_SNAPSHOT = "createVolumeFromSnapshot"
    CREATE_TEMPLATE_FROM_VOLUME = "createTemplateFromVolume"
    CREATE_TEMPLATE_FROM_SNAPSHOT = "createTemplateFromSnapshot"
    COPY_VOLUME_TO_SECONDARY = "copyVolumeFromPrimaryToSecondary"
    COPY_VOLUME_FROM_CACHE = "copyVolumeFromImageCacheToPrimary"
    DELETE_SNAPSHOT = "deleteSnapshot"
    # The SSVM's copies between an object store and a directory store (its
    # `copyFromS3ToNfs`, `copyFromNfsToS3`, and Swift's): the staging cache's
    # copy of a template, and the two hops of a command that names a `cacheTO`.
    COPY_BETWEEN_IMAGE_STORES = "copyBetweenImageStores"


#: `handler(run, command, *objects)`: `run` is the command's `CommandRun`; `objects`
#: are the data objects the route picked out (a CopyCommand's source and destination,
#: or the one object a create or delete names; none for the other commands).
Handler = Callable[..., Answer]


class Driver(Protocol):
    """What the KVM agent needs of a provider's driver.

    - `name`: several providers may share one driver (the four directory providers
      all run on the directory driver). A command whose stores belong to providers
      with different drivers goes to the one that is not the directory driver
      (which then reads and writes directories itself), or, of two such, to the
      destination's; the KVM agent's `_driver_for` is the rule.
    - `handlers`: each operation it does, and the function that does it. A handler
      raises `AgentFailure` or `InvalidInput` with the operator's one line, or
      returns the answer; the agent turns anything raised into `result=false`.
    """

    @property
    def name(self) -> str: ...

    @property
    def handlers(self) -> Mapping[Operation, Handler]: ...


class AgentFailure(Exception):
    """An operation failed for a reason its message already states in full."""


def os_error_line(exc: OSError) -> str:
    """The operator's line for an OS error: what failed, on which file, and
    "insufficient space" first when the disk is full, as CloudStack words it."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"download failed: HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return f"download failed: {exc.reason}"
    where = f": {exc.filename}" if exc.filename else ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"insufficient space: {exc.strerror}{where}"
    return f"{exc.strerror or exc}{where}"


@dataclass(frozen=True)
class TableDriver:
    """A driver that is nothing but its table (the built-in drivers are)."""

    name: str
    handlers: Mapping[Operation, Handler]
