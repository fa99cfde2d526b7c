"""The simulator agent: answers every command without disk I/O, as planned.

CloudStack ships a simulator hypervisor for the same reasons: scale tests and fault
injection. This one says so in every answer's details, and follows the host's
`SimulatorPlan` (fail with given details, hang past the wait, or delay), which
`storctl simulator configure` records in the ledger so every process sees it. The
agent does not read the ledger: it asks `faults` (the composition root gives it
`usecases.simulator.use_fault`) for the fault a command meets.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from uuid import UUID

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
    failure_for,
)

#: (host id, command kind, command id) -> the fault planned for it, used up; or None
Faults = Callable[[UUID, str, str], dict[str, Any] | None]

SIM_TEMPLATE_SIZE = 2 << 30  # what a simulated download reports as virtual size


class SimulatorAgent:
    def __init__(
        self, host_id: UUID, faults: Faults, interrupt: threading.Event | None = None
    ) -> None:
        self.host_id = host_id
        self.faults = faults
        self.interrupt = interrupt or threading.Event()

    def _fault(self, command: Command) -> dict[str, Any] | None:
        return self.faults(self.host_id, command.kind, command.commandId)

    def handle(
        self, command: Any, on_progress: Callable[[float], None] | None = None
    ) -> Answer:
        fault = self._fault(command)
        wait = float(getattr(command, "wait", 0) or 0)
        if fault is not None:
            if fault["mode"] == "fail":
                return failure_for(command, fault["details"] or "simulated failure")
            if fault["mode"] == "hang":
                # A hung agent answers nothing; the management side times it out.
                self.interrupt.wait(wait)
                return failure_for(command, f"timed out after {int(wait)} s")
            delay = float(fault["delay"])
            if delay >= wait > 0:
                self.interrupt.wait(wait)
                return failure_for(command, f"timed out after {int(wait)} s")
            self.interrupt.wait(delay)
        if on_progress is not None:
            on_progress(1.0)
        return success_for(command)


def success_for(command: Any) -> Answer:
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
