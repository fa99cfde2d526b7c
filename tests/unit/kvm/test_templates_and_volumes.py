"""The KVM agent on directories: templates and volumes, with `qemu-img` and `qemu-io`
against `tmp_path` stores (the directory driver, reached through the agent's table).

Scripted runners (`RecordedRunner`) stand in only where the real tool can't be made to
fail on demand: a full disk, a hung command.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import http.server
import os
import select
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from executors.agents.kvm import KvmAgent
from executors.providers import command_run
from executors.providers.directory import images
from executors.runner import (
    CommandTimedOut,
    Completed,
    RecordedRunner,
    SubprocessRunner,
)
from ledger.commands import (
    AttachCommand,
    CopyCommand,
    CreateObjectCommand,
    DeleteCommand,
    DettachCommand,
    DiskTO,
    DownloadCommand,
    ImageStoreTO,
    PrimaryDataStoreTO,
    TemplateObjectTO,
    VolumeObjectTO,
)
from tests.unit.kvm.helpers import CountingRunner, MiB, files_under, info, qemu_img

TMPL = "5c6a1d7e-0b7e-4f8e-9d0a-2f3c4b5a6d7e"
VOL = "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"
INSTALL = f"template/tmpl/2/{TMPL}/{TMPL}.qcow2"


def qemu_io(path: Path, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["qemu-io", "-f", "qcow2", "-c", command, str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


def image_store_dir(store: ImageStoreTO) -> Path:
    return Path(store.uri.removeprefix("file://"))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A 32 MiB qcow2 template whose first 64 KiB are 0xab."""
    path = tmp_path / "src" / "tmpl.qcow2"
    path.parent.mkdir()
    qemu_img("create", "-f", "qcow2", str(path), str(32 * MiB))
    assert qemu_io(path, "write -P 0xab 0 64k").returncode == 0
    return path


def download(source_url: str, store: ImageStoreTO, **kw) -> DownloadCommand:
    fields = {"format": "QCOW2", "name": "tmpl", "resourceType": "TEMPLATE"}
    fields |= {"installPath": INSTALL, "store": store} | kw
    return DownloadCommand(commandId="c-dl", url=source_url, **fields)


def template_on(store, path: str | None = INSTALL) -> TemplateObjectTO:
    return TemplateObjectTO(TMPL, "tmpl", "QCOW2", store, path=path)


def volume_on(
    store, size: int = 64 * MiB, uuid: str = VOL, path=None
) -> VolumeObjectTO:
    return VolumeObjectTO(uuid, "vol", "DATADISK", size, store, path=path)


@pytest.fixture
def cached_template(agent, source, image_store, pool) -> Path:
    """The template downloaded and copied to the pool: the base of linked clones."""
    assert agent.handle(download(source.as_uri(), image_store)).result
    answer = agent.handle(
        CopyCommand("c-cp", template_on(image_store), template_on(pool, None))
    )
    assert answer.result, answer.details
    return Path(pool.path) / TMPL


@pytest.mark.qemu
class TestDownload:
    def test_file_url_lands_at_install_path_with_sizes(
        self, agent, source, image_store
    ):
        answer = agent.handle(download(source.as_uri(), image_store))
        assert answer.result, answer.details
        final = image_store_dir(image_store) / INSTALL
        assert answer.installPath == INSTALL
        assert answer.templateSize == 32 * MiB
        assert answer.templatePhySicalSize == final.stat().st_size
        assert (answer.downloadStatus, answer.downloadPct) == ("DOWNLOADED", 100)
        assert answer.checkSum == f"sha256:{sha256(source)}"
        assert files_under(final.parents[3]) == {final}  # no temporary left

    @pytest.mark.parametrize("prefix", ["", "sha256:", "SHA256:"])
    def test_matching_checksum_is_accepted(self, agent, source, image_store, prefix):
        command = download(
            source.as_uri(), image_store, checksum=prefix + sha256(source)
        )
        assert agent.handle(command).result

    def test_wrong_checksum_fails_and_leaves_nothing(self, agent, source, image_store):
        command = download(source.as_uri(), image_store, checksum="0" * 64)
        answer = agent.handle(command)
        assert not answer.result
        assert "checksum mismatch: expected 0000" in answer.details
        assert sha256(source) in answer.details
        assert not list(image_store_dir(image_store).iterdir())

    def test_raw_bytes_claimed_as_qcow2_are_refused(self, agent, tmp_path, image_store):
        fake = tmp_path / "fake.qcow2"
        fake.write_bytes(b"\0" * 4096)
        answer = agent.handle(download(fake.as_uri(), image_store))
        assert not answer.result
        assert "not a valid qcow2 image" in answer.details
        assert not files_under(tmp_path / "secondary")

    def test_template_with_a_backing_file_is_refused(
        self, agent, tmp_path, image_store
    ):
        evil = tmp_path / "evil.qcow2"
        qemu_img("create", "-f", "qcow2", "-F", "raw", "-b", "/etc/hostname", str(evil))
        answer = agent.handle(download(evil.as_uri(), image_store))
        assert not answer.result
        assert "backing file" in answer.details
        assert not files_under(tmp_path / "secondary")

    def test_template_with_an_external_data_file_is_refused(
        self, agent, tmp_path, image_store
    ):
        evil, host_disk = tmp_path / "evil.qcow2", tmp_path / "host-disk"
        qemu_img(
            "create", "-f", "qcow2", "-o", f"data_file={host_disk}", str(evil), "1M"
        )
        answer = agent.handle(download(evil.as_uri(), image_store))
        assert not answer.result
        assert f"external data file '{host_disk}'" in answer.details
        assert not files_under(tmp_path / "secondary")

    def test_http_url_is_fetched(self, agent, source, image_store):
        with serving(source.parent) as base:
            answer = agent.handle(
                download(f"{base}/tmpl.qcow2", image_store, checksum=sha256(source))
            )
            missing = agent.handle(
                download(f"{base}/nope.qcow2", image_store, installPath="t/nope.qcow2")
            )
        assert answer.result, answer.details
        assert answer.templateSize == 32 * MiB
        assert not missing.result
        assert "HTTP 404" in missing.details
        assert files_under(image_store_dir(image_store)) == {
            image_store_dir(image_store) / INSTALL
        }

    def test_unknown_scheme_is_refused(self, agent, image_store):
        answer = agent.handle(download("ftp://example.org/t.qcow2", image_store))
        assert not answer.result
        assert "url" in answer.details


@contextlib.contextmanager
def serving(directory: Path) -> Iterator[str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format, *args):
            pass

    handler = functools.partial(Quiet, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.mark.qemu
class TestTemplateAndClones:
    def test_template_copy_to_pool_is_a_standalone_qcow2(
        self, agent, source, image_store, pool
    ):
        assert agent.handle(download(source.as_uri(), image_store)).result
        seen: list[float] = []
        answer = agent.handle(
            CopyCommand("c-cp", template_on(image_store), template_on(pool, None)),
            on_progress=seen.append,
        )
        assert answer.result, answer.details
        cached = Path(pool.path) / TMPL
        assert answer.newData.path == TMPL
        assert answer.newData.size == 32 * MiB
        assert answer.newData.physicalSize == cached.stat().st_size
        assert answer.newData.dataStore == pool
        assert "backing-filename" not in info(cached)
        assert seen
        assert seen[-1] == 1.0
        assert files_under(Path(pool.path)) == {cached}

    def test_linked_clone_reads_the_template_through_its_backing_file(
        self, agent, cached_template, pool
    ):
        answer = agent.handle(
            CopyCommand("c-cl", template_on(pool, TMPL), volume_on(pool, 64 * MiB))
        )
        assert answer.result, answer.details
        clone = Path(pool.path) / VOL
        assert (answer.newData.path, answer.newData.size) == (VOL, 64 * MiB)
        assert info(clone)["backing-filename"] == str(cached_template.resolve())
        assert info(clone)["virtual-size"] == 64 * MiB
        assert qemu_io(clone, "read -P 0xab 0 64k").returncode == 0
        assert qemu_io(clone, "read -P 0xcd 0 64k").returncode != 0

    def test_clone_is_never_smaller_than_its_template(
        self, agent, cached_template, pool
    ):
        answer = agent.handle(
            CopyCommand("c-cl", template_on(pool, TMPL), volume_on(pool, 1 * MiB))
        )
        assert answer.newData.size == 32 * MiB

    def test_repeated_clone_answers_success_without_a_second_create(
        self, agent, runner, cached_template, pool
    ):
        command = CopyCommand("c-cl", template_on(pool, TMPL), volume_on(pool))
        first = agent.handle(command)
        creates = runner.count("create")
        second = agent.handle(command)
        assert first.result
        assert second == first
        assert runner.count("create") == creates == 1

    def test_volume_copy_to_another_pool_flattens_the_clone(
        self, agent, runner, cached_template, pool, tmp_path
    ):
        assert agent.handle(
            CopyCommand("c-cl", template_on(pool, TMPL), volume_on(pool))
        ).result
        (tmp_path / "pool2").mkdir()
        pool2 = PrimaryDataStoreTO(
            "p-2", "pool2", "Filesystem", str(tmp_path / "pool2")
        )
        answer = agent.handle(
            CopyCommand("c-mv", volume_on(pool, path=VOL), volume_on(pool2))
        )
        assert answer.result, answer.details
        copy = tmp_path / "pool2" / VOL
        assert answer.newData.path == VOL
        assert answer.newData.size == 64 * MiB
        assert "backing-filename" not in info(copy)
        assert qemu_io(copy, "read -P 0xab 0 64k").returncode == 0
        assert runner.count("convert") == 1  # only a byte copy can't flatten


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


class TestSubprocessRunner:
    def test_output_and_return_code_come_back(self):
        done = SubprocessRunner().run(
            ["sh", "-c", "echo out; echo err >&2; exit 3"], timeout=10
        )
        assert done == Completed(3, "out\n", "err\n")

    def test_timeout_kills_the_whole_process_group(self):
        argv = ["sh", "-c", "sleep 30 & echo $!; wait"]
        with pytest.raises(CommandTimedOut) as caught:
            SubprocessRunner().run(argv, timeout=1.0)
        assert caught.value.argv == argv
        assert caught.value.timeout == 1.0
        child = int(caught.value.stdout.split()[0])  # the backgrounded grandchild
        assert exited(child)


def exited(pid: int) -> bool:
    """True once `pid` has exited (a zombie counts), waiting at most 10 s for it."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        readable, _, _ = select.select([fd], [], [], 10)
        return bool(readable)
    finally:
        os.close(fd)
