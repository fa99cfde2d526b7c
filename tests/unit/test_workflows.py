"""Each workflow step: given what happened, when an answer arrives, then what next.

The ledger runs in memory (eventsourcing's POPO store); answers are built by hand
instead of coming from an agent, so each test is one decision of `workflows.decide`.
"""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest

from ledger.aggregate import Ctx, Requested, StaleAnswer
from ledger.app import Ledger
from ledger.commands import (
    Answer,
    AttachAnswer,
    CopyCmdAnswer,
    CreateObjectAnswer,
    DownloadAnswer,
    from_dict,
)
from ledger.copies import DataObjectInStore, copy_id
from ledger.errors import InvalidInput
from ledger.job import Job
from ledger.pool import StoragePool
from ledger.template import Template
from ledger.usecases import answers, infrastructure, templates, vms, volumes
from ledger.values import (
    GiB,
    Hypervisor,
    ImageFormat,
    JobStatus,
    ObjectInStoreState,
    PoolType,
    Scope,
    VmState,
    VolumeState,
)
from ledger.vm import DATA_DEVICE_IDS, VirtualMachine
from ledger.volume import Volume
from ledger.workflows import decide


def ctx() -> Ctx:
    return Ctx.new("tester")


@pytest.fixture
def ledger():
    app = Ledger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    infrastructure.register_host(app, ctx(), "kvm-01", "z1", "c1", Hypervisor.KVM)
    infrastructure.register_pool(
        app,
        ctx(),
        name="gold",
        zone="z1",
        path="/srv/gold",
        capacity=10 * GiB,
        scope=Scope.CLUSTER,
        pool_type=PoolType.Filesystem,
        cluster="c1",
        overprovision=1.0,
    )
    infrastructure.register_store(app, ctx(), "sec-1", "z1", "/srv/sec")
    return app


def new_events(app: Ledger, since: int):
    return [
        app.mapper.to_domain_event(n)
        for n in app.recorder.select_notifications(
            start=since, limit=1000, inclusive_of_start=False
        )
    ]


def answer_pending(app: Ledger, obj_id: UUID, answer_for) -> list:
    """Answer whatever `obj_id` waits for, then run the workflow on the answer event."""
    obj = app.repository.get(obj_id)
    command = from_dict(obj.pending)
    request = [e for e in app.events.get(obj_id) if isinstance(e, Requested)][-1]
    head = app.recorder.max_notification_id() or 0
    # As the dispatcher does: the answer belongs to the request's job.
    answer_ctx = Ctx(
        request.actor, request.job_id, f"{obj_id}/{request.originator_version}"
    )
    answers.record_answer(app, answer_ctx, obj_id, answer_for(command))
    decided = []
    for event in new_events(app, head):
        saved = app.atomic(lambda e=event: decide(app, e))
        decided += saved
    return decided


def downloaded(command):
    return DownloadAnswer(
        commandId=command.commandId,
        result=True,
        installPath=command.installPath,
        templateSize=2 * GiB,
        templatePhySicalSize=GiB // 2,
        downloadStatus="DOWNLOADED",
        downloadPct=100,
    )


def ok_copy(command):
    dest = command.destTO.replace(path=command.destTO.uuid)
    if hasattr(dest, "physicalSize"):
        dest = dest.replace(size=2 * GiB, physicalSize=GiB // 2)
    return CopyCmdAnswer(commandId=command.commandId, result=True, newData=dest)


def created(command):
    return CreateObjectAnswer(
        commandId=command.commandId,
        result=True,
        data=command.data.replace(path=command.data.uuid),
    )


def failed_copy(command):
    return CopyCmdAnswer(
        commandId=command.commandId, result=False, details="insufficient space"
    )


def ready_template(app: Ledger) -> Template:
    job = templates.register_template(
        app,
        ctx(),
        name="tiny",
        url="https://images.example.org/tiny.qcow2",
        fmt=ImageFormat.QCOW2,
        zone="z1",
    )
    template = app.load(Template, job.object_id)
    store_id = UUID(app.zone("z1").stores[0])
    answer_pending(app, copy_id(template.id, store_id), downloaded)
    return app.load(Template, template.id)


def failed_download(ledger: Ledger) -> tuple[Job, UUID]:
    """Template `bad` registered, its download answered result=false: its job
    and its image-store copy's id."""
    job = templates.register_template(
        ledger, ctx(), name="bad", url="https://images.example.org/bad",
        fmt=ImageFormat.QCOW2, zone="z1",
    )  # fmt: skip
    cid = copy_id(job.object_id, UUID(ledger.zone("z1").stores[0]))
    answer_pending(
        ledger,
        cid,
        lambda c: DownloadAnswer(
            commandId=c.commandId, result=False, details="connection refused"
        ),
    )
    return job, cid


class TestTemplateRegistration:
    def test_successful_download_records_size_and_settles_job(self, ledger):
        template = ready_template(ledger)
        assert template.size == 2 * GiB
        jobs = [e for e in new_events(ledger, 0) if isinstance(e, Job.Succeeded)]
        assert len(jobs) == 1

    def test_failed_download_fails_the_job_with_the_agents_words(self, ledger):
        job = templates.register_template(
            ledger,
            ctx(),
            name="bad",
            url="https://images.example.org/bad",
            fmt=ImageFormat.QCOW2,
            zone="z1",
        )
        store_id = UUID(ledger.zone("z1").stores[0])
        cid = copy_id(job.object_id, store_id)
        answer_pending(
            ledger,
            cid,
            lambda c: DownloadAnswer(
                commandId=c.commandId, result=False, details="checksum mismatch"
            ),
        )
        job = ledger.load(Job, job.id)
        assert job.status is JobStatus.failed
        assert "checksum mismatch" in job.error
        assert ledger.load(DataObjectInStore, cid).error is not None

    def fail_download(self, ledger, template_id, store_id, why="connection refused"):
        answer_pending(
            ledger,
            copy_id(template_id, store_id),
            lambda c: DownloadAnswer(commandId=c.commandId, result=False, details=why),
        )

    def test_a_template_whose_download_failed_stays_with_its_name(self, ledger):
        """Unlike a volume, a failed download may have left parts on the store:
        the template stays (and its name) until `template delete`."""
        job, _ = failed_download(ledger)
        assert not ledger.load(Template, job.object_id).removed
        assert ledger.load(Job, job.id).status is JobStatus.failed

    def test_deleting_a_failed_download_sends_the_delete_to_where_it_would_land(
        self, ledger
    ):
        """A download that failed may have left what the store could not clean
        while it was down (an S3 multipart upload): the delete goes to the
        template's install path; a template never tried sends nothing."""
        job, cid = failed_download(ledger)
        delete = templates.delete_template(ledger, ctx(), "bad")
        copy = ledger.load(DataObjectInStore, cid)
        assert copy.pending is not None
        command = from_dict(copy.pending)
        tid = job.object_id
        assert command.data.path == f"template/tmpl/{tid}/{tid}.qcow2"
        assert ledger.load(Job, delete.id).status is JobStatus.pending
        answer_pending(
            ledger, cid, lambda c: Answer(commandId=c.commandId, result=True)
        )
        assert ledger.load(DataObjectInStore, cid).state is ObjectInStoreState.Destroyed
        assert ledger.load(Job, delete.id).status is JobStatus.succeeded


class TestDeploy:
    def deploy(self, ledger, name="web-1"):
        ready_template(ledger)
        job = vms.deploy_vm(ledger, ctx(), name=name, template_ref="tiny", zone="z1")
        vm = ledger.load(VirtualMachine, job.object_id)
        return job, vm, ledger.load(Volume, vm.root_volume_id)

    def test_deploy_reserves_volume_and_template_copy_then_copies_template(
        self, ledger
    ):
        _job, _vm, volume = self.deploy(ledger)
        pool = ledger.load(StoragePool, volume.pool_id)
        base = ledger.load(DataObjectInStore, copy_id(volume.template_id, pool.id))
        assert pool.allocated == 2 * volume.size  # the volume and the cached base
        assert base.pending["kind"] == "CopyCommand"
        assert str(volume.id) in base.waiters

    def test_cached_template_answer_requests_the_clone(self, ledger):
        _job, _vm, volume = self.deploy(ledger)
        answer_pending(ledger, copy_id(volume.template_id, volume.pool_id), ok_copy)
        volume = ledger.load(Volume, volume.id)
        assert volume.state is VolumeState.Creating
        clone = from_dict(volume.pending)
        assert clone.srcTO.dataStore.role == "Primary"
        assert clone.destTO.uuid == str(volume.id)

    def test_clone_answer_starts_the_vm_and_settles_the_job(self, ledger):
        job, vm, volume = self.deploy(ledger)
        answer_pending(ledger, copy_id(volume.template_id, volume.pool_id), ok_copy)
        answer_pending(ledger, volume.id, ok_copy)
        assert ledger.load(Volume, volume.id).state is VolumeState.Ready
        assert ledger.load(VirtualMachine, vm.id).state is VmState.Running
        assert ledger.load(Job, job.id).status is JobStatus.succeeded

    def test_second_deploy_clones_the_cached_base_without_copying_again(self, ledger):
        _job, _vm, first = self.deploy(ledger)
        answer_pending(ledger, copy_id(first.template_id, first.pool_id), ok_copy)
        job = vms.deploy_vm(ledger, ctx(), name="web-2", template_ref="tiny", zone="z1")
        second = ledger.load(
            Volume, ledger.load(VirtualMachine, job.object_id).root_volume_id
        )
        assert second.state is VolumeState.Creating  # straight to the clone
        base = ledger.load(DataObjectInStore, copy_id(first.template_id, first.pool_id))
        assert base.state is ObjectInStoreState.Ready

    def test_failed_template_copy_releases_everything_and_fails_the_job(self, ledger):
        """The ROOT volume was never made: it and its VM go, and the VM's name is
        free for the retry (CloudStack's Error VM, expunged at once)."""
        job, vm, volume = self.deploy(ledger)
        pool_id = volume.pool_id
        answer_pending(ledger, copy_id(volume.template_id, pool_id), failed_copy)
        volume = ledger.load(Volume, volume.id)
        assert (volume.state, volume.pool_id) == (VolumeState.Expunged, None)
        assert ledger.load(VirtualMachine, vm.id).state is VmState.Expunging
        assert ledger.load(StoragePool, pool_id).allocated == 0
        job = ledger.load(Job, job.id)
        assert job.status is JobStatus.failed
        assert "insufficient space" in job.error
        retry = vms.deploy_vm(
            ledger, ctx(), name="web-1", template_ref="tiny", zone="z1"
        )
        assert ledger.resolve(VirtualMachine, "web-1").id == retry.object_id


class TestAttach:
    def setup_vm(self, ledger):
        ready_template(ledger)
        job = vms.deploy_vm(ledger, ctx(), name="web-1", template_ref="tiny", zone="z1")
        vm = ledger.load(VirtualMachine, job.object_id)
        root = ledger.load(Volume, vm.root_volume_id)
        answer_pending(ledger, copy_id(root.template_id, root.pool_id), ok_copy)
        answer_pending(ledger, root.id, ok_copy)
        create = volumes.create_volume(
            ledger, ctx(), name="data-1", zone="z1", size=GiB
        )
        return vm, create.object_id, root.pool_id

    def test_attach_of_allocated_volume_places_and_creates_it_first(self, ledger):
        _vm, volume_id, pool_id = self.setup_vm(ledger)
        before = ledger.load(StoragePool, pool_id).allocated
        volumes.attach_volume(ledger, ctx(), volume_id, "web-1")
        volume = ledger.load(Volume, volume_id)
        assert volume.state is VolumeState.Creating
        assert volume.pending["kind"] == "CreateObjectCommand"
        assert ledger.load(StoragePool, pool_id).allocated == before + GiB

    def test_created_volume_is_then_attached(self, ledger):
        vm, volume_id, _ = self.setup_vm(ledger)
        job = volumes.attach_volume(ledger, ctx(), volume_id, "web-1")
        answer_pending(
            ledger,
            volume_id,
            lambda c: CreateObjectAnswer(
                commandId=c.commandId,
                result=True,
                data=c.data.replace(path=c.data.uuid),
            ),
        )
        volume = ledger.load(Volume, volume_id)
        assert volume.state is VolumeState.Attaching
        answer_pending(
            ledger,
            volume_id,
            lambda c: AttachAnswer(commandId=c.commandId, result=True, disk=c.disk),
        )
        volume = ledger.load(Volume, volume_id)
        assert (volume.state, volume.vm_id, volume.device_id) == (
            VolumeState.Ready,
            vm.id,
            1,
        )
        assert ledger.load(Job, job.id).status is JobStatus.succeeded

    def fill_devices(self, ledger, vm_id):
        """Every data device id of the VM taken (1..63 but 3, the CD-ROM)."""
        vm = ledger.load(VirtualMachine, vm_id)
        for _ in DATA_DEVICE_IDS:
            vm.reserve_device(ctx(), uuid4())
        ledger.save(vm)
        assert sorted(vm.devices.values()) == [0, *DATA_DEVICE_IDS]

    def test_attach_to_a_vm_without_a_free_device_id_is_refused(self, ledger):
        vm, _, _ = self.setup_vm(ledger)
        job = volumes.create_volume(
            ledger, ctx(), name="data-2", zone="z1", size=GiB, pool_ref="gold"
        )
        answer_pending(ledger, job.object_id, created)
        self.fill_devices(ledger, vm.id)
        head = ledger.recorder.max_notification_id()
        with pytest.raises(InvalidInput, match="maximum number of data disks"):
            volumes.attach_volume(ledger, ctx(), job.object_id, "web-1")
        assert ledger.recorder.max_notification_id() == head  # nothing written
        assert ledger.load(Volume, job.object_id).state is VolumeState.Ready

    def test_attach_after_create_fails_the_job_without_a_free_device_id(self, ledger):
        vm, volume_id, _ = self.setup_vm(ledger)
        job = volumes.attach_volume(ledger, ctx(), volume_id, "web-1")
        self.fill_devices(ledger, vm.id)
        answer_pending(ledger, volume_id, created)
        job = ledger.load(Job, job.id)
        assert job.status is JobStatus.failed
        assert "maximum number of data disks (62)" in job.error
        volume = ledger.load(Volume, volume_id)
        assert (volume.state, volume.vm_id) == (VolumeState.Ready, None)
        assert str(volume_id) not in ledger.load(VirtualMachine, vm.id).devices

    def test_failed_create_returns_volume_to_allocated_and_releases(self, ledger):
        _vm, volume_id, pool_id = self.setup_vm(ledger)
        before = ledger.load(StoragePool, pool_id).allocated
        job = volumes.attach_volume(ledger, ctx(), volume_id, "web-1")
        answer_pending(
            ledger,
            volume_id,
            lambda c: CreateObjectAnswer(
                commandId=c.commandId, result=False, details="insufficient space"
            ),
        )
        volume = ledger.load(Volume, volume_id)
        assert (volume.state, volume.pool_id) == (VolumeState.Allocated, None)
        assert ledger.load(StoragePool, pool_id).allocated == before
        job = ledger.load(Job, job.id)
        assert (job.status, job.error) == (JobStatus.failed, "insufficient space")

    def test_a_failed_create_on_a_pool_frees_the_name_for_the_retry(self, ledger):
        """`volume create big-5 --pool gold` whose CreateObjectCommand failed:
        nothing was made, so the volume is expunged in the same save as the
        failed job, and the retry is the only live big-5."""
        self.setup_vm(ledger)
        job = volumes.create_volume(
            ledger, ctx(), name="big-5", zone="z1", size=GiB, pool_ref="gold"
        )
        answer_pending(
            ledger,
            job.object_id,
            lambda c: CreateObjectAnswer(
                commandId=c.commandId, result=False, details="insufficient space"
            ),
        )
        assert ledger.load(Job, job.id).error == "insufficient space"
        failed = ledger.load(Volume, job.object_id)
        assert (failed.state, failed.pool_id) == (VolumeState.Expunged, None)
        retry = volumes.create_volume(
            ledger, ctx(), name="big-5", zone="z1", size=GiB, pool_ref="gold"
        )
        answer_pending(ledger, retry.object_id, created)
        assert ledger.load(Volume, retry.object_id).state is VolumeState.Ready

    def test_an_answer_cannot_be_recorded_twice(self, ledger):
        _vm, volume_id, _ = self.setup_vm(ledger)
        volumes.attach_volume(ledger, ctx(), volume_id, "web-1")
        volume = ledger.load(Volume, volume_id)
        command = from_dict(volume.pending)
        answer = CreateObjectAnswer(
            commandId=command.commandId,
            result=True,
            data=command.data.replace(path="x"),
        )
        answers.record_answer(ledger, ctx(), volume_id, answer)
        with pytest.raises(StaleAnswer):
            answers.record_answer(ledger, ctx(), volume_id, answer)
