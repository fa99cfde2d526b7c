"""Copies of data objects in stores: CloudStack's ObjectInDataStore rows.

A template on an image store (`template_store_ref`), a template cached on a primary
pool (`template_spool_ref`), a snapshot on primary or secondary (`snapshot_store_ref`):
each is one `DataObjectInStore` with CloudStack's ObjectInDataStore machine (note its
spelling `OperationSuccessed`). Its id is derived from (object, store), so "make sure
template T is on pool P" is idempotent even when two jobs ask at once. A copy that
storage cleanup destroyed never comes back; the next copy of the same object in the
same store takes the next generation of the id.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from ledger.aggregate import Answered, Commandable, Ctx, Requested, StorctlAggregate
from ledger.commands import from_dict
from ledger.fsm import OBJECT_IN_STORE
from ledger.pool import HoldsCapacity
from ledger.values import DataObjectType, ObjectInStoreState, StoreRole, derived_id

DESTROY_ATTEMPTS = 3


def copy_id(object_id: UUID, store_id: UUID, generation: int = 0) -> UUID:
    if generation:
        return derived_id("copy", object_id, store_id, generation)
    return derived_id("copy", object_id, store_id)


def stage_id(volume_id: UUID, job_id: str) -> UUID:
    """A migration's staged copy of the volume on the image store, one per job."""
    return derived_id("stage", volume_id, job_id)


def leftover_id(volume_id: UUID, pool_id: UUID, job_id: str) -> UUID:
    """The source file a migration leaves behind, one per migration."""
    return derived_id("leftover", volume_id, pool_id, job_id)


#: States of a copy on its way out: the (object, store) pair needs a new generation.
GONE = frozenset({ObjectInStoreState.Destroying, ObjectInStoreState.Destroyed})


class DataObjectInStore(HoldsCapacity, Commandable):
    """v2 (snapshot state) added `holds`: a v1 copy's reservation on its pool was
    recorded by the pool, which keeps it as a legacy entry until it is released."""

    TOPIC = "storctl.DataObjectInStore"
    SPEC = OBJECT_IN_STORE
    KIND = "ObjectInDataStore"
    SUCCEEDED = "OperationSuccessed"
    class_version = 2

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["holds"] = {}

    class Event(StorctlAggregate.Event):
        TOPIC = "storctl.DataObjectInStore.Event"

    class Allocated(StorctlAggregate.Created, Event):
        TOPIC = "storctl.DataObjectInStore.Allocated"
        object_type: DataObjectType
        object_id: UUID
        store_id: UUID
        store_role: StoreRole
        parent_id: UUID | None

    class CapacityHeld(Event):
        """A copy on a primary pool: its half of the pool's `CapacityReserved`."""

        TOPIC = "storctl.DataObjectInStore.CapacityHeld"
        pool_id: UUID
        size: int

        def apply(self, aggregate: Any) -> None:
            aggregate.holds[str(self.pool_id)] = self.size

    class CapacityGivenBack(Event):
        TOPIC = "storctl.DataObjectInStore.CapacityGivenBack"
        pool_id: UUID

        def apply(self, aggregate: Any) -> None:
            aggregate.holds.pop(str(self.pool_id), None)

    class DownloadRequested(Requested, Event):
        TOPIC = "storctl.DataObjectInStore.DownloadRequested"

    class CopyRequested(Requested, Event):
        TOPIC = "storctl.DataObjectInStore.CopyRequested"

    class CreateRequested(Requested, Event):
        TOPIC = "storctl.DataObjectInStore.CreateRequested"

    class DestroyRequested(Requested, Event):
        TOPIC = "storctl.DataObjectInStore.DestroyRequested"

        def apply(self, aggregate: Any) -> None:
            super().apply(aggregate)
            aggregate.destroy_attempts += 1

    class Hidden(Requested, Event):
        """Kept only because a later delta needs it (snapshot chains)."""

        TOPIC = "storctl.DataObjectInStore.Hidden"

    class WaiterAdded(Event):
        """A volume waits for this copy (a template being cached on a pool)."""

        TOPIC = "storctl.DataObjectInStore.WaiterAdded"
        volume_id: UUID
        waiter_job_id: str

        def apply(self, aggregate: Any) -> None:
            aggregate.waiters[str(self.volume_id)] = self.waiter_job_id

    class WaitersServed(Event):
        TOPIC = "storctl.DataObjectInStore.WaitersServed"
        volume_ids: list[str]

        def apply(self, aggregate: Any) -> None:
            for volume_id in self.volume_ids:
                aggregate.waiters.pop(volume_id, None)

    class ChildAdded(Event):
        """A later delta (snapshot chains) or a linked clone (a template copy on a
        pool) now depends on this copy: it must not be destroyed under it."""

        TOPIC = "storctl.DataObjectInStore.ChildAdded"
        child_id: UUID

        def apply(self, aggregate: Any) -> None:
            aggregate.children.append(str(self.child_id))

    class ChildRemoved(Event):
        TOPIC = "storctl.DataObjectInStore.ChildRemoved"
        child_id: UUID

        def apply(self, aggregate: Any) -> None:
            if str(self.child_id) in aggregate.children:
                aggregate.children.remove(str(self.child_id))

    class HiddenMarked(Event):
        """Its snapshot is gone for the user, its file kept for a later delta
        (CloudStack's Hidden store copy)."""

        TOPIC = "storctl.DataObjectInStore.HiddenMarked"

        def apply(self, aggregate: Any) -> None:
            aggregate.hidden = True

    class CopyAnswered(Answered, Event):
        TOPIC = "storctl.DataObjectInStore.CopyAnswered"
        install_path: str | None
        size: int | None
        physical_size: int | None

        def apply(self, aggregate: Any) -> None:
            super().apply(aggregate)
            if self.answer["result"]:
                aggregate.install_path = self.install_path
                aggregate.size = self.size
                aggregate.physical_size = self.physical_size
                aggregate.error = None
            else:
                aggregate.error = self.answer.get("details")

    class DownloadAnswered(CopyAnswered):
        TOPIC = "storctl.DataObjectInStore.DownloadAnswered"

    class CreateAnswered(CopyAnswered):
        TOPIC = "storctl.DataObjectInStore.CreateAnswered"

    class DestroyAnswered(Answered, Event):
        TOPIC = "storctl.DataObjectInStore.DestroyAnswered"

    def __init__(
        self,
        *,
        object_type: DataObjectType,
        object_id: UUID,
        store_id: UUID,
        store_role: StoreRole,
        parent_id: UUID | None,
        actor: str,
        job_id: str,
        causation_id: str,
    ) -> None:
        self.object_type = object_type
        self.object_id = object_id
        self.store_id = store_id
        self.store_role = store_role
        self.parent_id = parent_id
        self.state = ObjectInStoreState.Allocated
        self.pending: dict[str, Any] | None = None
        self.pending_trigger: str | None = None
        self.last_answer: dict[str, Any] | None = None
        self.install_path: str | None = None
        self.size: int | None = None
        self.physical_size: int | None = None
        self.error: str | None = None
        self.waiters: dict[str, str] = {}  # volume id -> the job it belongs to
        self.children: list[str] = []  # copies whose delta builds on this one
        self.hidden = False
        self.destroy_attempts = 0
        self.last_command: dict[str, Any] | None = None
        self.holds: dict[str, int] = {}  # pool id -> bytes reserved (a cached copy)

    @classmethod
    def allocate(
        cls,
        ctx: Ctx,
        object_type: DataObjectType,
        object_id: UUID,
        store_id: UUID,
        store_role: StoreRole,
        parent_id: UUID | None = None,
        generation: int = 0,
    ) -> DataObjectInStore:
        return cls.create(
            cls.Allocated,
            ctx,
            id=copy_id(object_id, store_id, generation),
            object_type=object_type,
            object_id=object_id,
            store_id=store_id,
            store_role=store_role,
            parent_id=parent_id,
        )

    def request_download(self, ctx: Ctx, command: Any) -> None:
        self.request(self.DownloadRequested, ctx, "CreateOnlyRequested", command)

    def request_copy(self, ctx: Ctx, command: Any) -> None:
        self.request(self.CopyRequested, ctx, "CreateOnlyRequested", command)

    def request_create(self, ctx: Ctx, command: Any) -> None:
        self.request(self.CreateRequested, ctx, "CreateOnlyRequested", command)

    def answer_copy(self, ctx: Ctx, answer: Any) -> None:
        kind = self.pending["kind"] if self.pending else ""
        event = {
            "DownloadCommand": self.DownloadAnswered,
            "CreateObjectCommand": self.CreateAnswered,
        }.get(kind, self.CopyAnswered)
        data = (
            getattr(answer, "newData", None) or getattr(answer, "data", None)
            if answer.result
            else None
        )
        install_path = getattr(answer, "installPath", None) or (
            data.path if data else None
        )
        size = getattr(answer, "templateSize", None) or getattr(data, "size", None)
        physical = getattr(answer, "templatePhySicalSize", None) or (
            getattr(data, "physicalSize", None) if data else None
        )
        self.answer(
            event,
            ctx,
            answer,
            install_path=install_path if answer.result else None,
            size=size if answer.result else None,
            physical_size=physical if answer.result else None,
        )

    def request_destroy(self, ctx: Ctx, command: Any | None) -> None:
        self.request(self.DestroyRequested, ctx, "DestroyRequested", command)

    def answer_destroy(self, ctx: Ctx, answer: Any) -> None:
        self.answer(self.DestroyAnswered, ctx, answer)

    def add_waiter(self, ctx: Ctx, volume_id: UUID) -> None:
        if str(volume_id) not in self.waiters:
            self.emit(
                self.WaiterAdded, ctx, volume_id=volume_id, waiter_job_id=ctx.job_id
            )

    def serve_waiters(self, ctx: Ctx) -> list[tuple[UUID, str]]:
        """The waiting volumes with their jobs, and no longer waiting."""
        served = list(self.waiters.items())
        if served:
            self.emit(self.WaitersServed, ctx, volume_ids=[v for v, _ in served])
        return [(UUID(v), job) for v, job in served]

    def retry_destroy(self, ctx: Ctx) -> bool:
        """CloudStack leaves a failed delete in Destroying for the cleanup thread to
        try again; storctl tries again at once, a bounded number of times."""
        if self.pending is not None or self.last_command is None:
            return False
        if self.destroy_attempts >= DESTROY_ATTEMPTS:
            return False
        command = from_dict(
            {
                **self.last_command,
                "commandId": str(derived_id(self.last_command["commandId"], "retry")),
            }
        )
        self.request_destroy(ctx, command)
        return True

    def add_child(self, ctx: Ctx, child_id: UUID) -> None:
        if str(child_id) not in self.children:
            self.emit(self.ChildAdded, ctx, child_id=child_id)

    def remove_child(self, ctx: Ctx, child_id: UUID) -> None:
        if str(child_id) in self.children:
            self.emit(self.ChildRemoved, ctx, child_id=child_id)

    def hide(self, ctx: Ctx) -> None:
        if not self.hidden:
            self.emit(self.HiddenMarked, ctx)

    def fold_answer(self, ctx: Ctx, answer: Any) -> None:
        if self.pending and self.pending["kind"] == "DeleteCommand":
            self.answer_destroy(ctx, answer)
        else:
            self.answer_copy(ctx, answer)

    @property
    def is_ready(self) -> bool:
        return self.state is ObjectInStoreState.Ready

    @property
    def unused(self) -> bool:
        """Storage cleanup may destroy it: ready, and no volume clones from it, waits
        for it, or is being served by it."""
        return (
            self.is_ready
            and self.pending is None
            and not self.children
            and not self.waiters
        )
