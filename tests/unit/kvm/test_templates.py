"""Templates on directories through the KVM agent: the SSVM's download into an image
store, the copy into a pool's base image cache, and linked clones of it.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.commands import (
    CopyCommand,
    PrimaryDataStoreTO,
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
    image_store_dir,
    info,
    qemu_img,
    qemu_io,
    sha256,
)


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
