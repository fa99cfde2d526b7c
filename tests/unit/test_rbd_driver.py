"""The rbd driver through the KVM agent, on a Ceph cluster in a dict (`rbd_fake`).

Every operation is idempotent (a repeat finds the finished image and runs no
second write) and a failure leaves no half-made image: the argv the driver runs
and what the fake cluster holds afterwards say so, for each step that can fail.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from executors.agents.kvm import KvmAgent
from executors.runner import CommandTimedOut
from ledger.commands import (
    AttachCommand,
    CopyCommand,
    CreateObjectCommand,
    DeleteCommand,
    DiskTO,
    GetStorageStatsCommand,
    ImageStoreTO,
    PrimaryDataStoreTO,
    ResizeVolumeCommand,
    RevertSnapshotCommand,
    SnapshotObjectTO,
    TemplateObjectTO,
    VolumeObjectTO,
)
from tests.unit.rbd_fake import FakeCeph, Img, words_of

MiB = 1 << 20
URL = "rbd://admin@127.0.0.1:3300/storctl"
BASE = "cloudstack-base-snap"
TMPL, VOL, SNAP = "tmpl-1", "vol-1", "snap-1"


@pytest.fixture
def ceph(monkeypatch, tmp_path) -> FakeCeph:
    monkeypatch.setenv("STORCTL_CREDENTIALS", str(tmp_path / "absent.toml"))
    monkeypatch.setenv("STORCTL_CRED_FAKE_KEYRING", "/etc/lab/keyring")
    return FakeCeph()


@pytest.fixture
def agent(ceph: FakeCeph) -> KvmAgent:
    return KvmAgent(ceph)


@pytest.fixture
def pool() -> PrimaryDataStoreTO:
    return PrimaryDataStoreTO("p-1", "ceph", "RBD", URL, credentials="fake")


@pytest.fixture
def store(tmp_path: Path) -> ImageStoreTO:
    (tmp_path / "sec").mkdir()
    return ImageStoreTO("s-1", "sec", str(tmp_path / "sec"))


@pytest.fixture
def fs(tmp_path: Path) -> PrimaryDataStoreTO:
    (tmp_path / "fs").mkdir()
    return PrimaryDataStoreTO("p-2", "fs", "Filesystem", str(tmp_path / "fs"))


def volume(pool, size=32 * MiB, path=None, uuid=VOL) -> VolumeObjectTO:
    return VolumeObjectTO(uuid, "v", "DATADISK", size, pool, path=path)


def verbs(ceph: FakeCeph) -> list[str]:
    """What ran, as `rbd create`, `qemu-img convert`, ... (no connection options)."""
    out = []
    for argv in ceph.calls:
        words = words_of(argv)
        head = " ".join(words[:2]) if words[0] == "snap" else words[0]
        out.append(f"{argv[0]} {head}")
    return out


def template_copy(store, pool, tmp_path) -> CopyCommand:
    (tmp_path / "sec" / "t.qcow2").write_bytes(b"qcow2")
    return CopyCommand(
        "c-copy",
        TemplateObjectTO(TMPL, "t", "QCOW2", store, path="t.qcow2"),
        TemplateObjectTO(TMPL, "t", "QCOW2", pool),
    )


# ------------------------------------------------------------ volumes


def test_create_volume_is_rbd_create_once(agent, ceph, pool):
    made = agent.handle(CreateObjectCommand("c-1", volume(pool)))
    assert made.result, made.details
    assert (made.data.path, made.data.format, made.data.size) == (VOL, "RAW", 32 * MiB)
    again = agent.handle(CreateObjectCommand("c-1", volume(pool)))
    assert again.result
    assert verbs(ceph).count("rbd create") == 1
    create = next(argv for argv in ceph.calls if "create" in argv)
    assert create[-4:] == ["--size", f"{32 * MiB}B", "--no-progress", f"storctl/{VOL}"]
    bigger = agent.handle(CreateObjectCommand("c-2", volume(pool, 64 * MiB)))
    assert not bigger.result
    assert f"storctl/{VOL} exists with {32 * MiB} bytes" in bigger.details


def test_the_template_is_copied_once_with_a_protected_base_snapshot(
    agent, ceph, pool, store, tmp_path
):
    command = template_copy(store, pool, tmp_path)
    copied = agent.handle(command)
    assert copied.result, copied.details
    assert copied.newData.path == TMPL
    assert copied.newData.format == "RAW"
    assert ceph.images[TMPL].snaps == {BASE: True}
    assert f"{TMPL}.part" not in ceph.images
    assert verbs(ceph)[-5:] == [
        "rbd snap create", "rbd snap protect", "rbd mv", "rbd info", "rbd du"
    ]  # fmt: skip
    ran = len(ceph.calls)
    assert agent.handle(command).result
    assert "qemu-img convert" not in verbs(ceph)[ran:]


@pytest.mark.parametrize(
    ("tool", "verb", "says"),
    [
        ("qemu-img", "convert", "qemu-img convert failed: error writing"),
        ("rbd", "snap protect", "rbd snap protect failed: protect failed"),
        ("rbd", "mv", "rbd mv failed: rename error"),
    ],
)
def test_a_failed_template_copy_leaves_no_image(
    agent, ceph, pool, store, tmp_path, tool, verb, says
):
    stderr = {"qemu-img": "qemu-img: error writing\n", "rbd": ""}[tool]
    if tool == "rbd":
        stderr = f"rbd: {says.split(': ', 1)[1]}: (5) Input/output error\n"
    ceph.fail(tool, verb, stderr)
    failed = agent.handle(template_copy(store, pool, tmp_path))
    assert not failed.result
    assert says in failed.details
    assert ceph.images == {}, "no half-made image"
    assert "/etc/lab/keyring" not in failed.details


def test_a_root_is_an_rbd_clone_grown_to_its_size(agent, ceph, pool):
    ceph.images[TMPL] = Img(64 * MiB, snaps={BASE: True})
    base = TemplateObjectTO(TMPL, "t", "RAW", pool, path=TMPL)
    command = CopyCommand("c-1", base, volume(pool, 128 * MiB))
    cloned = agent.handle(command)
    assert cloned.result, cloned.details
    assert ceph.images[VOL].parent == (TMPL, BASE)
    assert ceph.images[VOL].size == cloned.newData.size == 128 * MiB
    assert agent.handle(command).result
    assert verbs(ceph).count("rbd clone") == 1


def test_a_clone_whose_resize_fails_is_removed_and_a_missing_base_is_cephs_words(
    agent, ceph, pool
):
    ceph.images[TMPL] = Img(64 * MiB, snaps={BASE: True})
    base = TemplateObjectTO(TMPL, "t", "RAW", pool, path=TMPL)
    ceph.fail("rbd", "resize", "rbd: resize error: (28) No space left on device\n")
    failed = agent.handle(CopyCommand("c-1", base, volume(pool, 128 * MiB)))
    assert (failed.result, VOL in ceph.images) == (False, False)
    assert failed.details == (
        "rbd resize failed: resize error: (28) No space left on device"
    )
    gone = TemplateObjectTO("gone", "t", "RAW", pool, path="gone")
    missing = agent.handle(CopyCommand("c-2", gone, volume(pool)))
    assert (
        missing.details
        == "rbd clone failed: clone error: (2) No such file or directory"
    )
    assert set(ceph.images) == {TMPL}


def test_a_template_with_clones_is_not_deleted_a_volume_goes_with_its_snapshots(
    agent, ceph, pool
):
    ceph.images[TMPL] = Img(64 * MiB, snaps={BASE: True})
    ceph.images[VOL] = Img(64 * MiB, (TMPL, BASE), snaps={"s1": False, "s2": True})
    base = TemplateObjectTO(TMPL, "t", "RAW", pool, path=TMPL)
    refused = agent.handle(DeleteCommand("c-1", base))
    assert not refused.result
    assert refused.details == (
        f"template image storctl/{TMPL} still has clones: storctl/{VOL}"
    )
    assert agent.handle(DeleteCommand("c-2", volume(pool, path=VOL))).result
    assert agent.handle(DeleteCommand("c-2", volume(pool, path=VOL))).result
    assert agent.handle(DeleteCommand("c-3", base)).result
    assert ceph.images == {}


def test_resize_attach_and_stats(agent, ceph, pool):
    ceph.images[VOL] = Img(32 * MiB)
    grown = agent.handle(ResizeVolumeCommand("c-1", volume(pool, path=VOL), 32 * MiB,
                                             64 * MiB))  # fmt: skip
    assert (grown.result, grown.newSize) == (True, 64 * MiB)
    shrink = agent.handle(ResizeVolumeCommand("c-2", volume(pool, path=VOL), 64 * MiB,
                                              16 * MiB))  # fmt: skip
    assert "only allowed with the --allow-shrink flag" in shrink.details
    disk = DiskTO(volume(pool, path="absent"), 1, "absent", "DATADISK")
    missing = agent.handle(AttachCommand("c-3", disk, "vm"))
    assert missing.details == "image storctl/absent not found"
    stats = agent.handle(GetStorageStatsCommand("c-4", pool))
    assert (stats.usedBytes, stats.capacityBytes) == (4096, 4096 + (1 << 30))


def test_a_write_ceph_held_on_a_full_pool_is_insufficient_space(agent, ceph, pool):
    ceph.full = True
    ceph.fail("rbd", "create", "rbd: create error: (110) Connection timed out\n")
    answer = agent.handle(CreateObjectCommand("c-1", volume(pool)))
    assert answer.details == (
        "insufficient space: rbd create failed: create error: (110) Connection "
        "timed out (pool storctl is full)"
    )
    create = next(argv for argv in ceph.calls if "create" in argv)
    assert "--rados_osd_op_timeout=60" in create


def test_a_timeout_names_the_step_never_the_keyring(ceph, pool):
    class Slow:
        def run(self, argv, *, timeout, on_progress=None):
            raise CommandTimedOut(argv, timeout)

    answer = KvmAgent(Slow()).handle(CreateObjectCommand("c-1", volume(pool), wait=3))
    assert answer.details == "rbd info timed out after 3 s"


# ------------------------------------------------------------ snapshots


def snapshot_on(pool, store=None, path=None) -> SnapshotObjectTO:
    vol = volume(pool, path=VOL)
    return SnapshotObjectTO(SNAP, "s", vol, store or pool, path=path)


def test_a_snapshot_is_native_backed_up_whole_and_kept_on_primary(
    agent, ceph, pool, store, tmp_path
):
    ceph.images[VOL] = Img(32 * MiB)
    taken = agent.handle(CreateObjectCommand("c-1", snapshot_on(pool)))
    assert taken.result, taken.details
    assert taken.data.path == f"{VOL}@{SNAP}"
    assert agent.handle(CreateObjectCommand("c-1", snapshot_on(pool))).result
    assert verbs(ceph).count("rbd snap create") == 1
    options = {"full": "true", "removeAfterCopy": "true"}
    backup = CopyCommand("c-2", taken.data, snapshot_on(pool, store), options=options)
    done = agent.handle(backup)
    assert done.result, done.details
    assert done.newData.path == f"snapshots/{VOL}/{SNAP}.qcow2"
    assert (tmp_path / "sec" / done.newData.path).is_file()
    assert SNAP in ceph.images[VOL].snaps, "kept on primary"
    convert = next(a for a in ceph.calls if a[:2] == ["qemu-img", "convert"])
    assert convert[-2].startswith(f"rbd:storctl/{VOL}@{SNAP}:")
    assert "-W" not in convert


def test_revert_rolls_back_on_primary_else_writes_the_backup_back_guarded(
    agent, ceph, pool, store, tmp_path
):
    ceph.images[VOL] = Img(32 * MiB, snaps={SNAP: False})
    (tmp_path / "sec" / "b.qcow2").write_bytes(b"qcow2")
    command = RevertSnapshotCommand("c-1", snapshot_on(pool, store, "b.qcow2"))
    rolled = agent.handle(command)
    assert (rolled.result, rolled.details) == (True, "rbd snap rollback")
    del ceph.images[VOL].snaps[SNAP]
    written = agent.handle(command)
    assert (written.result, written.details) == (True, "from the backup")
    assert ceph.images[VOL].size == ceph.file_size
    assert ceph.images[VOL].snaps == {}, "the guard snapshot is gone"
    convert = next(a for a in ceph.calls if a[:2] == ["qemu-img", "convert"])
    assert "-n" in convert

    ceph.fail("qemu-img", "convert", "qemu-img: error while writing at byte 0\n")
    ran = len(ceph.calls)
    failed = agent.handle(command)
    assert failed.details == "qemu-img convert failed: error while writing at byte 0"
    rollbacks = [a for a in ceph.calls[ran:] if "rollback" in a]
    assert [a[-1] for a in rollbacks] == [f"storctl/{VOL}@storctl-revert-guard"]
    assert ceph.images[VOL].snaps == {}


def test_a_revert_that_cannot_go_back_keeps_its_guard_for_the_repeat(
    agent, ceph, pool, store, tmp_path
):
    ceph.images[VOL] = Img(32 * MiB)
    (tmp_path / "sec" / "b.qcow2").write_bytes(b"qcow2")
    command = RevertSnapshotCommand("c-1", snapshot_on(pool, store, "b.qcow2"))
    ceph.fail("qemu-img", "convert", "qemu-img: error while writing at byte 0\n")
    ceph.fail(
        "rbd", "snap rollback", "rbd: rollback failed: (110) Connection timed out\n"
    )
    assert not agent.handle(command).result
    assert "storctl-revert-guard" in ceph.images[VOL].snaps, "the old data is kept"
    ran = len(ceph.calls)
    assert agent.handle(command).result
    rollbacks = [a[-1] for a in ceph.calls[ran:] if "rollback" in a]
    assert rollbacks == [f"storctl/{VOL}@storctl-revert-guard"], "back first"
    assert ceph.images[VOL].snaps == {}


def test_deleting_a_backup_removes_the_rbd_snapshot_too(
    agent, ceph, pool, store, tmp_path
):
    ceph.images[VOL] = Img(32 * MiB, snaps={SNAP: False, "other": False})
    backup = tmp_path / "sec" / "snapshots" / VOL / f"{SNAP}.qcow2"
    backup.parent.mkdir(parents=True)
    backup.write_bytes(b"qcow2")
    path = f"snapshots/{VOL}/{SNAP}.qcow2"
    done = agent.handle(DeleteCommand("c-1", snapshot_on(pool, store, path)))
    assert done.result, done.details
    assert not backup.exists()
    assert ceph.images[VOL].snaps == {"other": False}
    assert agent.handle(DeleteCommand("c-1", snapshot_on(pool, store, path))).result


def test_what_touches_no_rbd_image_is_the_directory_drivers(
    agent, ceph, pool, store, tmp_path
):
    """A template from a snapshot's backup: the volume is on RBD, but only the
    image store is read and written, as the directory driver does it."""
    backup = tmp_path / "sec" / "snapshots" / VOL / f"{SNAP}.qcow2"
    backup.parent.mkdir(parents=True)
    backup.write_bytes(b"qcow2")
    source = snapshot_on(pool, store, f"snapshots/{VOL}/{SNAP}.qcow2")
    made = agent.handle(
        CopyCommand("c-1", source, TemplateObjectTO("t2", "t2", "QCOW2", store))
    )
    assert made.result, made.details
    assert made.newData.path == "template/tmpl/t2/t2.qcow2"
    assert not [argv for argv in ceph.calls if argv[0] == "rbd"]


# ------------------------------------------------------------ migration


def test_migration_between_rbd_and_a_directory_both_ways(
    agent, ceph, pool, fs, tmp_path
):
    ceph.images[VOL] = Img(32 * MiB)
    out = agent.handle(CopyCommand("c-1", volume(pool, path=VOL), volume(fs)))
    assert out.result, out.details
    assert (out.newData.format, (tmp_path / "fs" / VOL).is_file()) == ("QCOW2", True)
    del ceph.images[VOL]
    back = agent.handle(CopyCommand("c-2", volume(fs, path=VOL), volume(pool)))
    assert back.result, back.details
    assert (back.newData.format, set(ceph.images)) == ("RAW", {VOL})
    same = agent.handle(CopyCommand("c-3", volume(pool, path=VOL), volume(pool)))
    assert same.details == f"source and destination are the same image storctl/{VOL}"
    assert set(ceph.images) == {VOL}
