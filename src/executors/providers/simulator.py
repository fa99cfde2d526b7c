"""`simulator`: pools and image stores of simulator hosts, with no disk I/O.

CloudStack's simulator hypervisor keeps its "storage" in the management server's
database; storctl's keeps none at all. A simulator location is an absolute path that
names nothing on disk (`/sim/p1`), so it is checked for shape only. Its driver
answers every operation as the simulator agent does, saying "simulated: no disk
I/O" in each answer, so a simulated object is never mistaken for a real one.
"""

from __future__ import annotations

from typing import Any

from executors.providers.command_run import CommandRun
from executors.providers.driver import Operation, TableDriver
from executors.providers.locations import absolute_path
from executors.providers.provider import (
    SCOPES,
    Capabilities,
    Provider,
    Role,
    never_shared,
)
from ledger.commands import (
    Answer,
    AttachAnswer,
    AttachCommand,
    Command,
    CopyCmdAnswer,
    CopyCommand,
    CreateObjectAnswer,
    CreateObjectCommand,
    DettachAnswer,
    DettachCommand,
    DownloadAnswer,
    DownloadCommand,
    GetStorageStatsAnswer,
    GetStorageStatsCommand,
    ResizeVolumeAnswer,
    ResizeVolumeCommand,
    TemplateObjectTO,
    VolumeObjectTO,
)

SIM_TEMPLATE_SIZE = 2 << 30  # what a simulated download reports as virtual size


def success_for(command: Any) -> Answer:
    """What a simulated command answers: success, saying it touched no disk."""
    note = "simulated: no disk I/O"
    cid = command.commandId
    if isinstance(command, CreateObjectCommand):
        data = command.data
        if isinstance(data, VolumeObjectTO):
            data = data.replace(path=data.uuid)
        return CreateObjectAnswer(commandId=cid, result=True, details=note, data=data)
    if isinstance(command, CopyCommand):
        dest = command.destTO
        if isinstance(dest, VolumeObjectTO):
            src_size = getattr(command.srcTO, "size", None) or 0
            dest = dest.replace(path=dest.uuid, size=max(dest.size, src_size))
        elif isinstance(dest, TemplateObjectTO):
            size = getattr(command.srcTO, "size", None) or SIM_TEMPLATE_SIZE
            dest = dest.replace(path=dest.uuid, size=size, physicalSize=size // 4)
        return CopyCmdAnswer(commandId=cid, result=True, details=note, newData=dest)
    if isinstance(command, DownloadCommand):
        return DownloadAnswer(
            commandId=cid,
            result=True,
            details=note,
            installPath=command.installPath,
            templateSize=SIM_TEMPLATE_SIZE,
            templatePhySicalSize=SIM_TEMPLATE_SIZE // 4,
            downloadStatus="DOWNLOADED",
            downloadPct=100,
            checkSum=command.checksum,
        )
    if isinstance(command, GetStorageStatsCommand):
        # no disk: nothing is physically used (the allocated size still counts)
        return GetStorageStatsAnswer(commandId=cid, result=True, details=note)
    if isinstance(command, ResizeVolumeCommand):
        return ResizeVolumeAnswer(
            commandId=cid, result=True, details=note, newSize=command.newSize
        )
    if isinstance(command, AttachCommand):
        return AttachAnswer(commandId=cid, result=True, details=note, disk=command.disk)
    if isinstance(command, DettachCommand):
        return DettachAnswer(
            commandId=cid, result=True, details=note, disk=command.disk
        )
    return Answer(commandId=cid, result=True, details=note)


def _simulated(run: CommandRun, command: Command, *objects: object) -> Answer:
    if run.on_progress is not None:
        run.on_progress(1.0)
    return success_for(command)


DRIVER = TableDriver(name="simulator", handlers=dict.fromkeys(Operation, _simulated))

PROVIDER = Provider(
    name="simulator",
    roles=frozenset({Role.PRIMARY, Role.IMAGE}),
    recorded_as="Simulator",
    schemes=("file",),
    validate=absolute_path,
    capabilities=Capabilities(
        linked_clones=True,
        native_snapshots=False,
        needs_staging_cache=False,
        scopes=frozenset(SCOPES),
        disk_io=False,
    ),
    driver=DRIVER,
    summary="Pools and stores of simulator hosts: no disk I/O, nothing to mount.",
    place=never_shared,  # it keeps no object anywhere: nothing to share
)
