"""CloudStack's staging cache on the agent: the hops of a command whose store is
S3 or Swift.

A pool never reads or writes an object store. CloudStack's KVM agent, given a
`CopyCommand` that names a `cacheTO` (the zone's staging store, a directory),
makes the copy in two hops:

- to an object store (a snapshot's backup, a template made from a volume or a
  snapshot): the command runs with its destination moved to the cache, through
  the usual route and driver; the result is uploaded from the cache to the real
  destination by the object store's driver; the cache's file goes. A backup's
  `removeAfterCopy` waits for the upload, so a failed upload keeps the snapshot
  on primary for the retry, and a delta's parent is fetched into the cache first
  (the directory driver compares against it).
- from an object store (a volume restored from a backup): the source (with the
  backing files it names) is downloaded into the cache first, then the command
  runs from there.

Each command gets its own workspace in the cache (`hops/<digest of its id>`),
removed when the command ends, whatever happened; a leftover of a killed run is
removed before the next one starts. A command between an object store and a
directory that names no cache (the staging copy itself, a revert from a backup)
is run by the object store's driver, which reads and writes the directory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import shutil
from collections.abc import Callable, Iterator
from typing import Any

from executors.paths import contained, store_root
from executors.providers.command_run import CommandRun
from executors.providers.driver import AgentFailure, Operation, os_error_line
from executors.providers.provider import Provider
from executors.providers.registry import Registry
from ledger.commands import (
    Answer,
    CopyCmdAnswer,
    CopyCommand,
    CreateObjectCommand,
    DataTO,
    DeleteCommand,
    ImageStoreTO,
    PrimaryDataStoreTO,
    SnapshotObjectTO,
    Wire,
    failure_for,
)
from ledger.errors import InvalidInput

#: How the agent runs a command (its route, its driver), for each hop.
Execute = Callable[[Any, CommandRun], Answer]

WORKSPACES = "hops"


def through_cache(
    command: Any,
    operation: Operation,
    run: CommandRun,
    providers: Registry,
    execute: Execute,
) -> Answer | None:
    """The answer of a command an object store takes part in; None for any other
    command (the agent's usual route and driver)."""
    staged = {p.name: p for p in map(_provider(providers), _stores(command)) if p}
    if not staged:
        return None
    if isinstance(command, CopyCommand) and command.cacheTO is not None:
        return _two_hops(command, run, providers, execute)
    if len(staged) > 1:
        names = ", ".join(sorted(staged))
        raise AgentFailure(f"{command.kind} names two object stores ({names})")
    provider = next(iter(staged.values()))
    handler = provider.driver.handlers.get(operation)
    if handler is None:
        return failure_for(
            command,
            f"unsupported command {command.kind}: provider {provider.name} "
            f"does not do {operation.value}",
        )
    return handler(run, command, *_objects(command))


def _two_hops(
    command: CopyCommand, run: CommandRun, providers: Registry, run_hop: Execute
) -> Answer:
    assert command.cacheTO is not None

    def execute(hop: Any, run: CommandRun) -> Answer:
        """The hop's answer: a failure is an answer here too, so the command's
        says which hop failed (a timeout still ends the whole command)."""
        try:
            return run_hop(hop, run)
        except (AgentFailure, InvalidInput) as exc:
            return failure_for(hop, str(exc))
        except OSError as exc:
            return failure_for(hop, os_error_line(exc))

    staged = _provider(providers)
    src, dest = command.srcTO, command.destTO
    into, out_of = staged(dest.dataStore), staged(src.dataStore)
    cache = f"cache {command.cacheTO.name}"
    with workspace(command.cacheTO, command.commandId) as work:
        if out_of is not None:
            fetched = _hop(execute, run, command, "fetch", src, work)
            if not fetched.result:
                return _failed(command, f"fetching the source into {cache}", fetched)
            src = _data(fetched)
        options = dict(command.options)
        if into is None:
            return execute(command.replace(srcTO=src, cacheTO=None), run)
        remove_after = options.pop("removeAfterCopy", "false").lower() == "true"
        parent = _delta_parent(command, dest)
        if parent is not None:
            got = _hop(execute, run, command, "parent", parent, work)
            if not got.result:
                return _failed(command, f"fetching the parent into {cache}", got)
        inner = execute(
            command.replace(
                srcTO=src,
                destTO=dest.replace(dataStore=work),
                cacheTO=None,
                options=options,
            ),
            run,
        )
        if not inner.result:
            return inner
        made = _data(inner)
        up = _hop(execute, run, command, "upload", made, dest.dataStore)
        if not up.result:
            return _failed(command, f"uploading from {cache}", up)
        details = inner.details
        if remove_after:
            drop = DeleteCommand(f"{command.commandId}-drop", command.srcTO)
            dropped = execute(drop, run)
            if not dropped.result:
                details = f"backed up; the copy on primary stays: {dropped.details}"
        final = made.replace(dataStore=dest.dataStore, path=_data(up).path)
        return CopyCmdAnswer(
            commandId=command.commandId, result=True, details=details, newData=final
        )


@contextlib.contextmanager
def workspace(cache: ImageStoreTO, command_id: str) -> Iterator[ImageStoreTO]:
    """The command's own directory in the cache, as a store; removed at the end."""
    name = hashlib.sha256(command_id.encode()).hexdigest()[:24]
    path = contained(store_root(cache), WORKSPACES, name)
    shutil.rmtree(path, ignore_errors=True)  # a killed run's leftover
    path.mkdir(parents=True)
    try:
        yield cache.replace(uri=str(path))
    finally:
        shutil.rmtree(path, ignore_errors=True)
        with contextlib.suppress(OSError):  # only if no other command is using it
            path.parent.rmdir()


def _hop(
    execute: Execute,
    run: CommandRun,
    command: CopyCommand,
    step: str,
    src: DataTO,
    to: Any,
) -> Answer:
    """`src` copied, as the same object, to the store `to` (its path kept, so
    the cache mirrors the object store's layout and a delta finds its parent)."""
    dest = src.replace(dataStore=to, path=None)
    hop = CopyCommand(f"{command.commandId}-{step}", src, dest, wait=command.wait)
    return execute(hop, run)


def _delta_parent(command: CopyCommand, dest: DataTO) -> SnapshotObjectTO | None:
    """The backup a delta is made against, which must be in the cache too."""
    full = command.options.get("full", "false").strip().lower() == "true"
    if not isinstance(dest, SnapshotObjectTO) or full or not dest.parentSnapshotPath:
        return None
    parent: SnapshotObjectTO = dest.replace(
        path=dest.parentSnapshotPath, parentSnapshotPath=None
    )
    return parent


def _failed(command: CopyCommand, what: str, answer: Answer) -> Answer:
    return failure_for(command, f"{what}: {answer.details}")


def _data(answer: Answer) -> Any:
    data = getattr(answer, "newData", None)
    if data is None:
        raise AgentFailure(f"{answer.kind} {answer.commandId} answered no data")
    return data


def _provider(providers: Registry) -> Callable[[object], Provider | None]:
    """The object store provider (one that needs the staging cache) of a store."""

    def of(store: object) -> Provider | None:
        if not isinstance(store, PrimaryDataStoreTO | ImageStoreTO):
            return None
        try:
            provider = providers.for_store(store)
        except AgentFailure:
            return None  # the usual path says what is wrong with it
        return provider if provider.capabilities.needs_staging_cache else None

    return of


def _objects(command: Any) -> tuple[DataTO, ...]:
    if isinstance(command, CopyCommand):
        return (command.srcTO, command.destTO)
    if isinstance(command, CreateObjectCommand | DeleteCommand):
        return (command.data,)
    return ()


def _stores(value: object) -> Iterator[object]:
    """Every data store `value` names, however deep; a `cacheTO` does not count."""
    if isinstance(value, PrimaryDataStoreTO | ImageStoreTO):
        yield value
    elif isinstance(value, Wire) and dataclasses.is_dataclass(value):
        for f in dataclasses.fields(value):
            if f.name != "cacheTO":
                yield from _stores(getattr(value, f.name))
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _stores(item)
