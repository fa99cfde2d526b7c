"""The iscsi driver through the KVM agent's table, against a fake tgtd
(`fake.FakeHost`): one target, thin LUN and CHAP account per volume; every
operation idempotent; a failure anywhere leaves no target, account or file; a
target tgtd lost is made again by the next command; no CHAP password in an answer
or in any argv but the one that gives it to tgtd."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from executors.agents.kvm import KvmAgent
from executors.providers.iscsi.layout import TID_FLOOR, Lun
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
    TemplateObjectTO,
    VolumeObjectTO,
)
from tests.unit.iscsi.fake import FakeHost, FakeTarget, MiB

POOL = "0b6a7f64-1e4f-4a55-9d8e-3c2b1a0f9e8d"
VOL = "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"


@pytest.fixture
def lun_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    luns = tmp_path / "luns"
    luns.mkdir()
    monkeypatch.setenv("STORCTL_CREDENTIALS", str(tmp_path / "none.toml"))
    for key, value in (("CONTROL_PORT", "17"), ("PORTAL", "127.0.0.1:3260"),
                       ("LUN_DIR", str(luns))):  # fmt: skip
        monkeypatch.setenv(f"STORCTL_CRED_UNIT_ISCSI_{key}", value)
    return luns


@pytest.fixture
def host() -> FakeHost:
    return FakeHost()


@pytest.fixture
def agent(host: FakeHost, lun_dir: Path) -> KvmAgent:
    return KvmAgent(host)


def pool(uuid_: str = POOL) -> PrimaryDataStoreTO:
    return PrimaryDataStoreTO(
        uuid_, "lun", "Iscsi", "iscsi://127.0.0.1:3260", credentials="unit-iscsi"
    )


def volume(uuid_: str = VOL, size: int = 32 * MiB, where=None) -> VolumeObjectTO:
    return VolumeObjectTO(uuid_, "v", "DATADISK", size, where or pool())


def lun(lun_dir: Path, uuid_: str = VOL) -> Lun:
    return Lun.of(POOL, uuid_, lun_dir)


def ok(answer):
    assert answer.result, answer.details
    return answer


def files(lun_dir: Path) -> set[str]:
    return {p.name for p in lun_dir.rglob("*") if p.is_file()}


def test_a_volume_is_a_thin_lun_on_its_own_target_with_chap(agent, host, lun_dir):
    made = ok(agent.handle(CreateObjectCommand("c-1", volume())))
    vol = lun(lun_dir)
    assert made.data.path == vol.iqn
    assert (made.data.size, made.data.format) == (32 * MiB, "RAW")
    assert vol.file.stat().st_size == 32 * MiB
    assert vol.file.stat().st_blocks == 0
    assert vol.secret_file.stat().st_mode & 0o777 == 0o600
    target = host.by_iqn(vol.iqn)
    assert target is not None
    assert target.tid >= TID_FLOOR
    assert (target.luns, target.thin, target.acls) == (
        {1: str(vol.file)},
        True,
        ["ALL"],
    )
    assert target.accounts == [vol.user]
    assert target.params["MaxRecvDataSegmentLength"] == "262144"
    assert host.accounts[vol.user] == vol.secret_file.read_text()

    before = len(host.calls)
    again = ok(agent.handle(CreateObjectCommand("c-1", volume())))
    assert again.data == made.data
    assert [c[c.index("--op") + 1] for c in host.calls[before:]] == ["show"]


def test_no_password_in_an_answer_or_an_argv_but_the_account_s(agent, host, lun_dir):
    ok(agent.handle(CreateObjectCommand("c-1", volume())))
    disk = DiskTO(volume(), 1, None, "DATADISK")
    ok(agent.handle(AttachCommand("c-2", disk, "vm")))
    password = lun(lun_dir).password(create=False)
    holders = [c for c in host.calls if password in " ".join(c)]
    assert holders == host.tgtadm_calls("new", "account")
    assert all(c[-1] == password for c in holders)
    host.fail = lambda argv: "tgtadm: out of memory" if (
        "account" in argv and "new" in argv) else None  # fmt: skip
    host.restart()
    failed = agent.handle(AttachCommand("c-3", disk, "vm"))
    assert not failed.result
    assert failed.details == "tgtadm --op new --mode account failed: out of memory"


def test_an_account_left_over_is_made_again_with_the_volume_s_password(
    agent, host, lun_dir
):
    ok(agent.handle(CreateObjectCommand("c-1", volume())))
    vol = lun(lun_dir)
    host.targets.clear()  # the target gone, its account left with another password
    host.accounts[vol.user] = "stale"
    disk = DiskTO(volume(), 1, None, "DATADISK")
    ok(agent.handle(AttachCommand("c-2", disk, "vm")))  # logs in with CHAP
    assert host.accounts[vol.user] == vol.password(create=False)


def test_a_target_tgtd_lost_is_made_again_by_the_next_command(agent, host, lun_dir):
    ok(agent.handle(CreateObjectCommand("c-1", volume())))
    vol = lun(lun_dir)
    tid = host.by_iqn(vol.iqn).tid
    password = vol.password(create=False)
    host.restart()
    disk = DiskTO(volume(), 1, None, "DATADISK")
    ok(agent.handle(AttachCommand("c-2", disk, "vm")))  # logs in with CHAP
    target = host.by_iqn(vol.iqn)
    assert (target.tid, target.luns[1], target.accounts) == (
        tid,
        str(vol.file),
        [vol.user],
    )
    assert vol.password(create=False) == password


def test_a_half_made_target_is_removed_and_made_again(agent, host, lun_dir):
    ok(agent.handle(CreateObjectCommand("c-1", volume())))
    vol = lun(lun_dir)
    host.by_iqn(vol.iqn).accounts.clear()  # e.g. a crash between two steps
    ok(agent.handle(CreateObjectCommand("c-1", volume())))
    assert host.by_iqn(vol.iqn).accounts == [vol.user]


@pytest.mark.parametrize(
    ("step", "words"),
    [
        (("new", "logicalunit"), "tgtadm --op new --mode logicalunit failed: boom"),
        (("bind", "account"), "tgtadm --op bind --mode account failed: boom"),
        (("update", "target"), "tgtadm --op update --mode target failed: boom"),
    ],
)
def test_a_failure_while_making_leaves_no_target_account_or_file(
    agent, host, lun_dir, step, words
):
    op, mode = step
    host.fail = lambda argv: "tgtadm: boom" if (
        argv[0] == "tgtadm" and argv[argv.index("--op") + 1] == op
        and argv[argv.index("--mode") + 1] == mode) else None  # fmt: skip
    failed = agent.handle(CreateObjectCommand("c-1", volume()))
    assert (failed.result, failed.details) == (False, words)
    assert (host.targets, host.accounts, files(lun_dir)) == ({}, {}, set())


def test_tgtd_down_is_an_answer_in_tgtadm_s_words_and_nothing_is_left(
    agent, host, lun_dir
):
    host.up = False
    failed = agent.handle(CreateObjectCommand("c-1", volume()))
    assert not failed.result
    assert failed.details == (
        "tgtadm --op show --mode target failed: failed to send request hdr to tgt "
        "daemon, Transport endpoint is not connected"
    )
    assert files(lun_dir) == set()


def template(tmp_path: Path) -> TemplateObjectTO:
    store = tmp_path / "sec"
    (store / "template" / "tmpl" / "1").mkdir(parents=True)
    (store / "template" / "tmpl" / "1" / "t.qcow2").write_bytes(b"QFI\xfb")
    image = ImageStoreTO("s-1", "sec", str(store))
    return TemplateObjectTO("t-1", "t", "QCOW2", image, path="template/tmpl/1/t.qcow2")


def test_a_template_is_written_into_the_lun_then_renamed_into_place(
    agent, host, lun_dir, tmp_path
):
    tmpl = template(tmp_path)
    host.sizes[str(tmp_path / "sec" / tmpl.path)] = 48 * MiB
    copied = ok(agent.handle(CopyCommand("c-1", tmpl, volume(size=16 * MiB))))
    vol = lun(lun_dir)
    assert copied.newData.size == 48 * MiB  # the template's, the larger
    assert vol.file.read_bytes()[:6] == b"filled"
    assert host.by_iqn(vol.iqn).luns == {1: str(vol.file)}  # not the .part
    assert files(lun_dir) == {vol.file.name, vol.secret_file.name}
    fill = next(c for c in host.calls if c[:2] == ["qemu-img", "convert"])
    assert {"-n", "--target-is-zero", "-f", "qcow2"} <= set(fill)
    before = len(host.calls)
    ok(agent.handle(CopyCommand("c-1", tmpl, volume(size=16 * MiB))))
    assert not [c for c in host.calls[before:] if c[0] == "qemu-img"]


def test_a_failed_fill_leaves_no_target_account_or_file(agent, host, lun_dir, tmp_path):
    host.fail = lambda argv: "qemu-img: error while writing: Input/output error" if (
        argv[:2] == ["qemu-img", "convert"]) else None  # fmt: skip
    failed = agent.handle(CopyCommand("c-1", template(tmp_path), volume()))
    assert not failed.result
    assert (
        failed.details
        == "qemu-img convert failed: error while writing: Input/output error"
    )
    assert (host.targets, host.accounts, files(lun_dir)) == ({}, {}, set())


def test_migration_off_and_onto_the_pool_with_a_directory_pool(
    agent, host, lun_dir, tmp_path
):
    (tmp_path / "fs").mkdir()
    fs = PrimaryDataStoreTO("p-fs", "fs", "Filesystem", str(tmp_path / "fs"))
    ok(agent.handle(CreateObjectCommand("c-1", volume())))
    off = ok(agent.handle(CopyCommand("c-2", volume(), volume(where=fs))))
    assert (off.newData.path, off.newData.format) == (VOL, "QCOW2")
    assert (tmp_path / "fs" / VOL).is_file()
    assert off.newData.size == 32 * MiB
    host.sizes[str(tmp_path / "fs" / VOL)] = 32 * MiB  # what qemu-img info reads
    ok(agent.handle(DeleteCommand("c-3", volume())))
    assert files(lun_dir) == set()
    on = ok(agent.handle(CopyCommand("c-4", volume(where=fs).replace(path=VOL),
                                     volume())))  # fmt: skip
    assert (on.newData.path, on.newData.size) == (lun(lun_dir).iqn, 32 * MiB)
    assert lun(lun_dir).file.read_bytes()[:6] == b"filled"


def test_resize_grows_the_file_and_re_adds_the_lun(agent, host, lun_dir):
    ok(agent.handle(CreateObjectCommand("c-1", volume())))
    vol = lun(lun_dir)
    grown = ok(agent.handle(ResizeVolumeCommand("c-2", volume(), 32 * MiB, 64 * MiB)))
    assert grown.newSize == 64 * MiB
    assert vol.file.stat().st_size == 64 * MiB
    assert len(host.tgtadm_calls("delete", "logicalunit")) == 1
    assert host.by_iqn(vol.iqn).luns == {1: str(vol.file)}
    shrink = agent.handle(ResizeVolumeCommand("c-3", volume(), 64 * MiB, 16 * MiB))
    assert not shrink.result
    assert "needs shrinkOk" in shrink.details
    host.fail = lambda argv: "tgtadm: boom" if "logicalunit" in argv and (
        "new" in argv) else None  # fmt: skip
    failed = agent.handle(ResizeVolumeCommand("c-4", volume(), 64 * MiB, 96 * MiB))
    assert not failed.result
    assert vol.file.stat().st_size == 64 * MiB  # the old size back


def test_delete_is_idempotent_and_keeps_everything_while_tgtd_is_down(
    agent, host, lun_dir
):
    ok(agent.handle(CreateObjectCommand("c-1", volume())))
    host.by_iqn(lun(lun_dir).iqn).sessions = 1  # an initiator logged in
    host.up = False
    assert not agent.handle(DeleteCommand("c-2", volume())).result
    assert len(files(lun_dir)) == 2
    host.up = True
    ok(agent.handle(DeleteCommand("c-2", volume())))
    ok(agent.handle(DeleteCommand("c-2", volume())))
    assert (host.targets, host.accounts, files(lun_dir)) == ({}, {}, set())


def test_a_tid_someone_else_holds_is_skipped_and_left_alone(agent, host, lun_dir):
    first = lun(lun_dir).first_tid
    host.targets[first] = FakeTarget(first, "iqn.2001-04.com.example:other")
    ok(agent.handle(CreateObjectCommand("c-1", volume())))
    assert host.by_iqn(lun(lun_dir).iqn).tid == first + 1
    assert host.targets[first].iqn == "iqn.2001-04.com.example:other"


@pytest.mark.parametrize("hostile", ["../../etc/passwd", "x/../../y", "-rf", ""])
def test_a_volume_uuid_that_is_not_one_is_refused(agent, host, lun_dir, hostile):
    failed = agent.handle(CreateObjectCommand("c-1", volume(hostile)))
    assert not failed.result
    assert "not a uuid" in failed.details
    assert host.calls == []
    assert list(lun_dir.iterdir()) == []


def test_pool_stats_count_the_blocks_of_the_pool_s_luns(agent, host, lun_dir):
    stats = ok(agent.handle(GetStorageStatsCommand("c-1", pool())))
    assert stats.usedBytes == 0
    ok(agent.handle(CreateObjectCommand("c-2", volume())))
    with lun(lun_dir).file.open("r+b") as f:
        f.write(os.urandom(MiB))
        f.flush()
        os.fsync(f.fileno())
    other = str(uuid.uuid4())
    ok(agent.handle(CreateObjectCommand("c-3", volume(other, where=pool(other)))))
    stats = ok(agent.handle(GetStorageStatsCommand("c-4", pool())))
    assert MiB <= stats.usedBytes < 2 * MiB
    assert stats.capacityBytes > 0


def test_a_pool_without_credentials_is_refused_in_one_line(agent, host):
    bare = pool().replace(credentials=None)
    failed = agent.handle(CreateObjectCommand("c-1", volume(where=bare)))
    assert not failed.result
    assert "needs credentials" in failed.details
    assert host.calls == []
