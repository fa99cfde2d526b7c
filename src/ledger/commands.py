"""The agent commands and answers, with CloudStack's class and field names.

`CreateObjectCommand`, `CopyCommand`, `DeleteCommand`, `AttachCommand`,
`DettachCommand` (sic), `DownloadCommand`, and their answers, with the transfer objects
(`VolumeObjectTO`, `TemplateObjectTO`, `SnapshotObjectTO`, `PrimaryDataStoreTO`,
`ImageStoreTO`, `DiskTO`). Field names keep CloudStack's camelCase so an operator
reading an event recognises the agent log line it stands for.

They live in the ledger, not in the executors, because a `...Requested` event carries
the command it asks for: the ledger decides what to send, the executors only send it.
They are pure data; `to_dict`/`from_dict` keep them JSON-simple inside events.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

# CloudStack's configuration defaults for the waits, in seconds (reference, section 10).
COPY_VOLUME_WAIT = 10800
PRIMARY_STORAGE_DOWNLOAD_WAIT = 10800
BACKUP_SNAPSHOT_WAIT = 21600
CREATE_TEMPLATE_WAIT = 10800
DEFAULT_WAIT = 1800  # the global `wait` a command of wait 0 gets

_REGISTRY: dict[str, type[Wire]] = {}


class Wire:
    """Base of every command, answer and TO: a dict codec tagged by `kind` (not
    `type`: CloudStack's `DiskTO` has a field of that name)."""

    kind: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.kind = cls.__name__
        _REGISTRY[cls.__name__] = cls

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        for name in _field_names(type(self)):
            out[name] = _encode(getattr(self, name))
        return out

    def replace(self, **changes: Any) -> Any:
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


def _encode(value: Any) -> Any:
    if isinstance(value, Wire):
        return value.to_dict()
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and value.get("kind") in _REGISTRY:
        return from_dict(value)
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def from_dict(data: dict[str, Any]) -> Any:
    cls = _REGISTRY[data["kind"]]
    names = _field_names(cls)
    return cls(**{k: _decode(v) for k, v in data.items() if k in names})


def _field_names(cls: type[Any]) -> tuple[str, ...]:
    """A Wire class's field names, in order (`dataclasses.fields` builds its tuple
    anew on every call, and commands are encoded and decoded for every request)."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


_FIELD_NAMES: dict[type[Any], tuple[str, ...]] = {}


# ----------------------------------------------------------------- data stores


@dataclass(frozen=True)
class PrimaryDataStoreTO(Wire):
    uuid: str
    name: str
    poolType: str
    path: str
    host: str = "localhost"
    port: int = 0
    role: str = "Primary"
    #: the name of the pool's credentials, resolved by the executor (never a secret)
    credentials: str | None = None


@dataclass(frozen=True)
class ImageStoreTO(Wire):
    uuid: str
    name: str
    uri: str
    providerName: str = "NFS"
    role: str = "Image"
    #: the name of the store's credentials, resolved by the executor
    credentials: str | None = None


DataStoreTO = PrimaryDataStoreTO | ImageStoreTO


# ----------------------------------------------------------------- data objects


@dataclass(frozen=True)
class VolumeObjectTO(Wire):
    uuid: str
    name: str
    volumeType: str
    size: int
    dataStore: PrimaryDataStoreTO | ImageStoreTO | None
    path: str | None = None
    format: str = "QCOW2"
    provisioningType: str = "THIN"
    vmName: str | None = None
    deviceId: int | None = None
    chainInfo: str | None = None
    objectType: str = "VOLUME"


@dataclass(frozen=True)
class TemplateObjectTO(Wire):
    uuid: str
    name: str
    format: str
    dataStore: PrimaryDataStoreTO | ImageStoreTO | None
    path: str | None = None
    size: int | None = None
    physicalSize: int | None = None
    checksum: str | None = None
    origUrl: str | None = None
    objectType: str = "TEMPLATE"


@dataclass(frozen=True)
class SnapshotObjectTO(Wire):
    uuid: str
    name: str
    volume: VolumeObjectTO | None
    dataStore: PrimaryDataStoreTO | ImageStoreTO | None
    path: str | None = None
    parentSnapshotPath: str | None = None
    physicalSize: int = 0
    objectType: str = "SNAPSHOT"


DataTO = VolumeObjectTO | TemplateObjectTO | SnapshotObjectTO


@dataclass(frozen=True)
class DiskTO(Wire):
    data: VolumeObjectTO
    diskSeq: int | None
    path: str | None
    type: str


# ----------------------------------------------------------------- commands


@dataclass(frozen=True)
class Command(Wire):
    """Every command has CloudStack's `wait` (s) and an id its answer repeats."""

    commandId: str


@dataclass(frozen=True)
class CreateObjectCommand(Command):
    data: DataTO
    wait: int = DEFAULT_WAIT


@dataclass(frozen=True)
class CopyCommand(Command):
    srcTO: DataTO
    destTO: DataTO
    wait: int = COPY_VOLUME_WAIT
    executeInSequence: bool = False
    options: dict[str, str] = field(default_factory=dict)
    #: CloudStack's staging store for a copy to an S3 or Swift store: the agent
    #: writes there first, then uploads (a snapshot's backup)
    cacheTO: ImageStoreTO | None = None


@dataclass(frozen=True)
class DeleteCommand(Command):
    data: DataTO
    wait: int = DEFAULT_WAIT


@dataclass(frozen=True)
class AttachCommand(Command):
    disk: DiskTO
    vmName: str
    wait: int = DEFAULT_WAIT
    vmId: str | None = None  # storctl: which VM record the answer attaches to


@dataclass(frozen=True)
class DettachCommand(Command):
    disk: DiskTO
    vmName: str
    wait: int = DEFAULT_WAIT


@dataclass(frozen=True)
class DownloadCommand(Command):
    """Template download into an image store (CloudStack runs it on the SSVM)."""

    url: str
    format: str
    name: str
    resourceType: str
    installPath: str
    store: ImageStoreTO
    checksum: str | None = None
    wait: int = PRIMARY_STORAGE_DOWNLOAD_WAIT
    #: what the download may read (`ledger.url_policy`), checked again by the
    #: agent at fetch time and at every redirect
    allowedRoots: list[str] = field(default_factory=list)
    allowedInternalSites: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RevertSnapshotCommand(Command):
    """Write a snapshot's data back over its volume (KVM: the VM must be stopped)."""

    data: SnapshotObjectTO
    dataOnPrimaryStorage: SnapshotObjectTO | None = None
    wait: int = COPY_VOLUME_WAIT


@dataclass(frozen=True)
class ResizeVolumeCommand(Command):
    """Grow (or, with `shrinkOk`, shrink) a volume's virtual size."""

    volume: VolumeObjectTO
    currentSize: int
    newSize: int
    shrinkOk: bool = False
    wait: int = DEFAULT_WAIT


@dataclass(frozen=True)
class GetStorageStatsCommand(Command):
    """How full a primary pool is, asked of a host that reaches it (CloudStack's
    StatsCollector sends it on a timer; `storctl pool stats` sends it on demand)."""

    store: PrimaryDataStoreTO
    wait: int = DEFAULT_WAIT


AnyCommand = (
    CreateObjectCommand
    | CopyCommand
    | DeleteCommand
    | AttachCommand
    | DettachCommand
    | DownloadCommand
    | RevertSnapshotCommand
    | ResizeVolumeCommand
    | GetStorageStatsCommand
)


# ----------------------------------------------------------------- answers


@dataclass(frozen=True)
class Answer(Wire):
    commandId: str
    result: bool
    details: str = ""


@dataclass(frozen=True)
class CreateObjectAnswer(Answer):
    data: DataTO | None = None


@dataclass(frozen=True)
class CopyCmdAnswer(Answer):
    newData: DataTO | None = None


@dataclass(frozen=True)
class AttachAnswer(Answer):
    disk: DiskTO | None = None


@dataclass(frozen=True)
class DettachAnswer(Answer):
    disk: DiskTO | None = None


@dataclass(frozen=True)
class DownloadAnswer(Answer):
    installPath: str | None = None
    templateSize: int = 0
    templatePhySicalSize: int = 0
    downloadStatus: str = "NOT_DOWNLOADED"
    downloadPct: int = 0
    checkSum: str | None = None


@dataclass(frozen=True)
class ResizeVolumeAnswer(Answer):
    newSize: int = 0


@dataclass(frozen=True)
class GetStorageStatsAnswer(Answer):
    capacityBytes: int = 0
    usedBytes: int = 0


def failure_for(command: Command, details: str) -> Answer:
    """The answer of the right class saying `result=false`, for any command."""
    answer_cls: type[Answer] = {
        "CreateObjectCommand": CreateObjectAnswer,
        "CopyCommand": CopyCmdAnswer,
        "AttachCommand": AttachAnswer,
        "DettachCommand": DettachAnswer,
        "DownloadCommand": DownloadAnswer,
        "ResizeVolumeCommand": ResizeVolumeAnswer,
        "GetStorageStatsCommand": GetStorageStatsAnswer,
    }.get(command.kind, Answer)
    return answer_cls(commandId=command.commandId, result=False, details=details)


def moved_bytes(command: Any) -> int | None:
    """How many bytes a command copies, when its transfer objects say so: the
    virtual size of what a `CopyCommand` reads, which is what `qemu-img convert
    -p` counts its progress in; None for commands that move no data, or whose
    size is learnt only on the way (a `DownloadCommand`'s URL)."""
    source = getattr(command, "srcTO", None)
    if source is None:
        return None
    if isinstance(source, SnapshotObjectTO):
        volume = source.volume
        return source.physicalSize or (volume.size if volume is not None else None)
    return getattr(source, "size", None) or getattr(source, "physicalSize", None)


def targets(command: Command) -> frozenset[str]:
    """The names and ids of the objects a command works on (its volumes,
    snapshots, templates, and a snapshot's volume): what a simulator fault aimed
    at one object is matched against (`simulator_plan`)."""
    found: set[str] = set()
    pending: list[Any] = [getattr(command, f.name) for f in dataclasses.fields(command)]
    while pending:
        value = pending.pop()
        if isinstance(value, DiskTO):
            pending.append(value.data)
        elif isinstance(value, VolumeObjectTO | TemplateObjectTO | SnapshotObjectTO):
            found.update((value.uuid, value.name))
            if isinstance(value, SnapshotObjectTO) and value.volume is not None:
                pending.append(value.volume)
    if isinstance(command, DownloadCommand):
        found.add(command.name)
    return frozenset(found)
