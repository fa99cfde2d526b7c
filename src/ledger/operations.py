"""Operations on templates, VMs and volumes: the first step of each, synchronously.

Each operation checks everything an operator can get wrong (refused, exit 2, nothing
written), then saves the new objects, the job and the first request in one atomic
save. What follows an agent's answer is the workflows' business (`workflows.py`).
The seed's call chain, deployVirtualMachine → allocate → createVolumeFromTemplate →
choose a pool → copy the template to primary → clone, starts here.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from ledger import transfer
from ledger.aggregate import Ctx
from ledger.allocators import (
    Decision,
    PoolView,
    Request,
    allocate,
    allocate_found,
    allocate_requested,
    collect_garbage,
    refusal,
)
from ledger.commands import (
    AttachCommand,
    CopyCommand,
    CreateObjectCommand,
    DeleteCommand,
    DettachCommand,
    DownloadCommand,
    ResizeVolumeCommand,
)
from ledger.config import Config, Settings
from ledger.copies import GONE, DataObjectInStore, copy_id
from ledger.core import LedgerCore
from ledger.errors import IllegalTransition, InvalidInput, NotFound
from ledger.host import Host
from ledger.image_store import ImageStore
from ledger.job import Job
from ledger.pool import StoragePool
from ledger.template import Template
from ledger.values import (
    DataObjectType,
    HostState,
    ImageFormat,
    ObjectInStoreState,
    StoreRole,
    VmState,
    VolumeState,
    VolumeType,
)
from ledger.vm import VirtualMachine
from ledger.volume import Volume
from ledger.zone import Zone, zone_id_for


def no_pool_message(decision: Decision) -> str:
    return (
        "Unable to find suitable primary storage "
        f"({decision.summary()}; `storctl why` shows the decision)"
    )


class Operations(LedgerCore):
    """Templates, VMs and volumes: the first step of every operation."""

    #: Where `pool_names` reads a zone's pool names, {pool id: name}, in one query
    #: (`projections.candidates.pool_names`); None reads each pool's aggregate.
    pool_names_source: Callable[[Any, str], dict[str, str]] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pool_name_memo: dict[str, str] = {}
        self._scope = threading.local()

    # ------------------------------------------------------------ settings

    def settings(self) -> Config | Settings:
        """The configuration, read once per submission inside `one_settings_read`
        (each read outside it asks the database)."""
        held: Config | Settings | None = getattr(self._scope, "settings", None)
        return held if held is not None else super().settings()

    @contextmanager
    def one_settings_read(self) -> Iterator[None]:
        """Every `settings()` of this thread sees one read: a submission that checks
        a minimum size, places and sets a command's wait asked three times, each a
        query. Nested scopes keep the outer read."""
        if getattr(self._scope, "settings", None) is not None:
            yield
            return
        self._scope.settings = super().settings()
        try:
            yield
        finally:
            self._scope.settings = None

    def _threshold(self) -> float:
        return float(
            self.settings().get("pool.storage.allocated.capacity.disablethreshold")
        )

    def _factor(self) -> float:
        return float(self.settings().get("storage.overprovisioning.factor"))

    def _wait(self, key: str) -> int:
        return int(self.settings().get(key))

    # ------------------------------------------------------------ placement

    def pool_views(self, zone_id: str, template_id: UUID | None) -> list[PoolView]:
        """The zone's pools as the allocator sees them: from `pool_source` (the
        projected `storage_pool` table, wired by the CLI, so 10,000 pools are one
        query) or, without one, from the aggregates themselves."""
        if self.pool_source is not None:
            return self.pool_source(self, zone_id, template_id)
        zone = self.zone(zone_id)
        if zone is None:
            return []
        return [
            self.view_of(self.load(StoragePool, UUID(pid)), template_id)
            for pid in zone.pools
        ]

    def view_of(
        self, pool: StoragePool, template_id: UUID | None, factor: float | None = None
    ) -> PoolView:
        copy = (
            self.template_copy(template_id, pool.id)[1]
            if template_id is not None
            else None
        )
        # a copy holds its reservation while it is being made or is ready
        has_template = copy is not None and copy.held_on(pool.id) is not None
        return PoolView(
            id=str(pool.id),
            name=pool.name,
            scope=pool.scope,
            zone_id=pool.zone_id,
            cluster_id=pool.cluster_id,
            host_id=str(pool.host_id) if pool.host_id else None,
            status=pool.status,
            tags=tuple(pool.tags),
            capacity=pool.capacity,
            allocated=pool.allocated,
            factor=pool.factor(self._factor() if factor is None else factor),
            volumes=pool.objects,
            has_template=has_template,
            used=pool.used,
        )

    def place(
        self,
        ctx: Ctx,
        volume: Volume,
        request: Request,
        template: Template | None = None,
    ) -> tuple[Decision, StoragePool | None, list[Aggregate]]:
        """Choose a pool, record the decision, reserve, and move the volume onto it;
        also return the template copies storage cleanup destroyed to make room (to be
        saved with the rest).

        The candidates may come from a projection a moment behind; the chosen pool's
        own aggregate has the last word. When it refuses, its fresh view replaces the
        stale one and the chain runs again, so the recorded decision is the true one.
        A `--pool` request needs no candidates: its pool's aggregate decides
        (`_judge_requested`).
        """
        template_id = template.id if template else None
        settings = self.settings()  # once: each read loads the Config aggregate
        algorithm = str(settings.get("vm.allocation.algorithm"))
        threshold = float(
            settings.get("pool.storage.allocated.capacity.disablethreshold")
        )
        factor = float(settings.get("storage.overprovisioning.factor"))
        used_threshold = float(settings.get("pool.storage.capacity.disablethreshold"))
        seed = volume.id.int & 0xFFFF
        decision: Decision | None = None
        views: dict[str, PoolView] | None = None
        if request.pool_id is not None and self.suitable_source is not None:
            decision, pool, views = self._judge_requested(
                request, template_id, threshold, used_threshold, factor
            )
        elif self.suitable_source is not None:
            # the read side finds the suitable pools; the chosen one's aggregate
            # confirms, or every pool is judged below
            found, others = self.suitable_source(
                self, request, template_id, threshold, used_threshold, algorithm, seed
            )
            quick = allocate_found(request, found, others, threshold, used_threshold)
            if quick is not None and quick.chosen is not None:
                pool = self.load(StoragePool, UUID(quick.chosen))
                fresh = self.view_of(pool, template_id, factor)
                if refusal(fresh, request, threshold, used_threshold) is None:
                    decision = quick
            elif quick is not None:
                views = {v.id: v for v in others}  # nothing suitable: all are here
        if decision is None:
            if views is None:
                views = {v.id: v for v in self.pool_views(volume.zone_id, template_id)}
            for _ in range(len(views) + 1):
                decision = allocate(
                    request,
                    list(views.values()),
                    threshold,
                    algorithm,
                    seed=seed,
                    used_threshold=used_threshold,
                )
                if decision.chosen is None:
                    break
                pool = self.load(StoragePool, UUID(decision.chosen))
                fresh = self.view_of(pool, template_id, factor)
                if fresh == views[decision.chosen]:
                    break
                views[decision.chosen] = fresh  # the projection was behind: again
        assert decision is not None
        cleaned: list[Aggregate] = []
        if decision.chosen is None and views is not None:
            decision, pool, cleaned = self._collect_garbage(
                ctx,
                volume,
                request,
                template_id,
                list(views.values()),
                decision,
                rules=(algorithm, threshold, factor, used_threshold, seed),
            )
        chosen = UUID(decision.chosen) if decision.chosen else None
        volume.record_decision(ctx, request.as_dict(), decision.verdict_dicts(), chosen)
        if chosen is None:
            return decision, None, []
        assert pool is not None  # every path that chooses loaded the chosen pool
        pool.reserve(ctx, volume, volume.size, threshold, factor)
        volume.change_pool(ctx, pool.id)
        return decision, pool, cleaned

    def _judge_requested(
        self,
        request: Request,
        template_id: UUID | None,
        threshold: float,
        used_threshold: float,
        factor: float,
    ) -> tuple[Decision, StoragePool | None, dict[str, PoolView]]:
        """An operator's `--pool`: the requested pool's own aggregate decides, and
        the zone's other pools are only named (`allocate_requested`). So nothing
        waits for the read side to catch up: the zone's stream says which pools it
        has, and a pool's name never changes, so names read from a projection that
        is behind are right for every pool it holds. Also return the loaded pool
        and the views `_collect_garbage` may need (only the requested pool's)."""
        assert request.pool_id is not None
        try:
            pool_ids = list(self.peek(Zone, zone_id_for(request.zone_id)).pools)
        except NotFound:
            pool_ids = []
        pool: StoragePool | None = None
        views: dict[str, PoolView] = {}
        if request.pool_id in pool_ids:
            pool = self.load(StoragePool, UUID(request.pool_id))
            views[request.pool_id] = self.view_of(pool, template_id, factor)
        others = self.pool_names(request.zone_id, pool_ids)
        decision = allocate_requested(
            request, views.get(request.pool_id), others, threshold, used_threshold
        )
        return decision, pool, views

    def pool_names(self, zone_id: str, pool_ids: list[str]) -> dict[str, str]:
        """{id: name} of the given pools of a zone, in their order. Names never
        change, so each is read once per process: from `pool_names_source` (one
        query for the zone) when wired, else (or for a pool the read side has not
        seen yet) from the pool's aggregate."""
        memo = self._pool_name_memo
        if self.pool_names_source is not None and any(i not in memo for i in pool_ids):
            memo.update(self.pool_names_source(self, zone_id))
        for i in pool_ids:
            if i not in memo:
                memo[i] = self.peek(StoragePool, UUID(i)).name
        return {i: memo[i] for i in pool_ids}

    def _collect_garbage(
        self,
        ctx: Ctx,
        volume: Volume,
        request: Request,
        template_id: UUID | None,
        views: list[PoolView],
        refused: Decision,
        *,
        rules: tuple[str, float, float, float, int],
    ) -> tuple[Decision, Any, list[Aggregate]]:
        """The GarbageCollectingStoragePoolAllocator: with `storage.cleanup.enabled`,
        destroy the unused template copies of the pool that cleanup makes suitable,
        give their reservations back, and take that pool. Each copy is confirmed on
        its own aggregate (saved with the volume, so a clone that starts reading it
        meanwhile makes the save conflict and the whole choice is made again).
        `rules` are place()'s settings: algorithm, thresholds, factor, seed."""
        if self.copy_source is None or not self.settings().get(
            "storage.cleanup.enabled"
        ):
            return refused, None, []
        algorithm, threshold, factor, used_threshold, seed = rules
        found: dict[str, list[DataObjectInStore]] = {}
        reclaimable: dict[str, int] = {}
        pools: dict[str, StoragePool] = {}
        for pool_id, ids in self.copy_source(self, volume.zone_id, template_id).items():
            # the pool knows holds recorded before holders kept their own
            holding = pools[pool_id] = self.load(StoragePool, UUID(pool_id))
            for cid in ids:
                copy = self.find(DataObjectInStore, cid)
                if (
                    copy is not None
                    and copy.unused
                    and copy.object_type is DataObjectType.TEMPLATE
                    and copy.store_role is StoreRole.Primary
                    and str(copy.store_id) == pool_id
                ):
                    found.setdefault(pool_id, []).append(copy)
                    held = holding.held_by(copy) or 0
                    reclaimable[pool_id] = reclaimable.get(pool_id, 0) + held
        decision = collect_garbage(
            request,
            views,
            reclaimable,
            threshold,
            refused,
            algorithm,
            seed=seed,
            used_threshold=used_threshold,
        )
        if decision.chosen is None:
            return refused, None, []
        pool = pools[decision.chosen]
        cleaned: list[Aggregate] = []
        for copy in found[decision.chosen]:
            template = self.load(Template, copy.object_id)
            copy.request_destroy(
                ctx,
                DeleteCommand(
                    commandId=transfer.command_id(ctx.causation_id, copy.id, "delete"),
                    data=transfer.template_to(
                        template, transfer.primary_to(pool), copy.install_path
                    ),
                    wait=self._wait("wait"),
                ),
            )
            pool.release(ctx, copy)
            cleaned.append(copy)
        check = pool.check(volume.size, threshold, factor)
        if not check.passes:
            return refused, None, []  # the projection overstated what cleanup frees
        return decision, pool, cleaned

    def ready_image_copy(
        self, template: Template
    ) -> tuple[ImageStore, DataObjectInStore] | None:
        zone = self.zone(template.zone_id)
        for sid in zone.stores if zone else []:
            copy = self.find(DataObjectInStore, copy_id(template.id, UUID(sid)))
            if copy is not None and copy.is_ready:
                return self.load(ImageStore, UUID(sid)), copy
        return None

    def ensure_template_on_pool(
        self, ctx: Ctx, volume: Volume, pool: StoragePool, template: Template
    ) -> list[Aggregate]:
        """CloudStack's createBaseImageAsync then clone: copy the template to the pool
        once (a `template_spool_ref` row), and clone it for every volume."""
        generation, copy = self.template_copy(template.id, pool.id)
        cid = copy_id(template.id, pool.id, generation)
        if copy is not None and copy.is_ready:
            self.request_clone(ctx, volume, pool, template, copy)
            copy.add_child(ctx, volume.id)  # storage cleanup keeps it while cloned
            return [copy]
        if copy is None:
            copy = DataObjectInStore.allocate(
                ctx,
                DataObjectType.TEMPLATE,
                template.id,
                pool.id,
                StoreRole.Primary,
                generation=generation,
            )
        if copy.pending is None:
            source = self.ready_image_copy(template)
            if source is None:
                raise InvalidInput(
                    "template", template.name, "not downloaded to an image store"
                )
            store, image_copy = source
            pool.reserve(ctx, copy, template.size, self._threshold(), self._factor())
            copy.request_copy(
                ctx,
                CopyCommand(
                    commandId=transfer.command_id(ctx.causation_id, cid, "copy"),
                    srcTO=transfer.template_to(
                        template, transfer.image_to(store), image_copy.install_path
                    ),
                    destTO=transfer.template_to(
                        template, transfer.primary_to(pool), None
                    ),
                    wait=self._wait("primary.storage.download.wait"),
                ),
            )
        copy.add_waiter(ctx, volume.id)
        copy.add_child(ctx, volume.id)
        return [copy]

    def template_copy(
        self, template_id: UUID, pool_id: UUID
    ) -> tuple[int, DataObjectInStore | None]:
        """The live copy of a template on a pool with its generation, or the
        generation a new copy takes: storage cleanup leaves a copy Destroyed for
        good, so the next one gets the next derived id."""
        generation = 0
        while True:
            copy = self.find(
                DataObjectInStore, copy_id(template_id, pool_id, generation)
            )
            if copy is None or copy.state not in GONE:
                return generation, copy
            generation += 1

    def release_template_copy(
        self, ctx: Ctx, volume: Volume, pool_id: UUID | None = None
    ) -> list[Aggregate]:
        """The volume no longer reads the template copy on its pool (or on `pool_id`,
        the pool it left): expunged, moved away, or never created, so storage
        cleanup may take the copy again."""
        pool_id = pool_id or volume.pool_id
        if volume.template_id is None or pool_id is None:
            return []
        _, copy = self.template_copy(volume.template_id, pool_id)
        if copy is None or str(volume.id) not in copy.children:
            return []
        copy.remove_child(ctx, volume.id)
        return [copy]

    def request_clone(
        self,
        ctx: Ctx,
        volume: Volume,
        pool: StoragePool,
        template: Template,
        copy: DataObjectInStore,
    ) -> None:
        volume.request_copy(
            ctx,
            CopyCommand(
                commandId=transfer.command_id(ctx.causation_id, volume.id, "clone"),
                srcTO=transfer.template_to(
                    template, transfer.primary_to(pool), copy.install_path
                ),
                destTO=transfer.volume_to(volume, pool),
                wait=self._wait("copy.volume.wait"),
            ),
            "CreateRequested",
        )

    def request_create(self, ctx: Ctx, volume: Volume, pool: StoragePool) -> None:
        volume.request_create(
            ctx,
            CreateObjectCommand(
                commandId=transfer.command_id(ctx.causation_id, volume.id, "create"),
                data=transfer.volume_to(volume, pool),
                wait=self._wait("wait"),
            ),
        )

    # ------------------------------------------------------------ templates

    def register_template(
        self,
        ctx: Ctx,
        *,
        name: str,
        url: str,
        fmt: ImageFormat,
        zone: str,
        checksum: str | None = None,
    ) -> Job:
        """Register, and ask every image store of the zone to download it."""
        if not url.startswith(("file://", "http://", "https://")):
            raise InvalidInput("url", url, "expected file://, http:// or https://")
        zone_agg = self.zone(zone)
        if zone_agg is None or not zone_agg.stores:
            raise NotFound("image store", f"in zone {zone}")
        template = Template.register(
            ctx, name=name, zone_id=zone, url=url, format=fmt, checksum=checksum
        )
        job = Job.submit(ctx, "template.register", "template", template.id)
        copies: list[Aggregate] = []
        for sid in zone_agg.stores:
            store = self.load(ImageStore, UUID(sid))
            copy = DataObjectInStore.allocate(
                ctx, DataObjectType.TEMPLATE, template.id, store.id, StoreRole.Image
            )
            copy.request_download(
                ctx,
                DownloadCommand(
                    commandId=transfer.command_id(
                        ctx.causation_id, copy.id, "download"
                    ),
                    url=url,
                    format=fmt.value,
                    name=name,
                    resourceType="TEMPLATE",
                    installPath=transfer.template_install_path(template),
                    store=transfer.image_to(store),
                    checksum=checksum,
                    wait=self._wait("primary.storage.download.wait"),
                ),
            )
            copies.append(copy)
        self._save_new(ctx, "template", name, template, job, *copies)
        return job

    def delete_template(self, ctx: Ctx, ref: str) -> Job:
        """Remove the template and its image-store copies; pool copies stay until
        storage cleanup, since linked clones still read them."""

        def decide() -> list[Aggregate | None]:
            template = self.resolve(Template, ref)
            template.delete(ctx)
            job = Job.submit(ctx, "template.delete", "template", template.id)
            out: list[Aggregate | None] = [template, job]
            zone = self.zone(template.zone_id)
            pending = False
            for sid in zone.stores if zone else []:
                copy = self.find(DataObjectInStore, copy_id(template.id, UUID(sid)))
                if copy is None or copy.state is ObjectInStoreState.Destroyed:
                    continue
                if copy.pending is not None:
                    raise IllegalTransition(
                        "Template",
                        str(template.id),
                        copy.state.name,
                        "DeleteRequested",
                        why="a download is still running",
                    )
                store = self.load(ImageStore, UUID(sid))
                copy.request_destroy(
                    ctx,
                    DeleteCommand(
                        commandId=transfer.command_id(
                            ctx.causation_id, copy.id, "delete"
                        ),
                        data=transfer.template_to(
                            template, transfer.image_to(store), copy.install_path
                        ),
                        wait=self._wait("wait"),
                    )
                    if copy.install_path
                    else None,
                )
                pending = pending or copy.install_path is not None
                out.append(copy)
            if not pending:
                job.succeed(ctx)
            claim = self.find_claim("template", template.name)
            if claim is not None:
                claim.release(ctx)
            out.append(claim)
            return out

        return self._job_of(self.atomic(decide, what=f"template delete {ref}"))

    # ------------------------------------------------------------ VMs

    def pick_host(self, zone: str, ref: str | None) -> Host:
        if ref is not None:
            host = self.resolve(Host, ref)
            if host.zone_id != zone:
                raise InvalidInput("host", ref, f"not in zone {zone}")
            if host.state is not HostState.Up:
                raise InvalidInput("host", ref, f"is {host.state.name}")
            return host
        zone_agg = self.zone(zone)
        hosts = [self.load(Host, UUID(h)) for h in (zone_agg.hosts if zone_agg else {})]
        up = sorted((h for h in hosts if h.state is HostState.Up), key=lambda h: h.name)
        if not up:
            raise NotFound("Up host", f"in zone {zone}")
        return up[0]

    def deploy_vm(
        self,
        ctx: Ctx,
        *,
        name: str,
        template_ref: str,
        zone: str,
        host_ref: str | None = None,
        root_size: int | None = None,
        tags: list[str] | None = None,
    ) -> Job:
        template = self.resolve(Template, template_ref)
        if template.removed:
            raise NotFound("template", template_ref)
        if template.zone_id != zone:
            raise InvalidInput("template", template_ref, f"not in zone {zone}")
        if self.ready_image_copy(template) is None:
            raise InvalidInput(
                "template", template.name, "is not ready (still downloading?)"
            )
        if root_size is not None and root_size < template.size:
            raise InvalidInput(
                "root size",
                str(root_size),
                f"smaller than the template ({template.size})",
            )
        host = self.pick_host(zone, host_ref)
        vm_id, volume_id = uuid.uuid4(), uuid.uuid4()

        def decide() -> list[Aggregate | None]:
            volume = Volume.allocate(
                ctx,
                id=volume_id,
                name=f"ROOT-{name}",
                volume_type=VolumeType.ROOT,
                size=root_size or template.size,
                zone_id=zone,
                template_id=template.id,
                snapshot_id=None,
                vm_id=vm_id,
                device_id=0,
                tags=list(tags or []),
            )
            vm = VirtualMachine.deploy(
                ctx,
                id=vm_id,
                name=name,
                zone_id=zone,
                host_id=host.id,
                template_id=template.id,
                root_volume_id=volume_id,
            )
            claim = self._claim(ctx, "vm", name, vm_id)
            job = Job.submit(
                ctx, "vm.deploy", "vm", vm_id, {"volume_id": str(volume_id)}
            )
            request = Request(
                size=volume.size,
                zone_id=zone,
                cluster_id=host.cluster_id,
                host_id=str(host.id),
                tags=tuple(tags or ()),
                template_size=template.size,
            )
            decision, pool, cleaned = self.place(ctx, volume, request, template)
            out: list[Aggregate | None] = [volume, vm, claim, job, pool, *cleaned]
            if pool is None:
                job.fail(ctx, no_pool_message(decision))
                return out
            out += self.ensure_template_on_pool(ctx, volume, pool, template)
            return out

        with self.one_settings_read():
            return self._job_of(self.atomic(decide, what=f"vm deploy {name}"))

    def vm_power(self, ctx: Ctx, ref: str, trigger: str) -> VirtualMachine:
        def decide() -> list[Aggregate | None]:
            vm = self.resolve(VirtualMachine, ref)
            vm.change_state(ctx, trigger)
            return [vm]

        return self.atomic(decide, what=f"vm {ref}")[0]  # type: ignore[return-value]

    def destroy_vm(self, ctx: Ctx, ref: str, *, expunge: bool = False) -> Job:
        """CloudStack's destroyVirtualMachine: the VM and its ROOT volume go to
        Destroy (capacity released); with expunge, the ROOT file is deleted too."""

        def decide() -> list[Aggregate | None]:
            vm = self.resolve(VirtualMachine, ref)
            data = [v for v in vm.devices if v != str(vm.root_volume_id)]
            if data:
                raise IllegalTransition(
                    "VirtualMachine",
                    str(vm.id),
                    vm.state.name,
                    "DestroyRequested",
                    why=f"{len(data)} data volumes attached: detach them first",
                )
            job = Job.submit(ctx, "vm.destroy", "vm", vm.id, {"expunge": expunge})
            out: list[Aggregate | None] = [vm, job]
            if vm.state is not VmState.Destroyed:
                vm.change_state(ctx, "DestroyRequested")
            root = self.load(Volume, vm.root_volume_id)
            pool = self.load(StoragePool, root.pool_id) if root.pool_id else None
            out += [root, pool]
            if root.state is not VolumeState.Destroy:
                root.destroy(ctx, with_vm=True)
                if pool is not None:
                    pool.release(ctx, root)
            if not expunge:
                job.succeed(ctx, {"state": vm.state.name})
                return out
            vm.change_state(ctx, "ExpungeRequested")
            claim = self.find_claim("vm", vm.name)
            if claim is not None:
                claim.release(ctx)
                out.append(claim)
            if not self.request_expunge(ctx, root, pool):
                job.succeed(ctx, {"state": vm.state.name})
            return out

        return self._job_of(self.atomic(decide, what=f"vm destroy {ref}"))

    # ------------------------------------------------------------ volumes

    def create_volume(
        self,
        ctx: Ctx,
        *,
        name: str,
        zone: str,
        size: int,
        pool_ref: str | None = None,
        tags: list[str] | None = None,
    ) -> Job:
        """CloudStack's createVolume: without a pool the volume stays Allocated
        until it is attached; with `--pool` it is created there at once."""
        with self.one_settings_read():
            return self._create_volume(ctx, name, zone, size, pool_ref, tags)

    def _create_volume(
        self,
        ctx: Ctx,
        name: str,
        zone: str,
        size: int,
        pool_ref: str | None,
        tags: list[str] | None,
    ) -> Job:
        if not name or len(name) > 255 or any(c in name for c in "\0\n\r"):
            raise InvalidInput("volume name", name, "1-255 printable characters")
        minimum = int(self.settings().get("custom.diskoffering.size.min"))
        if size < minimum:
            raise InvalidInput(
                "size", str(size), f"below custom.diskoffering.size.min {minimum}"
            )
        try:
            self.peek(Zone, zone_id_for(zone))  # read only: not copied
        except NotFound:
            raise NotFound("zone", zone) from None
        pool_id = self.resolve(StoragePool, pool_ref).id if pool_ref else None
        volume_id = uuid.uuid4()

        def decide() -> list[Aggregate | None]:
            volume = Volume.allocate(
                ctx,
                id=volume_id,
                name=name,
                volume_type=VolumeType.DATADISK,
                size=size,
                zone_id=zone,
                template_id=None,
                snapshot_id=None,
                vm_id=None,
                device_id=None,
                tags=list(tags or []),
            )
            job = Job.submit(ctx, "volume.create", "volume", volume_id)
            if pool_id is None:
                job.succeed(ctx, {"state": volume.state.name})
                return [volume, job]
            request = Request(
                size=size, zone_id=zone, tags=tuple(tags or ()), pool_id=str(pool_id)
            )
            decision, pool, cleaned = self.place(ctx, volume, request)
            if pool is None:
                job.fail(ctx, no_pool_message(decision))
                return [volume, job]
            self.request_create(ctx, volume, pool)
            return [volume, job, pool, *cleaned]

        return self._job_of(self.atomic(decide, what=f"volume create {name}"))

    def attach_volume(self, ctx: Ctx, volume_id: UUID, vm_ref: str) -> Job:
        with self.one_settings_read():
            return self._attach_volume(ctx, volume_id, vm_ref)

    def _attach_volume(self, ctx: Ctx, volume_id: UUID, vm_ref: str) -> Job:
        def decide() -> list[Aggregate | None]:
            volume = self.load(Volume, volume_id)
            vm = self.resolve(VirtualMachine, vm_ref)
            if volume.volume_type is not VolumeType.DATADISK:
                raise IllegalTransition(
                    "Volume",
                    str(volume.id),
                    volume.state.name,
                    "AttachRequested",
                    why="only data disks attach",
                )
            if vm.state in (VmState.Destroyed, VmState.Expunging):
                raise IllegalTransition(
                    "VirtualMachine", str(vm.id), vm.state.name, "AttachRequested"
                )
            if volume.zone_id != vm.zone_id:
                raise InvalidInput(
                    "vm", vm_ref, f"not in the volume's zone {volume.zone_id}"
                )
            if volume.vm_id is not None:
                raise IllegalTransition(
                    "Volume",
                    str(volume.id),
                    volume.state.name,
                    "AttachRequested",
                    why=f"attached to {volume.vm_id}",
                )
            job = Job.submit(
                ctx, "volume.attach", "volume", volume.id, {"vm_id": str(vm.id)}
            )
            if volume.state is VolumeState.Allocated and volume.pool_id is None:
                host = self.load(Host, vm.host_id)
                request = Request(
                    size=volume.size,
                    zone_id=volume.zone_id,
                    cluster_id=host.cluster_id,
                    host_id=str(host.id),
                    tags=tuple(volume.tags),
                )
                decision, pool, cleaned = self.place(ctx, volume, request)
                if pool is None:
                    job.fail(ctx, no_pool_message(decision))
                    return [volume, job]
                self.request_create(ctx, volume, pool)
                return [volume, job, pool, *cleaned]
            if volume.state is not VolumeState.Ready:
                volume.next(
                    "AttachRequested"
                )  # raises IllegalTransition with the state
            return [volume, job, vm, *self.request_attach(ctx, volume, vm)]

        return self._job_of(self.atomic(decide, what="volume attach"))

    def request_attach(
        self, ctx: Ctx, volume: Volume, vm: VirtualMachine
    ) -> list[Aggregate]:
        assert volume.pool_id is not None
        pool = self.peek(StoragePool, volume.pool_id)  # read only: the disk's path
        device = vm.reserve_device(ctx, volume.id)
        volume.request_attach(
            ctx,
            AttachCommand(
                commandId=transfer.command_id(ctx.causation_id, volume.id, "attach"),
                disk=transfer.disk_to(volume, pool, device, vm.name),
                vmName=vm.name,
                vmId=str(vm.id),
                wait=self._wait("wait"),
            ),
        )
        return []

    def detach_volume(self, ctx: Ctx, volume_id: UUID) -> Job:
        def decide() -> list[Aggregate | None]:
            volume = self.load(Volume, volume_id)
            if volume.vm_id is None or volume.pool_id is None:
                raise IllegalTransition(
                    "Volume",
                    str(volume.id),
                    volume.state.name,
                    "DetachRequested",
                    why="not attached",
                )
            # read only: the command names them (the answer's workflow frees
            # the device)
            vm = self.peek(VirtualMachine, volume.vm_id)
            pool = self.peek(StoragePool, volume.pool_id)
            job = Job.submit(
                ctx, "volume.detach", "volume", volume.id, {"vm_id": str(vm.id)}
            )
            volume.request_detach(
                ctx,
                DettachCommand(
                    commandId=transfer.command_id(
                        ctx.causation_id, volume.id, "detach"
                    ),
                    disk=transfer.disk_to(volume, pool, volume.device_id, vm.name),
                    vmName=vm.name,
                    wait=self._wait("wait"),
                ),
            )
            return [volume, job]

        return self._job_of(self.atomic(decide, what="volume detach"))

    def delete_volume(self, ctx: Ctx, volume_id: UUID) -> Job:
        """Destroy (recoverable) a created volume; a never-created one is expunged,
        since there is no file to keep (CloudStack's rule)."""

        def decide() -> list[Aggregate | None]:
            volume = self.load(Volume, volume_id)
            job = Job.submit(ctx, "volume.delete", "volume", volume.id)
            pool = self.load(StoragePool, volume.pool_id) if volume.pool_id else None
            volume.destroy(ctx)
            if volume.path is None:
                volume.request_expunge(ctx, None)  # nothing on primary to keep
            if pool is not None:
                pool.release(ctx, volume)
            job.succeed(ctx, {"state": volume.state.name})
            return [volume, job, pool]

        return self._job_of(self.atomic(decide, what="volume delete"))

    def recover_volume(self, ctx: Ctx, volume_id: UUID) -> Job:
        def decide() -> list[Aggregate | None]:
            volume = self.load(Volume, volume_id)
            volume.recover(ctx)
            job = Job.submit(ctx, "volume.recover", "volume", volume.id)
            pool = self.load(StoragePool, volume.pool_id) if volume.pool_id else None
            if pool is not None:
                pool.reserve(
                    ctx, volume, volume.size, self._threshold(), self._factor()
                )
            job.succeed(ctx, {"state": volume.state.name})
            return [volume, job, pool]

        return self._job_of(self.atomic(decide, what="volume recover"))

    def expunge_volume(self, ctx: Ctx, volume_id: UUID) -> Job:
        def decide() -> list[Aggregate | None]:
            volume = self.load(Volume, volume_id)
            job = Job.submit(ctx, "volume.expunge", "volume", volume.id)
            pool = self.load(StoragePool, volume.pool_id) if volume.pool_id else None
            if volume.state is VolumeState.Allocated:
                volume.destroy(ctx)
                if pool is not None:
                    pool.release(ctx, volume)
            if not self.request_expunge(ctx, volume, pool):
                job.succeed(ctx, {"state": volume.state.name})
            return [volume, job, pool]

        return self._job_of(self.atomic(decide, what="volume expunge"))

    def resize_volume(self, ctx: Ctx, volume_id: UUID, new_size: int) -> Job:
        """CloudStack's resizeVolume: Ready -> Resizing -> Ready. Growing reserves
        the difference first; shrinking is refused (data would be cut)."""

        def decide() -> list[Aggregate | None]:
            volume = self.load(Volume, volume_id)
            if new_size < volume.size:
                raise InvalidInput(
                    "size", str(new_size), f"smaller than the volume ({volume.size})"
                )
            if new_size == volume.size:
                raise InvalidInput("size", str(new_size), "the volume is that size")
            volume.next("ResizeRequested")  # refuses unless Ready
            job = Job.submit(ctx, "volume.resize", "volume", volume.id,
                             {"size": new_size, "previous": volume.size})  # fmt: skip
            if volume.pool_id is None:
                raise IllegalTransition(
                    "Volume",
                    str(volume.id),
                    volume.state.name,
                    "ResizeRequested",
                    why="not created yet",
                )
            pool = self.load(StoragePool, volume.pool_id)
            pool.grow(ctx, volume, new_size, self._threshold(), self._factor())
            volume.request_resize(ctx, ResizeVolumeCommand(
                commandId=transfer.command_id(ctx.causation_id, volume.id, "resize"),
                volume=transfer.volume_to(volume, pool),
                currentSize=volume.size, newSize=new_size,
                wait=self._wait("wait"),
            ), new_size)  # fmt: skip
            return [volume, job, pool]

        return self._job_of(self.atomic(decide, what="volume resize"))

    def request_expunge(
        self, ctx: Ctx, volume: Volume, pool: StoragePool | None
    ) -> bool:
        """Expunge a destroyed volume: a DeleteCommand for its file, or nothing to
        send when it never had one. True when a command is on its way."""
        if volume.path is None or pool is None:
            volume.request_expunge(ctx, None)
            return False
        volume.request_expunge(
            ctx,
            DeleteCommand(
                commandId=transfer.command_id(ctx.causation_id, volume.id, "delete"),
                data=transfer.volume_to(volume, pool),
                wait=self._wait("wait"),
            ),
        )
        return True

    # ------------------------------------------------------------ answers

    def record_answer(
        self, ctx: Ctx, object_id: UUID, answer: Any, tracking: Any = None
    ) -> list[Aggregate]:
        """Fold an agent's answer on the object that asked (exactly once per request:
        an answer for a command no longer pending is refused as stale)."""

        def decide() -> list[Aggregate | None]:
            obj: Any = self.repository.get(object_id)
            obj.fold_answer(ctx, answer)
            return [obj]

        return self.atomic(decide, tracking=tracking, what="answer")

    @staticmethod
    def _job_of(saved: list[Any]) -> Job:
        return next(a for a in saved if isinstance(a, Job))

    def find_claim(self, kind: str, name: str) -> Any:
        from ledger.names import NameClaim, claim_id

        return self.find(NameClaim, claim_id(kind, name))
