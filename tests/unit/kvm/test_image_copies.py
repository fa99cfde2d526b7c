"""Standalone copies on directories: a qcow2 with nothing outside itself is copied as
bytes (holes kept, checked by `qemu-img check`), anything else is converted; a full
disk or the command's deadline mid-copy leaves nothing behind.
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import pytest

from executors.agents.kvm import KvmAgent
from executors.providers import command_run
from executors.providers.directory import images
from executors.runner import (
    Completed,
)
from ledger.commands import (
    CopyCommand,
    ImageStoreTO,
    PrimaryDataStoreTO,
    TemplateObjectTO,
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
    CountingRunner,
    MiB,
    files_under,
    image_store_dir,
    info,
    qemu_img,
    qemu_io,
)


class ScriptedCheck(CountingRunner):
    """The real runner, except that `qemu-img check` exits with `code`."""

    def __init__(self, code: int) -> None:
        super().__init__()
        self.code = code

    def run(self, argv, *, timeout, on_progress=None):
        if argv[1] == "check":
            self.calls.append(list(argv))
            return Completed(self.code, "{}", "")
        return super().run(argv, timeout=timeout, on_progress=on_progress)


class Clock:
    """`time` for the command run's module: the real clock, plus a jump on demand."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.ahead


def copy_template(agent, image_store, pool, **kw):
    command = CopyCommand("c-cp", template_on(image_store), template_on(pool, None))
    return agent.handle(command, **kw)


@pytest.mark.qemu
class TestStandaloneCopy:
    """A qcow2 with nothing outside itself is copied as bytes, not re-encoded."""

    def test_qcow2_template_is_copied_byte_for_byte(
        self, agent, runner, source, image_store, pool
    ):
        assert agent.handle(download(source.as_uri(), image_store)).result
        answer = copy_template(agent, image_store, pool)
        assert answer.result, answer.details
        cached = Path(pool.path) / TMPL
        assert (
            cached.read_bytes() == (image_store_dir(image_store) / INSTALL).read_bytes()
        )
        assert (runner.count("convert"), runner.count("check")) == (0, 1)
        assert files_under(Path(pool.path)) == {cached}

    def test_raw_template_is_converted_to_qcow2(self, agent, runner, tmp_path, pool):
        store = ImageStoreTO("is-1", "secondary", f"file://{tmp_path / 'sec'}")
        (tmp_path / "sec").mkdir()
        raw = tmp_path / "disk.raw"
        raw.write_bytes(b"\xab" * 65536 + b"\0" * (MiB - 65536))
        install = f"template/tmpl/2/{TMPL}/{TMPL}.raw"
        assert agent.handle(
            download(raw.as_uri(), store, format="RAW", installPath=install)
        ).result
        answer = agent.handle(
            CopyCommand(
                "c-cp",
                TemplateObjectTO(TMPL, "tmpl", "RAW", store, path=install),
                template_on(pool, None),
            )
        )
        assert answer.result, answer.details
        cached = Path(pool.path) / TMPL
        assert info(cached)["format"] == "qcow2"
        assert qemu_io(cached, "read -P 0xab 0 64k").returncode == 0
        assert (runner.count("convert"), runner.count("check")) == (1, 0)

    def test_migration_copies_the_bytes_and_keeps_the_holes(
        self, agent, runner, pool, tmp_path
    ):
        volume = Path(pool.path) / VOL
        qemu_img("create", "-f", "qcow2", "-o", "preallocation=metadata",
                 str(volume), str(256 * MiB))  # fmt: skip
        assert qemu_io(volume, "write -P 0xab 0 64k").returncode == 0
        (tmp_path / "pool2").mkdir()
        pool2 = PrimaryDataStoreTO(
            "p-2", "pool2", "Filesystem", str(tmp_path / "pool2")
        )
        answer = agent.handle(
            CopyCommand("c-mv", volume_on(pool, path=VOL), volume_on(pool2))
        )
        assert answer.result, answer.details
        copy = tmp_path / "pool2" / VOL
        assert copy.read_bytes() == volume.read_bytes()
        assert copy.stat().st_size == volume.stat().st_size > 256 * MiB
        assert copy.stat().st_blocks * 512 < 4 * MiB  # the holes stayed holes
        assert qemu_io(copy, "read -P 0xab 0 64k").returncode == 0
        assert runner.count("convert") == 0

    def test_leaked_clusters_are_accepted(self, source, image_store, pool):
        runner = ScriptedCheck(3)
        agent = KvmAgent(runner)
        assert agent.handle(download(source.as_uri(), image_store)).result
        assert copy_template(agent, image_store, pool).result
        assert runner.count("convert") == 0

    @pytest.mark.parametrize("code", [1, 2])
    def test_a_copy_check_refuses_is_made_by_convert_instead(
        self, source, image_store, pool, code
    ):
        runner = ScriptedCheck(code)
        agent = KvmAgent(runner)
        assert agent.handle(download(source.as_uri(), image_store)).result
        answer = copy_template(agent, image_store, pool)
        assert answer.result, answer.details
        assert runner.count("convert") == 1
        cached = Path(pool.path) / TMPL
        assert files_under(Path(pool.path)) == {cached}
        assert qemu_io(cached, "read -P 0xab 0 64k").returncode == 0

    def test_without_copy_file_range_sendfile_copies(
        self, agent, source, image_store, pool, monkeypatch
    ):
        def cross_device(*args):
            raise OSError(errno.EXDEV, "Invalid cross-device link")

        assert agent.handle(download(source.as_uri(), image_store)).result
        monkeypatch.setattr(os, "copy_file_range", cross_device)
        answer = copy_template(agent, image_store, pool)
        assert answer.result, answer.details
        cached = Path(pool.path) / TMPL
        assert (
            cached.read_bytes() == (image_store_dir(image_store) / INSTALL).read_bytes()
        )

    def test_full_pool_is_insufficient_space_and_leaves_nothing(
        self, agent, source, image_store, pool, monkeypatch
    ):
        real = os.copy_file_range

        def fills_up(src, dst, count, offset_src=None, offset_dst=None):
            real(src, dst, min(count, 4096), offset_src, offset_dst)  # got this far
            raise OSError(errno.ENOSPC, "No space left on device")

        assert agent.handle(download(source.as_uri(), image_store)).result
        monkeypatch.setattr(os, "copy_file_range", fills_up)
        answer = copy_template(agent, image_store, pool)
        assert not answer.result
        assert answer.details.startswith("insufficient space: No space left on device")
        assert "\n" not in answer.details
        assert not files_under(Path(pool.path))

    def test_deadline_mid_copy_is_a_timeout_and_leaves_nothing(
        self, agent, source, image_store, pool, monkeypatch
    ):
        clock = Clock()
        real = os.copy_file_range

        def slow(*args):
            clock.ahead += 3600  # this chunk took an hour
            return real(*args)

        assert agent.handle(download(source.as_uri(), image_store)).result
        monkeypatch.setattr(command_run, "time", clock)
        monkeypatch.setattr(images, "_COPY_CHUNK", 64 * 1024)
        monkeypatch.setattr(os, "copy_file_range", slow)
        command = CopyCommand(
            "c-cp", template_on(image_store), template_on(pool, None), wait=30
        )
        answer = agent.handle(command)
        assert not answer.result
        assert answer.details.startswith("copy /")
        assert answer.details.endswith("timed out after 30 s")
        assert not files_under(Path(pool.path))
