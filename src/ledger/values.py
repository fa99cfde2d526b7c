"""Value types of the storage domain: CloudStack's enums, sizes and derived ids.

States are plain `Enum`s (never `str, Enum`, which the JSON transcoder hands back as
`str`), each with a `Transcoding` (`ledger.transcodings`) so events can carry them;
this module imports no eventsourcing, so the CLI's read side can use its sizes.
Names are CloudStack's (`Volume.State`, `StoragePoolStatus`, ...).
"""

from __future__ import annotations

import functools
import re
import uuid
from enum import Enum
from typing import Any

from ledger.errors import InvalidInput

GiB = 1 << 30
MiB = 1 << 20

#: Namespace for ids derived from other ids (uuid5), so "the copy of template T on
#: pool P" has one id whoever asks first, and concurrent requests collide in the store.
STORCTL_NS = uuid.UUID("6f1d3a52-3b0e-4c8e-9d8e-5b1b2c3d4e5f")


#: The shortest id prefix taken for an id: git's minimum; 4 hex digits are 65,536
#: values, so a ledger's few thousand objects rarely need more than 6 or 8.
MIN_ID_PREFIX = 4
_ID_PREFIX = re.compile(r"[0-9a-fA-F][0-9a-fA-F-]*")


def is_id_prefix(text: str) -> bool:
    """Whether `text` may abbreviate an id: hex digits (and dashes where a UUID
    has them), at least `MIN_ID_PREFIX` long, and no longer than a UUID."""
    return MIN_ID_PREFIX <= len(text) <= 36 and bool(_ID_PREFIX.fullmatch(text))


def derived_id(*parts: object) -> uuid.UUID:
    return _derived("/".join(str(p) for p in parts))


@functools.lru_cache(maxsize=4096)
def _derived(name: str) -> uuid.UUID:
    """uuid5 hashes with SHA-1 each time; the same few names (zones, copies of a
    template) are asked for on every operation."""
    return uuid.uuid5(STORCTL_NS, name)


class VolumeState(Enum):
    Allocated = "Allocated"
    Creating = "Creating"
    Ready = "Ready"
    Migrating = "Migrating"
    Snapshotting = "Snapshotting"
    RevertSnapshotting = "RevertSnapshotting"
    Resizing = "Resizing"
    Expunging = "Expunging"
    Expunged = "Expunged"
    Destroy = "Destroy"
    Destroying = "Destroying"
    UploadOp = "UploadOp"
    Copying = "Copying"
    Uploaded = "Uploaded"
    NotUploaded = "NotUploaded"
    UploadInProgress = "UploadInProgress"
    UploadError = "UploadError"
    UploadAbandoned = "UploadAbandoned"
    Attaching = "Attaching"
    Restoring = "Restoring"


class SnapshotState(Enum):
    Allocated = "Allocated"
    Creating = "Creating"
    CreatedOnPrimary = "CreatedOnPrimary"
    BackingUp = "BackingUp"
    BackedUp = "BackedUp"
    Copying = "Copying"
    Destroying = "Destroying"
    Destroyed = "Destroyed"
    Hidden = "Hidden"
    Error = "Error"


class ObjectInStoreState(Enum):
    """CloudStack's `ObjectInDataStoreStateMachine.State`: one copy in one store."""

    Allocated = "Allocated"
    Creating2 = "Creating2"
    Creating = "Creating"
    Created = "Created"
    Ready = "Ready"
    Copying = "Copying"
    Migrating = "Migrating"
    Migrated = "Migrated"
    Destroying = "Destroying"
    Destroyed = "Destroyed"
    Failed = "Failed"
    Hidden = "Hidden"


class TemplateState(Enum):
    Active = "Active"
    Inactive = "Inactive"
    NotUploaded = "NotUploaded"
    UploadInProgress = "UploadInProgress"
    UploadError = "UploadError"
    UploadAbandoned = "UploadAbandoned"


class PoolStatus(Enum):
    """CloudStack's `StoragePoolStatus`; only `Up` pools take new volumes."""

    Initial = "Initial"
    Initialized = "Initialized"
    Creating = "Creating"
    Attaching = "Attaching"
    Up = "Up"
    PrepareForMaintenance = "PrepareForMaintenance"
    ErrorInMaintenance = "ErrorInMaintenance"
    CancelMaintenance = "CancelMaintenance"
    Maintenance = "Maintenance"
    Disabled = "Disabled"
    Removed = "Removed"


class HostState(Enum):
    Up = "Up"
    Disabled = "Disabled"
    Down = "Down"


class VmState(Enum):
    Stopped = "Stopped"
    Running = "Running"
    Destroyed = "Destroyed"
    Expunging = "Expunging"


class Scope(Enum):
    ZONE = "ZONE"
    CLUSTER = "CLUSTER"
    HOST = "HOST"


class PoolType(Enum):
    """CloudStack's `StoragePoolType` names for the pools storctl's providers serve."""

    Filesystem = "Filesystem"
    SharedMountPoint = "SharedMountPoint"
    NetworkFilesystem = "NetworkFilesystem"
    Simulator = "Simulator"
    RBD = "RBD"
    Iscsi = "Iscsi"


class Hypervisor(Enum):
    KVM = "KVM"
    Simulator = "Simulator"


class VolumeType(Enum):
    ROOT = "ROOT"
    DATADISK = "DATADISK"


class ImageFormat(Enum):
    QCOW2 = "QCOW2"
    RAW = "RAW"


class DataObjectType(Enum):
    TEMPLATE = "TEMPLATE"
    SNAPSHOT = "SNAPSHOT"
    VOLUME = "VOLUME"


class StoreRole(Enum):
    """CloudStack's `DataStoreRole`: primary, image (secondary), and the staging
    cache (`ImageCache`) an S3 or Swift store's data passes through."""

    Primary = "Primary"
    Image = "Image"
    ImageCache = "ImageCache"


class JobStatus(Enum):
    pending = "pending"
    succeeded = "succeeded"
    failed = "failed"


ALL_ENUMS: tuple[type[Enum], ...] = (
    VolumeState,
    SnapshotState,
    ObjectInStoreState,
    TemplateState,
    PoolStatus,
    HostState,
    VmState,
    Scope,
    PoolType,
    Hypervisor,
    VolumeType,
    ImageFormat,
    DataObjectType,
    StoreRole,
    JobStatus,
)


def parse_enum(enum_type: type[Enum], text: str, what: str) -> Any:
    """Case-insensitive lookup by name or value, refusing with the choices named."""
    for member in enum_type:
        if text.lower() in (member.name.lower(), str(member.value).lower()):
            return member
    choices = ", ".join(m.name for m in enum_type)
    raise InvalidInput(what, text, f"expected one of {choices}")


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B?)?\s*$", re.IGNORECASE)
#: The largest size taken (1 EiB): thousands of them still sum within 2^63 - 1.
MAX_SIZE = 1 << 60
_UNITS = {"": 1, "K": 1 << 10, "M": MiB, "G": GiB, "T": 1 << 40}


def parse_size(text: str | int, minimum: int = MiB, what: str = "size") -> int:
    """Sizes as operators type them: `10G`, `512M`, `10GiB` or bytes; G == GiB."""
    if isinstance(text, int):
        value = text
    else:
        m = _SIZE.match(text)
        if not m:
            raise InvalidInput(
                what, str(text), "expected bytes or a size like 10G, 512M"
            )
        number, unit = m.group(1), m.group(2).upper()
        bytes_ = float(number) * _UNITS[unit]
        if bytes_ > MAX_SIZE:  # also inf; a sum of these must fit a 64-bit column
            raise InvalidInput(
                what, str(text), f"must be at most {format_size(MAX_SIZE)}"
            )
        if bytes_ != int(bytes_):
            raise InvalidInput(what, str(text), "not a whole number of bytes")
        value = int(bytes_)
    if value < minimum:
        raise InvalidInput(what, str(text), f"must be at least {format_size(minimum)}")
    if value > MAX_SIZE:
        raise InvalidInput(what, str(text), f"must be at most {format_size(MAX_SIZE)}")
    return value


def format_size(n: int) -> str:
    for unit, factor in (("TiB", 1 << 40), ("GiB", GiB), ("MiB", MiB), ("KiB", 1024)):
        if abs(n) >= factor:
            value = n / factor
            return (
                f"{value:.0f} {unit}" if value == int(value) else f"{value:.2f} {unit}"
            )
    return f"{n} B"
