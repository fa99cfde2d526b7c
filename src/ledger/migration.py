"""StorageMotion: a volume moved from one pool to another.

CloudStack (`VolumeOrchestrator.migrateVolume` → `VolumeServiceImpl.copyVolume`)
reserves the destination, copies (`qemu-img convert`, which flattens a linked clone),
and on success points the volume at its new pool and deletes the source; between
pools no host reaches together the copy is staged through the image store. Here the
one Volume records `PoolChanged` (CloudStack makes a new row), and a failure leaves it
Ready on its source with both pools' capacity as before.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate

from ledger import transfer
from ledger.aggregate import Ctx
from ledger.allocators import Decision, Request, allocate
from ledger.commands import CopyCommand, DeleteCommand, VolumeObjectTO
from ledger.copies import DataObjectInStore
from ledger.errors import IllegalTransition, InvalidInput
from ledger.host import Host
from ledger.image_store import ImageStore
from ledger.job import Job
from ledger.operations import no_pool_message
from ledger.pool import StoragePool
from ledger.reach import pool_hosts
from ledger.snapshots import SnapshotOperations
from ledger.values import DataObjectType, HostState, StoreRole, VmState, derived_id
from ledger.vm import VirtualMachine
from ledger.volume import Volume


def leftover_id(volume_id: UUID, pool_id: UUID, job_id: str) -> UUID:
    """The source file a migration leaves behind, one per migration."""
    return derived_id("leftover", volume_id, pool_id, job_id)


def stage_id(volume_id: UUID, job_id: str) -> UUID:
    return derived_id("stage", volume_id, job_id)


class MigrationOperations(SnapshotOperations):
    def common_host(self, a: StoragePool, b: StoragePool) -> bool:
        hosts = pool_hosts(a, self.zone(a.zone_id)) & pool_hosts(
            b, self.zone(b.zone_id)
        )
        return any(self.load(Host, h).state is HostState.Up for h in hosts)

    def migrate_volume(
        self, ctx: Ctx, volume_id: UUID, pool_ref: str, *, live: bool = False
    ) -> Job:
        def decide() -> list[Aggregate | None]:
            volume = self.load(Volume, volume_id)
            target = self.resolve(StoragePool, pool_ref)
            volume.next("MigrationRequested")  # refuses unless Ready
            if volume.pool_id is None:
                raise IllegalTransition(
                    "Volume",
                    str(volume.id),
                    volume.state.name,
                    "MigrationRequested",
                    why="it has no pool yet",
                )
            if target.id == volume.pool_id:
                raise InvalidInput("pool", pool_ref, "the volume is already there")
            if target.zone_id != volume.zone_id:
                raise InvalidInput("pool", pool_ref, f"not in zone {volume.zone_id}")
            if volume.vm_id is not None:
                vm = self.load(VirtualMachine, volume.vm_id)
                if vm.state is VmState.Running and not live:
                    raise IllegalTransition(
                        "Volume",
                        str(volume.id),
                        volume.state.name,
                        "MigrationRequested",
                        why=f"attached to running VM {vm.name}: stop it, or --live",
                    )
                if vm.state is VmState.Running:
                    raise IllegalTransition(
                        "Volume",
                        str(volume.id),
                        volume.state.name,
                        "MigrationRequested",
                        why="live migration with storage is not supported by the "
                        "kvm agent here (no libvirt): stop the VM",
                    )
            source = self.load(StoragePool, volume.pool_id)
            job = Job.submit(
                ctx,
                "volume.migrate",
                "volume",
                volume.id,
                {"from": str(source.id), "to": str(target.id)},
            )
            request = Request(
                size=volume.size,
                zone_id=volume.zone_id,
                tags=tuple(volume.tags),
                pool_id=str(target.id),
            )
            refusal = self._judge(ctx, volume, request, target)
            if refusal is not None:
                job.fail(ctx, no_pool_message(refusal))
                return [volume, job]
            target.reserve(ctx, volume, volume.size, self._threshold(), self._factor())
            out: list[Aggregate | None] = [volume, job, target]
            src_to = transfer.volume_to(volume, source)
            if self.common_host(source, target):
                volume.request_migration(
                    ctx,
                    CopyCommand(
                        commandId=transfer.command_id(
                            ctx.causation_id, volume.id, "move"
                        ),
                        srcTO=src_to,
                        destTO=transfer.volume_to(volume, target).replace(path=None),
                        wait=self._wait("copy.volume.wait"),
                    ),
                )
                return out
            store = self.image_store_for(volume.zone_id)
            stage = DataObjectInStore.create(
                DataObjectInStore.Allocated,
                ctx,
                id=stage_id(volume.id, ctx.job_id),
                object_type=DataObjectType.VOLUME,
                object_id=volume.id,
                store_id=store.id,
                store_role=StoreRole.Image,
                parent_id=None,
            )
            volume.request_migration(ctx, None)
            stage.request_copy(
                ctx,
                CopyCommand(
                    commandId=transfer.command_id(ctx.causation_id, stage.id, "stage"),
                    srcTO=src_to,
                    destTO=VolumeObjectTO(
                        uuid=str(volume.id),
                        name=volume.name,
                        volumeType=volume.volume_type.value,
                        size=volume.size,
                        dataStore=transfer.image_to(store),
                    ),
                    wait=self._wait("copy.volume.wait"),
                ),
            )
            return [*out, stage]

        return self._job_of(self.atomic(decide, what="volume migrate"))

    def _judge(
        self, ctx: Ctx, volume: Volume, request: Request, target: StoragePool
    ) -> Decision | None:
        """Record the allocator's verdict on the target; the refusal, if any."""
        decision = allocate(request, [self.view_of(target, None)], self._threshold())
        chosen = UUID(decision.chosen) if decision.chosen else None
        volume.record_decision(ctx, request.as_dict(), decision.verdict_dicts(), chosen)
        return None if chosen else decision

    def request_second_leg(
        self, ctx: Ctx, volume: Volume, stage: DataObjectInStore, target: StoragePool
    ) -> None:
        store_to = transfer.image_to(self.image_store_for(volume.zone_id))
        volume.request_staged_copy(
            ctx,
            CopyCommand(
                commandId=transfer.command_id(ctx.causation_id, volume.id, "unstage"),
                srcTO=VolumeObjectTO(
                    uuid=str(volume.id),
                    name=volume.name,
                    volumeType=volume.volume_type.value,
                    size=volume.size,
                    dataStore=store_to,
                    path=stage.install_path,
                ),
                destTO=transfer.volume_to(volume, target).replace(path=None),
                wait=self._wait("copy.volume.wait"),
            ),
        )

    def remove_leftover(
        self, ctx: Ctx, volume: Volume, pool: StoragePool, path: str | None
    ) -> DataObjectInStore:
        """Delete the migrated volume's file on its old pool (a copy that only goes)."""
        leftover = DataObjectInStore.create(
            DataObjectInStore.Allocated,
            ctx,
            id=leftover_id(volume.id, pool.id, ctx.job_id),
            object_type=DataObjectType.VOLUME,
            object_id=volume.id,
            store_id=pool.id,
            store_role=StoreRole.Primary,
            parent_id=None,
        )
        leftover.request_destroy(
            ctx,
            DeleteCommand(
                commandId=transfer.command_id(ctx.causation_id, leftover.id, "delete"),
                data=transfer.volume_to(volume, pool).replace(
                    path=path or str(volume.id)
                ),
                wait=self._wait("wait"),
            ),
        )
        return leftover

    def remove_stage(self, ctx: Ctx, stage: DataObjectInStore) -> None:
        store_to = transfer.image_to(self.load(ImageStore, stage.store_id))
        stage.request_destroy(
            ctx,
            DeleteCommand(
                commandId=transfer.command_id(ctx.causation_id, stage.id, "delete"),
                data=VolumeObjectTO(
                    uuid=str(stage.object_id),
                    name="stage",
                    volumeType="DATADISK",
                    size=stage.size or 0,
                    dataStore=store_to,
                    path=stage.install_path,
                ),
                wait=self._wait("wait"),
            ),
        )
