"""Snapshot operations: take, delete (chains kept restorable), revert, and the volumes
and templates made from snapshots or volumes.

CloudStack's `DefaultSnapshotStrategy`: the snapshot is taken on primary
(`CreateObjectCommand` with a snapshot object), then backed up to the image store
(`CopyCommand` primary → secondary), full or as a delta of the previous snapshot until
`snapshot.delta.max` deltas follow a full one. A snapshot that a later delta still
needs is deleted for the user but its file stays, hidden, until the last dependent
goes (`DefaultSnapshotStrategy.deleteSnapshotChain`).
"""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from ledger import transfer
from ledger.aggregate import Ctx
from ledger.allocators import Request
from ledger.commands import (
    CopyCommand,
    CreateObjectCommand,
    DeleteCommand,
    RevertSnapshotCommand,
)
from ledger.copies import DataObjectInStore, copy_id
from ledger.errors import IllegalTransition, InvalidInput, NotFound
from ledger.image_store import ImageStore
from ledger.job import Job
from ledger.operations import Operations, no_pool_message
from ledger.pool import StoragePool
from ledger.snapshot import Snapshot
from ledger.template import Template
from ledger.values import (
    DataObjectType,
    ImageFormat,
    SnapshotState,
    StoreRole,
    VmState,
    VolumeState,
    VolumeType,
)
from ledger.vm import VirtualMachine
from ledger.volume import Volume


class SnapshotOperations(Operations):
    """Mixed into `Ledger` after `Operations`."""

    # ------------------------------------------------------------ helpers

    def image_store_for(self, zone_id: str) -> ImageStore:
        zone = self.zone(zone_id)
        if zone is None or not zone.stores:
            raise NotFound("image store", f"in zone {zone_id}")
        return self.load(ImageStore, UUID(zone.stores[0]))

    def backup_of(self, snapshot: Snapshot) -> DataObjectInStore | None:
        """The snapshot's copy on an image store (`snapshot_store_ref`, Image)."""
        volume = self.load(Volume, snapshot.volume_id)
        zone = self.zone(volume.zone_id)
        for sid in zone.stores if zone else []:
            copy = self.find(DataObjectInStore, copy_id(snapshot.id, UUID(sid)))
            if copy is not None:
                return copy
        return None

    def _backed_up(self, ref: str) -> tuple[Snapshot, DataObjectInStore, ImageStore]:
        snapshot = self.resolve(Snapshot, ref)
        copy = self.backup_of(snapshot)
        if snapshot.state is not SnapshotState.BackedUp or copy is None:
            raise IllegalTransition(
                "Snapshot",
                str(snapshot.id),
                snapshot.state.name,
                "use",
                why="only a BackedUp snapshot can be restored from",
            )
        return snapshot, copy, self.load(ImageStore, copy.store_id)

    # ------------------------------------------------------------ take

    def snapshot_volume(
        self, ctx: Ctx, volume_id: UUID, name: str | None = None
    ) -> Job:
        snapshot_id = uuid.uuid4()

        def decide() -> list[Aggregate | None]:
            volume = self.load(Volume, volume_id)
            if volume.pool_id is None or volume.state is not VolumeState.Ready:
                volume.next("SnapshotRequested")  # refuses with the volume's state
            assert volume.pool_id is not None
            pool = self.peek(StoragePool, volume.pool_id)  # read only: paths
            snapshot = Snapshot.create(
                Snapshot.Allocated,
                ctx,
                id=snapshot_id,
                name=name or f"{volume.name}-{snapshot_id.hex[:8]}",
                volume_id=volume.id,
                prev_snapshot_id=volume.snapshot_head,
                size=volume.size,
            )
            volume.request_snapshot(ctx, snapshot.id)
            snapshot.request_create(
                ctx,
                CreateObjectCommand(
                    commandId=transfer.command_id(
                        ctx.causation_id, snapshot.id, "take"
                    ),
                    data=transfer.snapshot_to(
                        snapshot, volume, pool, transfer.primary_to(pool)
                    ),
                    wait=self._wait("backup.snapshot.wait"),
                ),
            )
            job = Job.submit(
                ctx,
                "snapshot.create",
                "snapshot",
                snapshot.id,
                {"volume_id": str(volume.id)},
            )
            return [volume, snapshot, job]

        return self._job_of(self.atomic(decide, what="snapshot create"))

    def request_backup(self, ctx: Ctx, snapshot: Snapshot) -> list[Aggregate]:
        """After the snapshot is on primary: back it up, full or as a delta."""
        volume = self.load(Volume, snapshot.volume_id)
        assert volume.pool_id is not None
        pool = self.load(StoragePool, volume.pool_id)
        store = self.image_store_for(volume.zone_id)
        parent = self._delta_parent(snapshot)
        copy = DataObjectInStore.allocate(
            ctx,
            DataObjectType.SNAPSHOT,
            snapshot.id,
            store.id,
            StoreRole.Image,
            parent_id=parent.id if parent else None,
        )
        copy.request_copy(
            ctx,
            CopyCommand(
                commandId=transfer.command_id(ctx.causation_id, copy.id, "backup"),
                srcTO=transfer.snapshot_to(
                    snapshot,
                    volume,
                    pool,
                    transfer.primary_to(pool),
                    path=snapshot.path,
                ),
                destTO=transfer.snapshot_to(
                    snapshot,
                    volume,
                    pool,
                    transfer.image_to(store),
                    parent_path=parent.install_path if parent else None,
                ),
                wait=self._wait("backup.snapshot.wait"),
                options={
                    "removeAfterCopy": "true",
                    "full": "false" if parent else "true",
                },
            ),
        )
        snapshot.request_backup(ctx, None)
        out: list[Aggregate] = [copy, snapshot]
        if parent is not None:
            parent.add_child(ctx, copy.id)
            out.append(parent)
        return out

    def _delta_parent(self, snapshot: Snapshot) -> DataObjectInStore | None:
        """The previous snapshot's backup, while the chain is shorter than
        `snapshot.delta.max`; None means a full backup."""
        if snapshot.prev_snapshot_id is None:
            return None
        prev = self.find(Snapshot, snapshot.prev_snapshot_id)
        if prev is None or prev.state is not SnapshotState.BackedUp:
            return None
        if prev.depth + 1 > int(self.settings().get("snapshot.delta.max")):
            return None
        parent = self.backup_of(prev)
        if parent is None or not parent.is_ready or parent.install_path is None:
            return None
        return parent

    # ------------------------------------------------------------ delete

    def delete_snapshot(self, ctx: Ctx, ref: str) -> Job:
        def decide() -> list[Aggregate | None]:
            snapshot = self.resolve(Snapshot, ref)
            job = Job.submit(ctx, "snapshot.delete", "snapshot", snapshot.id)
            copy = self.backup_of(snapshot)
            snapshot.request_destroy(ctx, None)
            out: list[Aggregate | None] = [snapshot, job, copy]
            if copy is None or copy.install_path is None:
                snapshot.finish_destroy(ctx, ok=True)
                job.succeed(ctx)
            elif copy.children:
                # A later delta needs this file: gone for the user, kept on disk.
                copy.hide(ctx)
                snapshot.finish_destroy(ctx, ok=True, details="kept hidden for a delta")
                job.succeed(ctx, {"hidden": True})
            else:
                out += self.destroy_backup(ctx, copy, snapshot)
            return out

        return self._job_of(self.atomic(decide, what="snapshot delete"))

    def destroy_backup(
        self, ctx: Ctx, copy: DataObjectInStore, snapshot: Snapshot
    ) -> list[Aggregate]:
        volume = self.load(Volume, snapshot.volume_id)
        store = self.load(ImageStore, copy.store_id)
        pool_id = volume.pool_id or volume.last_pool_id
        if pool_id is None:
            raise InvalidInput("snapshot", str(snapshot.id), "its volume has no pool")
        pool = self.load(StoragePool, pool_id)
        copy.request_destroy(
            ctx,
            DeleteCommand(
                commandId=transfer.command_id(ctx.causation_id, copy.id, "delete"),
                data=transfer.snapshot_to(
                    snapshot,
                    volume,
                    pool,
                    transfer.image_to(store),
                    path=copy.install_path,
                ),
                wait=self._wait("wait"),
            ),
        )
        return [copy]

    # ------------------------------------------------------------ revert

    def revert_snapshot(self, ctx: Ctx, ref: str) -> Job:
        def decide() -> list[Aggregate | None]:
            snapshot, copy, store = self._backed_up(ref)
            volume = self.load(Volume, snapshot.volume_id)
            if volume.vm_id is not None:
                vm = self.load(VirtualMachine, volume.vm_id)
                if vm.state is VmState.Running:
                    raise IllegalTransition(
                        "VirtualMachine",
                        str(vm.id),
                        vm.state.name,
                        "RevertSnapshotRequested",
                        why="on KVM a snapshot is reverted with the VM stopped",
                    )
            if volume.pool_id is None:
                volume.next("RevertSnapshotRequested")
            assert volume.pool_id is not None
            pool = self.load(StoragePool, volume.pool_id)
            job = Job.submit(
                ctx,
                "snapshot.revert",
                "volume",
                volume.id,
                {"snapshot_id": str(snapshot.id)},
            )
            volume.request_revert(
                ctx,
                RevertSnapshotCommand(
                    commandId=transfer.command_id(
                        ctx.causation_id, volume.id, "revert"
                    ),
                    data=transfer.snapshot_to(
                        snapshot,
                        volume,
                        pool,
                        transfer.image_to(store),
                        path=copy.install_path,
                    ),
                    wait=self._wait("copy.volume.wait"),
                ),
                snapshot.id,
            )
            return [volume, job]

        return self._job_of(self.atomic(decide, what="snapshot revert"))

    # ------------------------------------------------------------ from snapshots

    def create_volume_from_snapshot(
        self,
        ctx: Ctx,
        *,
        name: str,
        snapshot_ref: str,
        zone: str | None = None,
        pool_ref: str | None = None,
    ) -> Job:
        snapshot, copy, store = self._backed_up(snapshot_ref)
        source = self.load(Volume, snapshot.volume_id)
        zone = zone or source.zone_id
        if zone != source.zone_id:
            raise InvalidInput(
                "zone", zone, f"the snapshot is in zone {source.zone_id}"
            )
        pool_id = self.resolve(StoragePool, pool_ref).id if pool_ref else None
        volume_id = uuid.uuid4()

        def decide() -> list[Aggregate | None]:
            volume = Volume.allocate(
                ctx,
                id=volume_id,
                name=name,
                volume_type=VolumeType.DATADISK,
                size=snapshot.size,
                zone_id=zone,
                snapshot_id=snapshot.id,
                tags=list(source.tags),
            )
            job = Job.submit(
                ctx,
                "volume.create",
                "volume",
                volume_id,
                {"snapshot_id": str(snapshot.id)},
            )
            request = Request(
                size=snapshot.size,
                zone_id=zone,
                tags=tuple(source.tags),
                pool_id=str(pool_id) if pool_id else None,
            )
            decision, pool, cleaned = self.place(ctx, volume, request)
            if pool is None:
                job.fail(ctx, no_pool_message(decision))
                return [volume, job]
            volume.request_copy(
                ctx,
                CopyCommand(
                    commandId=transfer.command_id(
                        ctx.causation_id, volume.id, "restore"
                    ),
                    srcTO=transfer.snapshot_to(
                        snapshot,
                        source,
                        pool,
                        transfer.image_to(store),
                        path=copy.install_path,
                    ),
                    destTO=transfer.volume_to(volume, pool),
                    wait=self._wait("copy.volume.wait"),
                ),
                "CreateRequested",
            )
            return [volume, job, pool, *cleaned]

        return self._job_of(self.atomic(decide, what=f"volume create {name}"))

    def create_template(
        self,
        ctx: Ctx,
        *,
        name: str,
        volume_id: UUID | None = None,
        snapshot_ref: str | None = None,
    ) -> Job:
        """CloudStack's createTemplate from a volume (VM stopped) or a snapshot."""
        if (volume_id is None) == (snapshot_ref is None):
            raise InvalidInput(
                "source", name, "give exactly one of a volume, a snapshot"
            )
        source: Any
        if volume_id is not None:
            volume = self.load(Volume, volume_id)
            if volume.state is not VolumeState.Ready or volume.pool_id is None:
                raise IllegalTransition(
                    "Volume",
                    str(volume.id),
                    volume.state.name,
                    "CreateTemplate",
                    why="the volume must be Ready",
                )
            if volume.vm_id is not None:
                vm = self.load(VirtualMachine, volume.vm_id)
                if vm.state is VmState.Running:
                    raise IllegalTransition(
                        "VirtualMachine",
                        str(vm.id),
                        vm.state.name,
                        "CreateTemplate",
                        why="stop the VM before making a template of its volume",
                    )
            pool = self.load(StoragePool, volume.pool_id)
            source = transfer.volume_to(volume, pool)
            zone, origin = volume.zone_id, f"volume:{volume.id}"
            wait_key = "create.private.template.from.volume.wait"
        else:
            assert snapshot_ref is not None
            snapshot, copy, store = self._backed_up(snapshot_ref)
            volume = self.load(Volume, snapshot.volume_id)
            pool_id = volume.pool_id or volume.last_pool_id
            assert pool_id is not None
            source = transfer.snapshot_to(
                snapshot,
                volume,
                self.load(StoragePool, pool_id),
                transfer.image_to(store),
                path=copy.install_path,
            )
            zone, origin = volume.zone_id, f"snapshot:{snapshot.id}"
            wait_key = "create.private.template.from.snapshot.wait"
        target = self.image_store_for(zone)
        template = Template.register(
            ctx,
            name=name,
            zone_id=zone,
            url=origin,
            format=ImageFormat.QCOW2,
            checksum=None,
            source_volume_id=str(volume_id) if volume_id else None,
            source_snapshot_id=None if volume_id else origin.split(":", 1)[1],
        )
        job = Job.submit(ctx, "template.create", "template", template.id)
        copy_out = DataObjectInStore.allocate(
            ctx, DataObjectType.TEMPLATE, template.id, target.id, StoreRole.Image
        )
        copy_out.request_copy(
            ctx,
            CopyCommand(
                commandId=transfer.command_id(
                    ctx.causation_id, copy_out.id, "template"
                ),
                srcTO=source,
                destTO=transfer.template_to(template, transfer.image_to(target), None),
                wait=self._wait(wait_key),
            ),
        )
        self._save_new(ctx, "template", name, template, job, copy_out)
        return job
