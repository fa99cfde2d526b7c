"""The KVM agent's storage side: each command routed, through one table, to the driver
of the provider its stores belong to.

CloudStack's KVM agent hands every storage command to
`StorageSubsystemCommandHandlerBase`, which looks at the kinds of the command's data
objects and of their stores and calls one `StorageProcessor` method of the backend.
`ROUTES` is that table: a command's shape to an `Operation`. The backend is found
from the command's stores (`PrimaryDataStoreTO.poolType`, `ImageStoreTO.providerName`)
in the provider registry. Which driver takes a command whose stores belong to
providers with different drivers is decided in one place, `_driver_for`:

- one driver for every store: that one (the directory driver reads an NFS image
  store and a Filesystem pool alike);
- the directory driver and one other: the other, which reads and writes
  directories itself (the rbd driver backs an RBD snapshot up to an NFS store and
  migrates a volume between an RBD pool and a Filesystem pool);
- two drivers other than the directory driver: the destination's (a copy's
  `destTO`, the object a create or delete names), if it is one of them;
  else the command is refused, since no driver reads both.

`handle` never raises: an unknown provider, an operation the driver does not do, a
timeout, a full disk or a bug is an answer with `result=false` and one line for the
operator, which the dispatcher records like any other answer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

from executors.agents import cache_hops
from executors.providers.command_run import CommandRun
from executors.providers.driver import AgentFailure, Driver, Operation, os_error_line
from executors.providers.registry import Registry, installed
from executors.runner import CommandTimedOut, ProgressCallback, Runner, SubprocessRunner
from ledger.commands import (
    DEFAULT_WAIT,
    Answer,
    AttachCommand,
    Command,
    CopyCommand,
    CreateObjectCommand,
    DataTO,
    DeleteCommand,
    DettachCommand,
    DownloadCommand,
    GetStorageStatsCommand,
    ImageStoreTO,
    PrimaryDataStoreTO,
    ResizeVolumeCommand,
    RevertSnapshotCommand,
    SnapshotObjectTO,
    TemplateObjectTO,
    VolumeObjectTO,
    Wire,
    failure_for,
)
from ledger.errors import InvalidInput

_PRIMARY = (PrimaryDataStoreTO,)
_IMAGE = (ImageStoreTO,)
_EITHER = (PrimaryDataStoreTO, ImageStoreTO)


@dataclass(frozen=True)
class Shape:
    """What a route asks of one data object: its kind, and its store's kind
    (`stores=None`: any store, or none)."""

    objects: tuple[type[Wire], ...]
    stores: tuple[type[Wire], ...] | None = None

    def fits(self, data: object) -> bool:
        if not isinstance(data, self.objects):
            return False
        return self.stores is None or isinstance(
            getattr(data, "dataStore", None), self.stores
        )


@dataclass(frozen=True)
class Route:
    """One row: a command class, the shapes of its data objects, the operation.

    `src` is a CopyCommand's `srcTO` or the one object a create or delete names;
    `dest` is a CopyCommand's `destTO`. The first row that fits wins.
    """

    command: type[Command]
    operation: Operation
    src: Shape | None = None
    dest: Shape | None = None

    def fits(self, command: Command) -> bool:
        if not isinstance(command, self.command):
            return False
        shapes = [shape for shape in (self.src, self.dest) if shape is not None]
        objects = _objects(command)
        return all(s.fits(o) for s, o in zip(shapes, objects, strict=False))


def _shape(*objects: type[Wire], stores: tuple[type[Wire], ...] | None = None) -> Shape:
    return Shape(objects, stores)


ROUTES: tuple[Route, ...] = (
    Route(DownloadCommand, Operation.DOWNLOAD),
    Route(
        CopyCommand,
        Operation.COPY_TEMPLATE_TO_PRIMARY,
        _shape(TemplateObjectTO, stores=_IMAGE),
        _shape(TemplateObjectTO, stores=_PRIMARY),
    ),
    Route(
        CopyCommand,
        Operation.CREATE_VOLUME_FROM_TEMPLATE,
        _shape(TemplateObjectTO, stores=_IMAGE),
        _shape(VolumeObjectTO, stores=_PRIMARY),
    ),
    Route(
        CopyCommand,
        Operation.CLONE_VOLUME_FROM_BASE_TEMPLATE,
        _shape(TemplateObjectTO, stores=_PRIMARY),
        _shape(VolumeObjectTO, stores=_PRIMARY),
    ),
    Route(
        CopyCommand,
        Operation.COPY_VOLUME_PRIMARY_TO_PRIMARY,
        _shape(VolumeObjectTO, stores=_PRIMARY),
        _shape(VolumeObjectTO, stores=_PRIMARY),
    ),
    Route(CreateObjectCommand, Operation.CREATE_VOLUME, _shape(VolumeObjectTO)),
    Route(DeleteCommand, Operation.DELETE, _shape(VolumeObjectTO, TemplateObjectTO)),
    Route(AttachCommand, Operation.ATTACH),
    Route(DettachCommand, Operation.DETACH),
    Route(ResizeVolumeCommand, Operation.RESIZE),
    Route(GetStorageStatsCommand, Operation.STORAGE_STATS),
    Route(CreateObjectCommand, Operation.CREATE_SNAPSHOT, _shape(SnapshotObjectTO)),
    Route(
        CopyCommand,
        Operation.BACKUP_SNAPSHOT,
        _shape(SnapshotObjectTO, stores=_PRIMARY),
        _shape(SnapshotObjectTO, stores=_IMAGE),
    ),
    Route(RevertSnapshotCommand, Operation.REVERT_SNAPSHOT),
    Route(
        CopyCommand,
        Operation.CREATE_VOLUME_FROM_SNAPSHOT,
        _shape(SnapshotObjectTO, stores=_EITHER),
        _shape(VolumeObjectTO, stores=_PRIMARY),
    ),
    Route(
        CopyCommand,
        Operation.CREATE_TEMPLATE_FROM_VOLUME,
        _shape(VolumeObjectTO, stores=_PRIMARY),
        _shape(TemplateObjectTO, stores=_IMAGE),
    ),
    Route(
        CopyCommand,
        Operation.CREATE_TEMPLATE_FROM_SNAPSHOT,
        _shape(SnapshotObjectTO, stores=_EITHER),
        _shape(TemplateObjectTO, stores=_IMAGE),
    ),
    Route(
        CopyCommand,
        Operation.COPY_VOLUME_TO_SECONDARY,
        _shape(VolumeObjectTO, stores=_PRIMARY),
        _shape(VolumeObjectTO, stores=_IMAGE),
    ),
    Route(
        CopyCommand,
        Operation.COPY_VOLUME_FROM_CACHE,
        _shape(VolumeObjectTO, stores=_IMAGE),
        _shape(VolumeObjectTO, stores=_PRIMARY),
    ),
    Route(DeleteCommand, Operation.DELETE_SNAPSHOT, _shape(SnapshotObjectTO)),
    # last: an object between two image stores that no row above claims (the
    # staging cache's copy, the hops of a command naming `cacheTO`)
    Route(
        CopyCommand,
        Operation.COPY_BETWEEN_IMAGE_STORES,
        _shape(TemplateObjectTO, SnapshotObjectTO, VolumeObjectTO, stores=_IMAGE),
        _shape(TemplateObjectTO, SnapshotObjectTO, VolumeObjectTO, stores=_IMAGE),
    ),
)


def route(command: Command) -> Route | None:
    """The first row of `ROUTES` that fits `command`; None if none does."""
    return next((row for row in ROUTES if row.fits(command)), None)


class KvmAgent:
    """Answers storage commands for one KVM host, as CloudStack's agent does.

    `providers` defaults to the installed ones (loaded on the first command);
    tests pass their own registry to put a fake backend behind the same table.
    """

    def __init__(
        self, runner: Runner | None = None, providers: Registry | None = None
    ) -> None:
        self.runner: Runner = runner if runner is not None else SubprocessRunner()
        self._providers = providers

    @property
    def providers(self) -> Registry:
        if self._providers is None:
            self._providers = installed()
        return self._providers

    def handle(
        self, command: Command, on_progress: ProgressCallback | None = None
    ) -> Answer:
        """The command's answer; any exception becomes `result=false` with why."""
        wait = float(getattr(command, "wait", 0) or DEFAULT_WAIT)
        try:
            return self._execute(command, CommandRun(self.runner, wait, on_progress))
        except CommandTimedOut as exc:
            what = " ".join(exc.argv[:2])
            return failure_for(command, f"{what} timed out after {wait:g} s")
        except (AgentFailure, InvalidInput) as exc:
            return failure_for(command, _one_line(str(exc)))
        except OSError as exc:
            return failure_for(command, _one_line(os_error_line(exc)))
        except Exception as exc:  # a bug still becomes an answer, not a lost job
            return failure_for(command, _one_line(f"{type(exc).__name__}: {exc}"))

    def _execute(self, command: Command, run: CommandRun) -> Answer:
        row = route(command)
        if row is None:
            return failure_for(command, f"unsupported command {_describe(command)}")
        staged = cache_hops.through_cache(
            command, row.operation, run, self.providers, self._execute
        )
        if staged is not None:  # an S3 or Swift store: the staging cache's hops
            return staged
        driver, names = self._driver_for(command)
        handler = driver.handlers.get(row.operation)
        if handler is None:
            return failure_for(
                command,
                f"unsupported command {_describe(command)}: {names} "
                f"does not do {row.operation.value}",
            )
        return handler(run, command, *_objects(command))

    def _driver_for(self, command: Command) -> tuple[Driver, str]:
        """The driver that takes `command` (the rule is the module's docstring),
        and who it is for the refusals: `provider NAME`, or the providers."""
        providers = {
            provider.name: provider
            for provider in map(self.providers.for_store, _stores(command))
        }
        if not providers:
            raise AgentFailure(f"{_describe(command)} names no data store")
        names = ", ".join(sorted(providers))
        drivers = {p.driver.name: p.driver for p in providers.values()}
        if len(drivers) == 1:
            return next(iter(drivers.values())), f"provider {names}"
        mixed = f"providers {names} have different drivers"
        others = {n: d for n, d in drivers.items() if n != DIRECTORY_DRIVER}
        if len(others) == 1:
            (driver,) = others.values()
            owners = sorted(p.name for p in providers.values() if p.driver is driver)
            return driver, f"{mixed} and {', '.join(owners)}'s"
        target = _destination(command)
        if target is not None:
            chosen = self.providers.for_store(target)
            if chosen.driver.name in others:
                return chosen.driver, f"{mixed} and the destination's, {chosen.name},"
        raise AgentFailure(
            f"{_describe(command)}: {mixed} ({', '.join(sorted(drivers))}) "
            "and none reads both"
        )


#: The driver of mounted directories, which any other driver may stand in for.
DIRECTORY_DRIVER = "directory"


def _destination(command: Command) -> PrimaryDataStoreTO | ImageStoreTO | None:
    """The store a command writes: a copy's destination, the object it names."""
    if isinstance(command, CopyCommand):
        return command.destTO.dataStore
    if isinstance(command, CreateObjectCommand | DeleteCommand):
        return command.data.dataStore
    return None


def _objects(command: Command) -> tuple[DataTO, ...]:
    """The data objects a route looks at, in the order its handler takes them."""
    if isinstance(command, CopyCommand):
        return (command.srcTO, command.destTO)
    if isinstance(command, CreateObjectCommand | DeleteCommand):
        return (command.data,)
    return ()


def _stores(value: object) -> Iterator[PrimaryDataStoreTO | ImageStoreTO]:
    """Every data store `value` names, however deep (a snapshot's volume's pool)."""
    if isinstance(value, PrimaryDataStoreTO | ImageStoreTO):
        yield value
    elif isinstance(value, Wire) and dataclasses.is_dataclass(value):
        for f in dataclasses.fields(value):
            yield from _stores(getattr(value, f.name))
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _stores(item)


def _describe(command: Command) -> str:
    if isinstance(command, CopyCommand):
        return f"CopyCommand {_where(command.srcTO)} -> {_where(command.destTO)}"
    if isinstance(command, CreateObjectCommand | DeleteCommand):
        return f"{command.kind} for {_where(command.data)}"
    return command.kind


def _where(data: DataTO) -> str:
    store = data.dataStore.role if data.dataStore is not None else "no store"
    return f"{data.objectType} on {store}"


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= 500 else line[:497] + "..."
