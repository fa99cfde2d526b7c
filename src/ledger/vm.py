"""The VirtualMachine aggregate (`vm_instance`): only what storage needs of a VM.

CloudStack's deployVirtualMachine is where a root volume comes from; storctl keeps the
VM's name, zone, host and power state so that attach, detach and revert can ask
whether it is running, as CloudStack does on KVM.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from ledger.aggregate import Ctx, StorctlAggregate
from ledger.errors import InvalidInput
from ledger.fsm import VM
from ledger.values import VmState

#: The device ids a data disk may take: 0 is the root disk and 3 the CD-ROM, as
#: CloudStack numbers them on KVM (virtio disks vda..).
DATA_DEVICE_IDS = tuple(d for d in range(1, 64) if d != 3)


class VirtualMachine(StorctlAggregate):
    TOPIC = "storctl.VirtualMachine"
    SPEC = VM

    class Event(StorctlAggregate.Event):
        TOPIC = "storctl.VirtualMachine.Event"

    class Deployed(StorctlAggregate.Created, Event):
        TOPIC = "storctl.VirtualMachine.Deployed"
        name: str
        zone_id: str
        host_id: UUID
        template_id: UUID
        root_volume_id: UUID

    class StateChanged(Event):
        TOPIC = "storctl.VirtualMachine.StateChanged"
        trigger: str
        from_state: VmState
        to_state: VmState

        def apply(self, aggregate: Any) -> None:
            aggregate.state = self.to_state

    class DeviceReserved(Event):
        TOPIC = "storctl.VirtualMachine.DeviceReserved"
        volume_id: UUID
        device_id: int

        def apply(self, aggregate: Any) -> None:
            aggregate.devices[str(self.volume_id)] = self.device_id

    class DeviceFreed(Event):
        TOPIC = "storctl.VirtualMachine.DeviceFreed"
        volume_id: UUID

        def apply(self, aggregate: Any) -> None:
            aggregate.devices.pop(str(self.volume_id), None)

    def __init__(
        self,
        *,
        name: str,
        zone_id: str,
        host_id: UUID,
        template_id: UUID,
        root_volume_id: UUID,
        actor: str,
        job_id: str,
        causation_id: str,
    ) -> None:
        self.name = name
        self.zone_id = zone_id
        self.host_id = host_id
        self.template_id = template_id
        self.root_volume_id = root_volume_id
        self.state = VmState.Stopped
        self.devices: dict[str, int] = {str(root_volume_id): 0}

    @classmethod
    def deploy(cls, ctx: Ctx, id: UUID, **fields: Any) -> VirtualMachine:
        return cls.create(cls.Deployed, ctx, id=id, **fields)

    def reserve_device(self, ctx: Ctx, volume_id: UUID) -> int:
        """The next free device id (0 is the root disk), as CloudStack numbers them.
        With every data device id taken the attach is refused, as CloudStack
        refuses a VM that has the maximum number of data disks."""
        if str(volume_id) in self.devices:
            return self.devices[str(volume_id)]
        used = set(self.devices.values())
        device = next((d for d in DATA_DEVICE_IDS if d not in used), None)
        if device is None:
            raise InvalidInput(
                "vm",
                self.name,
                "already has the maximum number of data disks"
                f" ({len(DATA_DEVICE_IDS)}); specify another VM",
            )
        self.emit(self.DeviceReserved, ctx, volume_id=volume_id, device_id=device)
        return device

    def free_device(self, ctx: Ctx, volume_id: UUID) -> None:
        if str(volume_id) in self.devices:
            self.emit(self.DeviceFreed, ctx, volume_id=volume_id)

    def change_state(self, ctx: Ctx, trigger: str) -> None:
        """Move the VM as `trigger` asks, or `IllegalTransition`."""
        dest = self.SPEC.next_state(self.id, self.state, trigger, self.name)
        self.emit(
            self.StateChanged,
            ctx,
            trigger=trigger,
            from_state=self.state,
            to_state=dest,
        )
