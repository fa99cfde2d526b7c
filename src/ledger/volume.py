"""The Volume aggregate (`volumes`): a disk, its pool, its file, and its state.

States and triggers are CloudStack's `Volume.State` machine; every `...Requested`
event carries the agent command it asks for, every `...Answered` event the answer,
folded as `OperationSucceeded` / `OperationFailed`. CloudStack models a migration as
a new row that takes the old uuid; here the one Volume records `PoolChanged`. The
requests that change a created volume's data or place (snapshot, revert, resize,
migrate) are in `volume_data`, the folding of answers in `volume_answers`.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from ledger.aggregate import Answered, Commandable, Ctx, Requested, StorctlAggregate
from ledger.commands import (
    AttachCommand,
    CopyCommand,
    CreateObjectCommand,
    DeleteCommand,
    DettachCommand,
)
from ledger.errors import IllegalTransition
from ledger.fsm import VOLUME
from ledger.pool import HoldsCapacity
from ledger.values import VolumeState, VolumeType
from ledger.volume_answers import FoldsVolumeAnswers
from ledger.volume_data import ChangesVolumeData


class Volume(ChangesVolumeData, FoldsVolumeAnswers, HoldsCapacity, Commandable):
    """v2 (snapshot state) added `holds`: a v1 volume's reservation was recorded by
    its pool, which keeps it as a legacy entry until it is released."""

    TOPIC = "storctl.Volume"
    SPEC = VOLUME
    KIND = "Volume"
    class_version = 2

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["holds"] = {}

    class Event(StorctlAggregate.Event):
        TOPIC = "storctl.Volume.Event"

    class Allocated(StorctlAggregate.Created, Event):
        """v2 added `provisioning_type` (CloudStack's THIN/SPARSE/FAT); v1 events
        were all thin, which is what the upcaster says."""

        TOPIC = "storctl.Volume.Allocated"
        class_version = 2
        name: str
        volume_type: VolumeType
        size: int
        zone_id: str
        template_id: UUID | None
        snapshot_id: UUID | None
        vm_id: UUID | None
        device_id: int | None
        tags: list[str]
        provisioning_type: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["provisioning_type"] = "THIN"

    class AllocationDecided(Event):
        """The allocator's decision: the request, every candidate and its verdict."""

        TOPIC = "storctl.Volume.AllocationDecided"
        request: dict[str, Any]
        verdicts: list[dict[str, Any]]
        chosen: UUID | None

        def apply(self, aggregate: Any) -> None:
            aggregate.decisions += 1

    class PoolChanged(Event):
        TOPIC = "storctl.Volume.PoolChanged"
        from_pool_id: UUID | None
        pool_id: UUID | None

        def apply(self, aggregate: Any) -> None:
            if self.from_pool_id is not None:
                aggregate.last_pool_id = self.from_pool_id
            aggregate.pool_id = self.pool_id

    class CapacityHeld(Event):
        """This volume's half of a pool's `CapacityReserved`, in the same save."""

        TOPIC = "storctl.Volume.CapacityHeld"
        pool_id: UUID
        size: int

        def apply(self, aggregate: Any) -> None:
            aggregate.holds[str(self.pool_id)] = self.size

    class CapacityGivenBack(Event):
        """This volume's half of a pool's `CapacityReleased`, in the same save."""

        TOPIC = "storctl.Volume.CapacityGivenBack"
        pool_id: UUID

        def apply(self, aggregate: Any) -> None:
            aggregate.holds.pop(str(self.pool_id), None)

    class CreateRequested(Requested, Event):
        TOPIC = "storctl.Volume.CreateRequested"

    class CopyRequested(Requested, Event):
        TOPIC = "storctl.Volume.CopyRequested"

    class AttachRequested(Requested, Event):
        TOPIC = "storctl.Volume.AttachRequested"

    class DetachRequested(Requested, Event):
        TOPIC = "storctl.Volume.DetachRequested"

    class DestroyRequested(Requested, Event):
        TOPIC = "storctl.Volume.DestroyRequested"

    class RecoverRequested(Requested, Event):
        TOPIC = "storctl.Volume.RecoverRequested"

    class ExpungeRequested(Requested, Event):
        TOPIC = "storctl.Volume.ExpungeRequested"

    class SnapshotRequested(Requested, Event):
        """Ready -> Snapshotting while snapshot `snapshot_id` is taken and backed up."""

        TOPIC = "storctl.Volume.SnapshotRequested"
        snapshot_id: UUID

    class SnapshotCompleted(Answered, Event):
        TOPIC = "storctl.Volume.SnapshotCompleted"
        snapshot_id: UUID

        def apply(self, aggregate: Any) -> None:
            super().apply(aggregate)
            if self.answer["result"]:
                aggregate.snapshot_head = self.snapshot_id

    class RevertRequested(Requested, Event):
        TOPIC = "storctl.Volume.RevertRequested"
        snapshot_id: UUID

    class RevertAnswered(Answered, Event):
        TOPIC = "storctl.Volume.RevertAnswered"

    class ResizeRequested(Requested, Event):
        TOPIC = "storctl.Volume.ResizeRequested"
        new_size: int

    class ResizeAnswered(Answered, Event):
        TOPIC = "storctl.Volume.ResizeAnswered"
        size: int | None

        def apply(self, aggregate: Any) -> None:
            super().apply(aggregate)
            if self.size is not None:
                aggregate.size = self.size

    class StagedCopyRequested(Requested, Event):
        """The second leg of a migration staged through the image store (storctl's
        own trigger: CloudStack's table has no step inside Migrating)."""

        TOPIC = "storctl.Volume.StagedCopyRequested"

    class MigrationSettled(Answered, Event):
        """A staged migration that failed before the volume's own copy."""

        TOPIC = "storctl.Volume.MigrationSettled"

    class CreateAnswered(Answered, Event):
        TOPIC = "storctl.Volume.CreateAnswered"
        path: str | None
        size: int | None

        def apply(self, aggregate: Any) -> None:
            super().apply(aggregate)
            if self.path is not None:
                aggregate.path = self.path
            if self.size is not None:
                aggregate.size = self.size

    class CopyAnswered(CreateAnswered):
        TOPIC = "storctl.Volume.CopyAnswered"

    class AttachAnswered(Answered, Event):
        TOPIC = "storctl.Volume.AttachAnswered"
        vm_id: UUID | None
        device_id: int | None

        def apply(self, aggregate: Any) -> None:
            super().apply(aggregate)
            if self.answer["result"]:
                aggregate.vm_id = self.vm_id
                aggregate.device_id = self.device_id

    class DetachAnswered(Answered, Event):
        TOPIC = "storctl.Volume.DetachAnswered"

        def apply(self, aggregate: Any) -> None:
            super().apply(aggregate)
            if self.answer["result"]:
                aggregate.vm_id = None
                aggregate.device_id = None

    class ExpungeAnswered(Answered, Event):
        TOPIC = "storctl.Volume.ExpungeAnswered"

    def __init__(
        self,
        *,
        name: str,
        volume_type: VolumeType,
        size: int,
        zone_id: str,
        template_id: UUID | None,
        snapshot_id: UUID | None,
        vm_id: UUID | None,
        device_id: int | None,
        tags: list[str],
        provisioning_type: str,
        actor: str,
        job_id: str,
        causation_id: str,
    ) -> None:
        self.name = name
        self.provisioning_type = provisioning_type
        self.volume_type = volume_type
        self.size = size
        self.zone_id = zone_id
        self.template_id = template_id
        self.snapshot_id = snapshot_id
        self.vm_id = vm_id
        self.device_id = device_id
        self.tags = list(tags)
        self.state = VolumeState.Allocated
        self.pending: dict[str, Any] | None = None
        self.pending_trigger: str | None = None
        self.last_command: dict[str, Any] | None = None
        self.last_answer: dict[str, Any] | None = None
        self.pool_id: UUID | None = None
        self.last_pool_id: UUID | None = None
        self.path: str | None = None
        self.decisions = 0
        self.snapshot_head: UUID | None = None  # the last snapshot backed up
        self.holds: dict[str, int] = {}  # pool id -> bytes reserved there

    @classmethod
    def allocate(cls, ctx: Ctx, **fields: Any) -> Volume:
        for key in ("template_id", "snapshot_id", "vm_id", "device_id"):
            fields.setdefault(key, None)
        fields.setdefault("tags", [])
        fields.setdefault("provisioning_type", "THIN")
        return cls.create(cls.Allocated, ctx, **fields)

    # ------------------------------------------------------------ placement

    def record_decision(
        self,
        ctx: Ctx,
        request: dict[str, Any],
        verdicts: list[dict[str, Any]],
        chosen: UUID | None,
    ) -> None:
        self.emit(
            self.AllocationDecided,
            ctx,
            request=request,
            verdicts=verdicts,
            chosen=chosen,
        )

    def change_pool(self, ctx: Ctx, pool_id: UUID | None) -> None:
        """Place the volume (or move it after a migration); capacity is the caller's."""
        if self.state not in (VolumeState.Allocated, VolumeState.Migrating):
            raise IllegalTransition(
                self.KIND,
                str(self.id),
                self.state.name,
                "PoolChanged",
                why="only an Allocated or Migrating volume changes pool",
                name=self.name,
            )
        self.emit(self.PoolChanged, ctx, from_pool_id=self.pool_id, pool_id=pool_id)

    # ------------------------------------------------------------ create

    def request_create(self, ctx: Ctx, command: CreateObjectCommand) -> None:
        self._require_pool("CreateRequested")
        self.request(self.CreateRequested, ctx, "CreateRequested", command)

    def request_copy(self, ctx: Ctx, command: CopyCommand, trigger: str) -> None:
        """A CopyCommand to this volume: from a template (CreateRequested) or a
        migration (MigrationRequested)."""
        self._require_pool(trigger)
        self.request(self.CopyRequested, ctx, trigger, command)

    # ------------------------------------------------------------ attach

    def request_attach(self, ctx: Ctx, command: AttachCommand) -> None:
        if self.vm_id is not None and self.volume_type is VolumeType.DATADISK:
            raise IllegalTransition(
                self.KIND,
                str(self.id),
                self.state.name,
                "AttachRequested",
                why=f"already attached to {self.vm_id}",
                name=self.name,
            )
        self.request(self.AttachRequested, ctx, "AttachRequested", command)

    def request_detach(self, ctx: Ctx, command: DettachCommand) -> None:
        """CloudStack's detach moves no state: the guard is Ready and attached."""
        if self.state is not VolumeState.Ready or self.vm_id is None:
            raise IllegalTransition(
                self.KIND,
                str(self.id),
                self.state.name,
                "DetachRequested",
                why="only a Ready volume attached to a VM can be detached",
                name=self.name,
            )
        if self.volume_type is VolumeType.ROOT:
            raise IllegalTransition(
                self.KIND,
                str(self.id),
                self.state.name,
                "DetachRequested",
                why="a ROOT volume stays with its VM",
                name=self.name,
            )
        self.request(self.DetachRequested, ctx, "DetachRequested", command, self.state)

    # ------------------------------------------------------------ destroy

    def destroy(self, ctx: Ctx, *, with_vm: bool = False) -> None:
        """CloudStack's rules: an attached data disk is detached first; a ROOT volume
        is destroyed with its VM, never alone."""
        if self.vm_id is not None and not (
            with_vm and self.volume_type is VolumeType.ROOT
        ):
            why, then = (
                ("attached", f"detach it first (storctl volume detach {self.name})")
                if self.volume_type is VolumeType.DATADISK
                else ("the ROOT volume of a VM goes with the VM", "storctl vm destroy")
            )
            raise IllegalTransition(
                self.KIND, str(self.id), self.state.name, "DestroyRequested", why,
                self.name, then,
            )  # fmt: skip
        self.request(self.DestroyRequested, ctx, "DestroyRequested", None)

    def recover(self, ctx: Ctx) -> None:
        self.request(self.RecoverRequested, ctx, "RecoverRequested", None)

    def request_expunge(self, ctx: Ctx, command: DeleteCommand | None) -> None:
        """Expunge; with no file on primary (never created) there is no host work."""
        self.request(self.ExpungeRequested, ctx, "ExpungingRequested", command)
        if command is None:
            self.emit(
                self.ExpungeAnswered,
                ctx,
                answer={
                    "kind": "Answer",
                    "commandId": None,
                    "result": True,
                    "details": "no file on primary storage",
                },
                trigger="OperationSucceeded",
                from_state=self.state,
                to_state=self.next("OperationSucceeded"),
            )

    # ------------------------------------------------------------ helpers

    def _require_pool(self, trigger: str) -> None:
        if self.pool_id is None:
            raise IllegalTransition(
                self.KIND,
                str(self.id),
                self.state.name,
                trigger,
                why="no pool chosen",
                name=self.name,
            )

    @property
    def counts_against_pool(self) -> bool:
        """CloudStack counts a volume on its pool unless it is Destroy or gone."""
        return self.state not in (
            VolumeState.Destroy,
            VolumeState.Expunging,
            VolumeState.Expunged,
        )
