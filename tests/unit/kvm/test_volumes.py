"""Volumes on directory pools through the KVM agent: create, delete, attach and detach
checks, and the failures (full disk, timeout, names escaping the pool, a command no
route takes) answered in one line with nothing left behind.

Scripted runners (`RecordedRunner`) stand in only where the real tool can't be made
to fail on demand: a full disk, a hung command.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from executors.agents.kvm import KvmAgent
from executors.runner import (
    CommandTimedOut,
    Completed,
    RecordedRunner,
)
from ledger.commands import (
    AttachCommand,
    CopyCommand,
    CreateObjectCommand,
    DeleteCommand,
    DettachCommand,
    DiskTO,
)
from tests.unit.kvm.commands import (
    INSTALL,
    TMPL,
    VOL,
    download,
    template_on,
    volume_on,
)
from tests.unit.kvm.helpers import (
    MiB,
    files_under,
    info,
)


@pytest.mark.qemu
class TestVolumes:
    def test_empty_volume_has_the_requested_virtual_size(self, agent, pool):
        answer = agent.handle(CreateObjectCommand("c-1", volume_on(pool, 10 * MiB)))
        assert answer.result, answer.details
        assert (answer.data.path, answer.data.size) == (VOL, 10 * MiB)
        assert info(Path(pool.path) / VOL)["virtual-size"] == 10 * MiB

    def test_repeat_after_a_crash_removes_the_leftover_and_creates_once(
        self, agent, runner, pool
    ):
        leftover = Path(pool.path) / f".{VOL}.part"
        leftover.write_bytes(b"half-written")
        command = CreateObjectCommand("c-1", volume_on(pool))
        assert agent.handle(command).result
        assert not leftover.exists()
        leftover.write_bytes(b"from a run that crashed after another finished")
        repeat = agent.handle(command)
        assert repeat.result
        assert repeat.data.size == 64 * MiB
        assert runner.count("create") == 1
        assert files_under(Path(pool.path)) == {Path(pool.path) / VOL}

    def test_delete_is_idempotent(self, agent, pool):
        assert agent.handle(CreateObjectCommand("c-1", volume_on(pool))).result
        command = DeleteCommand("c-2", volume_on(pool, path=VOL))
        assert agent.handle(command).result
        assert not (Path(pool.path) / VOL).exists()
        assert agent.handle(command).result

    def test_deleting_a_template_removes_its_emptied_directory(
        self, agent, source, image_store, tmp_path
    ):
        assert agent.handle(download(source.as_uri(), image_store)).result
        answer = agent.handle(DeleteCommand("c-3", template_on(image_store)))
        assert answer.result, answer.details
        assert not (tmp_path / "secondary" / INSTALL).parent.exists()
        assert (tmp_path / "secondary" / "template").exists()  # only the leaf goes

    @pytest.mark.parametrize("command_class", [AttachCommand, DettachCommand])
    def test_attach_and_detach_check_the_disk(self, agent, pool, command_class):
        disk = DiskTO(volume_on(pool, path=VOL), 1, None, "DATADISK")
        missing = agent.handle(command_class("c-4", disk, "i-2-3-VM"))
        assert not missing.result
        assert VOL in missing.details
        assert "not found" in missing.details
        assert agent.handle(CreateObjectCommand("c-1", volume_on(pool))).result
        answer = agent.handle(command_class("c-5", disk, "i-2-3-VM"))
        assert answer.result
        assert answer.disk == disk


class TestFailures:
    def test_full_disk_is_reported_as_insufficient_space(self, pool):
        def full_disk(argv: list[str]) -> Completed:
            Path(argv[-2]).write_bytes(b"partial")  # qemu-img got this far
            return Completed(
                1,
                "",
                f"qemu-img: {argv[-2]}: Could not resize: No space left on device\n",
            )

        answer = KvmAgent(RecordedRunner(full_disk)).handle(
            CreateObjectCommand("c-1", volume_on(pool))
        )
        assert not answer.result
        assert "insufficient space" in answer.details
        assert "\n" not in answer.details
        assert not files_under(Path(pool.path))

    def test_timeout_becomes_a_failure_answer_and_cleans_up(self, pool):
        def hangs(argv: list[str]) -> Completed:
            Path(argv[-2]).write_bytes(b"partial")
            raise CommandTimedOut(argv, 0.5)

        answer = KvmAgent(RecordedRunner(hangs)).handle(
            CreateObjectCommand("c-1", volume_on(pool), wait=30)
        )
        assert not answer.result
        assert answer.details == "qemu-img create timed out after 30 s"
        assert not files_under(Path(pool.path))

    def test_progress_from_scripted_convert_output_reaches_the_caller(self):
        runner = RecordedRunner(
            lambda argv: Completed(0, "  (10.00/100%)\r  (55.50/100%)\r", "")
        )
        seen: list[float] = []
        runner.run(["qemu-img", "convert"], timeout=1, on_progress=seen.append)
        assert seen == [0.1, 0.555]
        assert runner.calls == [["qemu-img", "convert"]]

    @pytest.mark.parametrize(
        "make",
        [
            lambda pool: CreateObjectCommand("c", volume_on(pool, uuid="../evil")),
            lambda pool: CreateObjectCommand("c", volume_on(pool, uuid="/tmp/evil")),
            lambda pool: DeleteCommand("c", volume_on(pool, path="../../etc/passwd")),
            lambda pool: CopyCommand(
                "c", template_on(pool, TMPL), volume_on(pool, uuid="../evil")
            ),
        ],
    )
    def test_a_name_escaping_the_pool_writes_nothing(self, tmp_path, pool, make):
        before = files_under(tmp_path)
        runner = RecordedRunner(lambda argv: Completed(0, "", ""))
        answer = KvmAgent(runner).handle(make(pool))
        assert not answer.result
        assert "invalid path" in answer.details
        assert runner.calls == []
        assert files_under(tmp_path) == before

    def test_install_path_escaping_the_image_store_writes_nothing(
        self, tmp_path, source, image_store
    ):
        before = files_under(tmp_path)
        answer = KvmAgent().handle(
            download(source.as_uri(), image_store, installPath="../evil.qcow2")
        )
        assert not answer.result
        assert files_under(tmp_path) == before

    def test_unsupported_command_is_answered_not_raised(self, pool):
        answer = KvmAgent(RecordedRunner(lambda argv: Completed(0, "", ""))).handle(
            CreateObjectCommand("c-9", template_on(pool))
        )
        assert not answer.result
        assert answer.details.startswith("unsupported command CreateObjectCommand")
        assert answer.commandId == "c-9"
