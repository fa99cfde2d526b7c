"""The iscsi driver's snapshot and copy steps against a fake tgtd and qemu-img
(`fake.FakeHost`): the argv each step runs, a failed write leaving no `.part`
(nor the folders it made), and no CHAP password in any argv but the one that
gives it to tgtd, nor in a failure's line."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.commands import (
    CopyCommand,
    CreateObjectCommand,
    ImageStoreTO,
    PrimaryDataStoreTO,
    SnapshotObjectTO,
)
from tests.unit.iscsi.fake import FakeHost, MiB
from tests.unit.iscsi.test_driver import VOL, lun, ok, volume

SNAP = "5d1e0c3b-2a4f-4b6e-9c8d-7e6f5a4b3c2d"
FAIL = "qemu-img: error while writing sector 4096: Input/output error"


@pytest.fixture
def store(tmp_path: Path) -> ImageStoreTO:
    (tmp_path / "sec").mkdir()
    return ImageStoreTO("s-1", "sec", str(tmp_path / "sec"))


def snapshot(where, path: str | None = None) -> SnapshotObjectTO:
    return SnapshotObjectTO(SNAP, "nightly", volume(), where, path=path)


def converts(fake: FakeHost) -> list[list[str]]:
    return [c for c in fake.calls if c[:2] == ["qemu-img", "convert"]]


def password_holders(fake: FakeHost, luns: Path) -> list[list[str]]:
    password = lun(luns).password(create=False)
    return [c for c in fake.calls if password in " ".join(c)]


def partial_then(why: str):
    """A `fail` hook: the convert writes half its output, then fails."""

    def fail(argv: list[str]) -> str | None:
        if argv[:2] != ["qemu-img", "convert"]:
            return None
        Path(argv[-1]).write_bytes(b"half")
        return why

    return fail


def leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_a_snapshot_is_the_lun_read_over_libiscsi_into_a_staged_qcow2(
    agent, host, lun_dir, store
):
    ok(agent.handle(CreateObjectCommand("c-1", volume())))
    taken = ok(agent.handle(CreateObjectCommand("c-2", snapshot(volume().dataStore))))
    vol = lun(lun_dir)
    assert taken.data.path == f"{vol.iqn}@{SNAP}"
    assert converts(host) == []  # nothing copied when taken

    src = snapshot(volume().dataStore, taken.data.path)
    backup = ok(agent.handle(CopyCommand("c-3", src, snapshot(store),
                                         options={"full": "true"})))  # fmt: skip
    name = f"snapshots/{VOL}/{SNAP}.qcow2"
    assert backup.newData.path == name
    [argv] = converts(host)
    assert argv[:2] == ["qemu-img", "convert"]
    assert argv[argv.index("-O") + 1] == "qcow2"
    assert "secret,id=" in " ".join(argv)
    assert f"file={vol.secret_file}" in " ".join(argv)
    opts = argv[argv.index("--image-opts") + 1]
    assert "file.driver=iscsi" in opts
    assert f"file.target={vol.iqn}" in opts
    out = Path(argv[-1])
    assert out.parent == Path(store.uri) / "snapshots" / VOL
    assert out.name != f"{SNAP}.qcow2"  # staged, renamed once complete
    assert leftovers(Path(store.uri)) == ["snapshots", f"snapshots/{VOL}", name]
    assert password_holders(host, lun_dir) == host.tgtadm_calls("new", "account")


def test_a_failed_backup_leaves_no_part_nor_the_folders_it_made(
    agent, host, lun_dir, store
):
    ok(agent.handle(CreateObjectCommand("c-1", volume())))
    host.fail = partial_then(FAIL)
    src = snapshot(volume().dataStore, f"{lun(lun_dir).iqn}@{SNAP}")
    failed = agent.handle(CopyCommand("c-2", src, snapshot(store),
                                      options={"full": "true"}))  # fmt: skip
    assert not failed.result
    assert failed.details == (
        "qemu-img convert failed: error while writing sector 4096: Input/output error"
    )
    assert "\n" not in failed.details
    assert lun(lun_dir).password(create=False) not in failed.details
    assert len(converts(host)) == 1
    assert leftovers(Path(store.uri)) == []  # no .part, no snapshots/<volume>


def test_migration_off_the_pool_drains_the_lun_and_a_failure_leaves_nothing(
    agent, host, lun_dir, tmp_path
):
    (tmp_path / "fs").mkdir()
    fs = PrimaryDataStoreTO("p-fs", "fs", "Filesystem", str(tmp_path / "fs"))
    ok(agent.handle(CreateObjectCommand("c-1", volume())))
    host.fail = partial_then(FAIL)
    failed = agent.handle(CopyCommand("c-2", volume(), volume(where=fs)))
    assert not failed.result
    [argv] = converts(host)
    assert Path(argv[-1]).parent == tmp_path / "fs"
    assert Path(argv[-1]).name != VOL  # written staged
    assert leftovers(tmp_path / "fs") == []
    host.fail = lambda argv: None
    off = ok(agent.handle(CopyCommand("c-3", volume(), volume(where=fs))))
    assert off.newData.path == VOL
    assert leftovers(tmp_path / "fs") == [VOL]
    assert password_holders(host, lun_dir) == host.tgtadm_calls("new", "account")


def test_staging_a_volume_parks_the_lun_on_the_store_and_a_failure_leaves_nothing(
    agent, host, lun_dir, store
):
    ok(agent.handle(CreateObjectCommand("c-1", volume())))
    host.fail = partial_then(FAIL)
    parked = volume(where=store)
    failed = agent.handle(CopyCommand("c-2", volume(), parked))
    assert not failed.result
    assert leftovers(Path(store.uri)) == []
    host.fail = lambda argv: None
    done = ok(agent.handle(CopyCommand("c-3", volume(), parked)))
    assert leftovers(Path(store.uri)) == ["volumes", done.newData.path]
    assert done.newData.size == 32 * MiB
