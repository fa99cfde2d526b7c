"""The KVM agent's staging-cache hops (`executors.agents.cache_hops`), offline.

An object store provider whose store is a dict in memory stands in for S3, so the
hops run with the real `qemu-img` and the directory driver: a backup written to
the cache, uploaded, its cache file and primary copy gone; a delta whose parent is
fetched into the cache first; a restore whose backup (and its parent) is fetched
first; a failed upload that keeps the primary copy and leaves the cache empty.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

import pytest

from executors.agents.kvm import KvmAgent
from executors.providers import installed, registry
from executors.providers.driver import AgentFailure
from executors.providers.s3 import PROVIDER as S3
from executors.providers.s3.driver import object_driver
from executors.providers.s3.objects import ObjectHead, Progress
from ledger.commands import (
    CopyCommand,
    CreateObjectCommand,
    DownloadCommand,
    ImageStoreTO,
    PrimaryDataStoreTO,
    SnapshotObjectTO,
    TemplateObjectTO,
    VolumeObjectTO,
)
from tests.unit.kvm.helpers import MiB, files_under, qemu_img, reads, write

pytestmark = pytest.mark.qemu
VOL = "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"


class MemoryStore:
    """`ObjectStore` in a dict: path -> (bytes, metadata)."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, dict[str, str]]] = {}
        self.refuse_uploads = False

    def head(self, path: str) -> ObjectHead | None:
        found = self.objects.get(path)
        return None if found is None else ObjectHead(len(found[0]), found[1])

    def upload(
        self, source: Path, path: str, metadata: Mapping[str, str], progress: Progress
    ) -> None:
        if self.refuse_uploads:
            raise AgentFailure("s3://mem: upload refused: AccessDenied")
        self.objects[path] = (source.read_bytes(), dict(metadata))
        progress(len(self.objects[path][0]))

    def download(self, path: str, dest: Path, progress: Progress) -> None:
        dest.write_bytes(self.objects[path][0])

    def delete(self, path: str) -> None:
        self.objects.pop(path, None)


@pytest.fixture
def setup(tmp_path: Path):
    store = MemoryStore()
    fake = dataclasses.replace(
        S3,
        name="memory",
        recorded_as="Memory",
        driver=object_driver("memory", lambda _: store),
    )
    providers = registry.Registry({**installed().providers, "memory": fake})
    for d in ("pool", "cache"):
        (tmp_path / d).mkdir()
    pool = PrimaryDataStoreTO("p-id", "pool", "Filesystem", str(tmp_path / "pool"))
    cache = ImageStoreTO(
        "c-id", "cache", str(tmp_path / "cache"), providerName="NFS", role="ImageCache"
    )
    s3 = ImageStoreTO("s-id", "s3", "s3://mem?endpoint=http://h", providerName="Memory")
    agent = KvmAgent(providers=providers)
    volume = VolumeObjectTO(VOL, "vol", "DATADISK", 32 * MiB, pool)
    made = agent.handle(CreateObjectCommand("mk", volume))
    assert made.result, made.details
    return agent, store, pool, cache, s3, volume.replace(path=VOL), tmp_path


def snapshot(agent, volume, pool, name: str) -> SnapshotObjectTO:
    snap = SnapshotObjectTO(name, name, volume, pool)
    taken = agent.handle(CreateObjectCommand(f"take-{name}", snap))
    assert taken.result, taken.details
    return taken.data


def back_up(agent, taken, s3, cache, parent: str | None = None):
    dest = taken.replace(dataStore=s3, path=None, parentSnapshotPath=parent)
    options = {"removeAfterCopy": "true", "full": "false" if parent else "true"}
    return agent.handle(
        CopyCommand(f"b-{taken.uuid}", taken, dest, options=options, cacheTO=cache)
    )


def test_a_backup_and_a_delta_go_up_through_the_cache_and_come_back(setup):
    agent, store, pool, cache, s3, volume, root = setup
    write(root / "pool" / VOL, 0xAA)
    first = back_up(agent, snapshot(agent, volume, pool, "s1"), s3, cache)
    assert first.result, first.details
    write(root / "pool" / VOL, 0xBB)
    second = back_up(
        agent, snapshot(agent, volume, pool, "s2"), s3, cache, first.newData.path
    )
    assert second.result, second.details
    assert second.newData.dataStore == s3
    assert second.newData.parentSnapshotPath == first.newData.path
    assert set(store.objects) == {first.newData.path, second.newData.path}
    assert store.objects[second.newData.path][0] != store.objects[first.newData.path][0]
    assert files_under(root / "cache") == set()  # the workspace went
    assert files_under(root / "pool") == {root / "pool" / VOL}  # removeAfterCopy

    restored = VolumeObjectTO("r-id", "r", "DATADISK", 32 * MiB, pool)
    back = agent.handle(CopyCommand("restore", second.newData, restored, cacheTO=cache))
    assert back.result, back.details
    assert reads(root / "pool" / "r-id", 0xBB)
    assert files_under(root / "cache") == set()


def test_a_failed_upload_keeps_the_snapshot_on_primary_and_the_cache_empty(setup):
    agent, store, pool, cache, s3, volume, root = setup
    taken = snapshot(agent, volume, pool, "s1")
    store.refuse_uploads = True
    failed = back_up(agent, taken, s3, cache)
    assert not failed.result
    assert failed.details.startswith("uploading from cache cache: ")
    assert "AccessDenied" in failed.details
    assert (root / "pool" / taken.path).is_file()
    assert files_under(root / "cache") == set()
    assert store.objects == {}
    store.refuse_uploads = False
    assert back_up(agent, taken, s3, cache).result  # the retry finds it on primary


def test_the_staging_copy_lands_in_the_cache_and_a_template_with_a_backing_file_not(
    setup,
):
    agent, store, _, cache, s3, _, root = setup

    image = root / "t.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", str(image), "16M")
    store.objects["template/tmpl/t/t.qcow2"] = (image.read_bytes(), {})
    src = TemplateObjectTO("t", "t", "QCOW2", s3, path="template/tmpl/t/t.qcow2")
    staged = agent.handle(CopyCommand("stage", src, src.replace(dataStore=cache)))
    assert staged.result, staged.details
    assert staged.newData.path == "template/tmpl/t/t.qcow2"
    assert (root / "cache" / "template/tmpl/t/t.qcow2").is_file()

    qemu_img("create", "-q", "-f", "qcow2", "-b", "/etc/hostname", "-F", "raw",
             str(image))  # fmt: skip
    store.objects["template/tmpl/u/u.qcow2"] = (image.read_bytes(), {})
    bad = src.replace(uuid="u", path="template/tmpl/u/u.qcow2")
    refused = agent.handle(CopyCommand("stage-u", bad, bad.replace(dataStore=cache)))
    assert not refused.result
    assert "backing file" in refused.details
    assert not (root / "cache" / "template/tmpl/u").exists()


def test_an_object_store_reads_a_file_template_only_under_the_allowed_roots(setup):
    """The object driver uploads a `file://` template in place: the URL policy holds
    there too (real path inside `allowedRoots`, links followed)."""
    agent, store, _pool, _cache, s3, _volume, root = setup
    (root / "img").mkdir()
    source = root / "img" / "t.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", str(source), "1M")
    (root / "img" / "link.qcow2").symlink_to("/etc/hostname")
    install = "template/tmpl/t/t.qcow2"

    def download(url: str, roots: list[str]):
        return agent.handle(
            DownloadCommand(
                "dl", url, "QCOW2", "t", "TEMPLATE", install, s3, allowedRoots=roots
            )
        )

    outside = download(source.as_uri(), [str(root / "pool")])
    assert not outside.result
    assert "template.url.allowed.roots" in outside.details
    escaped = download((root / "img" / "link.qcow2").as_uri(), [str(root / "img")])
    assert not escaped.result
    assert "leads out of the allowed roots" in escaped.details
    assert store.objects == {}
    inside = download(source.as_uri(), [str(root / "img")])
    assert inside.result, inside.details
    assert set(store.objects) == {install}
