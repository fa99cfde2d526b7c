"""KVM snapshots on real files: create, back up (full and delta), revert, delete, and
the copies made from them (volume, template) or through an image store (staging).

The volume is a linked clone of a base template in the pool, so every flattened copy
must carry the template's data too. Patterns are written and read back with
`qemu-io`; scripted or failing runners stand in only where a failure is needed.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from executors.agents.kvm import KvmAgent
from executors.runner import Completed, RecordedRunner, SubprocessRunner
from ledger.commands import (
    CopyCommand,
    CreateObjectCommand,
    DeleteCommand,
    PrimaryDataStoreTO,
    RevertSnapshotCommand,
    SnapshotObjectTO,
    TemplateObjectTO,
    VolumeObjectTO,
)
from tests.unit.kvm.helpers import (
    CountingRunner,
    FailingRunner,
    MiB,
    files_under,
    info,
    qemu_img,
)

BASE = "0b5e1d7e-0b7e-4f8e-9d0a-2f3c4b5a6d7e"
VOL = "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"
S1 = "51515151-aaaa-4bbb-8ccc-000000000001"
S2 = "52525252-aaaa-4bbb-8ccc-000000000002"
S3 = "53535353-aaaa-4bbb-8ccc-000000000003"
TMPL = "7e7e7e7e-1111-4222-8333-444444444444"
NEW = "4e4e4e4e-1111-4222-8333-555555555555"


def write(path: Path, pattern: int, offset: str = "0", length: str = "64k") -> None:
    command = f"write -P {pattern:#x} {offset} {length}"
    done = subprocess.run(
        ["qemu-io", "-f", "qcow2", "-c", command, path],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def reads(path: Path, pattern: int, offset: str = "0") -> bool:
    done = subprocess.run(
        [
            "qemu-io",
            "-r",
            "-f",
            "qcow2",
            "-c",
            f"read -P {pattern:#x} {offset} 64k",
            path,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode == 0 and "Pattern verification failed" not in done.stdout


@pytest.fixture
def volume_file(pool: PrimaryDataStoreTO) -> Path:
    """A 16 MiB linked clone of a base template whose 1 MiB at 1 MiB is 0xab."""
    base = Path(pool.path) / BASE
    qemu_img("create", "-q", "-f", "qcow2", str(base), str(16 * MiB))
    write(base, 0xAB, "1M", "1M")
    volume = Path(pool.path) / VOL
    qemu_img("create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(base), str(volume))
    return volume


def volume_to(pool, uuid: str = VOL, path: str | None = VOL, size: int = 16 * MiB):
    return VolumeObjectTO(uuid, "vol", "ROOT", size, pool, path=path)


def snap_to(uuid, store, volume, path=None, parent=None) -> SnapshotObjectTO:
    return SnapshotObjectTO(
        uuid, uuid[:2], volume, store, path=path, parentSnapshotPath=parent
    )


def rel(uuid: str) -> str:
    return f"snapshots/{VOL}/{uuid}.qcow2"


def create(pool, uuid: str) -> CreateObjectCommand:
    return CreateObjectCommand(f"c-{uuid}", snap_to(uuid, pool, volume_to(pool)))


def backup(pool, store, uuid, parent=None, *, remove="true", full="false"):
    return CopyCommand(
        f"b-{uuid}",
        snap_to(uuid, pool, volume_to(pool), path=rel(uuid)),
        snap_to(uuid, store, volume_to(pool), parent=parent),
        options={"removeAfterCopy": remove, "full": full},
    )


def revert(pool, store, uuid: str) -> RevertSnapshotCommand:
    return RevertSnapshotCommand(
        f"r-{uuid}", snap_to(uuid, store, volume_to(pool), path=rel(uuid))
    )


def snapshot_and_backup(agent, pool, store, uuid, parent=None, **kw):
    created = agent.handle(create(pool, uuid))
    assert created.result, created.details
    copied = agent.handle(backup(pool, store, uuid, parent, **kw))
    assert copied.result, copied.details
    return copied


@pytest.mark.qemu
class TestSnapshotOnPrimary:
    def test_is_a_flattened_copy_of_the_volume(self, agent, pool, volume_file):
        write(volume_file, 0xAA)
        seen: list[float] = []
        answer = agent.handle(create(pool, S1), on_progress=seen.append)
        assert answer.result, answer.details
        copy = Path(pool.path) / rel(S1)
        assert answer.data.path == rel(S1)
        assert answer.data.physicalSize == copy.stat().st_size
        assert answer.data.uuid == S1
        assert "backing-filename" not in info(copy)
        assert info(copy)["virtual-size"] == 16 * MiB
        assert reads(copy, 0xAA)
        assert reads(copy, 0xAB, "1M")  # the template's data came along
        assert seen
        assert seen[-1] == 1.0

    def test_repeat_finds_the_finished_file(self, agent, runner, pool, volume_file):
        first = agent.handle(create(pool, S1))
        leftover = Path(pool.path) / f"snapshots/{VOL}/.{S1}.qcow2.part"
        leftover.write_bytes(b"from a crashed repeat")
        second = agent.handle(create(pool, S1))
        assert second == first
        assert runner.count("convert") == 1
        assert not leftover.exists()

    def test_can_go_straight_to_the_image_store(self, agent, pool, store, volume_file):
        write(volume_file, 0xAA)
        command = CreateObjectCommand("c", snap_to(S1, store, volume_to(pool)))
        answer = agent.handle(command)
        assert answer.result, answer.details
        assert reads(Path(store.uri.removeprefix("file://")) / rel(S1), 0xAA)


@pytest.mark.qemu
class TestChain:
    def test_full_then_delta_then_reverts_and_copies(
        self, agent, runner, pool, store, secondary, volume_file
    ):
        write(volume_file, 0xAA)
        first = snapshot_and_backup(agent, pool, store, S1)
        full = secondary / rel(S1)
        assert first.newData.path == rel(S1)
        assert first.newData.parentSnapshotPath is None
        assert first.newData.physicalSize == full.stat().st_size
        assert "backing-filename" not in info(full)

        write(volume_file, 0xBB)
        seen: list[float] = []
        created = agent.handle(create(pool, S2))
        second = agent.handle(
            backup(pool, store, S2, parent=rel(S1)), on_progress=seen.append
        )
        assert created.result
        assert second.result, second.details
        delta = secondary / rel(S2)
        assert second.newData.path == rel(S2)
        assert second.newData.parentSnapshotPath == rel(S1)
        assert second.newData.physicalSize == delta.stat().st_size
        assert info(delta)["backing-filename"] == f"{S1}.qcow2"  # relative
        assert info(delta)["backing-filename-format"] == "qcow2"
        assert delta.stat().st_size < full.stat().st_size
        assert seen
        assert seen[-1] == 1.0
        assert reads(delta, 0xBB)
        assert reads(delta, 0xAB, "1M")  # through the parent
        rebase = next(argv for argv in runner.calls if argv[1] == "rebase")
        assert rebase[:-1] == [
            *("qemu-img", "rebase", "-p", "-f", "qcow2"),
            *("-F", "qcow2", "-b", f"{S1}.qcow2"),
        ]
        assert all("-f" in argv for argv in runner.calls)

        write(volume_file, 0xCC)
        answer = agent.handle(revert(pool, store, S2))
        assert answer.result, answer.details
        assert reads(volume_file, 0xBB)
        assert reads(volume_file, 0xAB, "1M")
        assert "backing-filename" not in info(volume_file)  # standalone now
        answer = agent.handle(revert(pool, store, S1))
        assert answer.result, answer.details
        assert reads(volume_file, 0xAA)
        assert files_under(Path(pool.path)) == {Path(pool.path) / BASE, volume_file}

        from_snapshot = agent.handle(
            CopyCommand(
                "v",
                snap_to(S2, store, volume_to(pool), path=rel(S2)),
                volume_to(pool, NEW, None, 32 * MiB),
            )
        )
        assert from_snapshot.result, from_snapshot.details
        new = Path(pool.path) / NEW
        assert (from_snapshot.newData.path, from_snapshot.newData.size) == (
            NEW,
            32 * MiB,
        )
        assert info(new)["virtual-size"] == 32 * MiB
        assert "backing-filename" not in info(new)
        assert reads(new, 0xBB)
        assert reads(new, 0xAB, "1M")

    def test_delta_repeat_and_revert_repeat_answer_success(
        self, agent, runner, pool, store, secondary, volume_file
    ):
        write(volume_file, 0xAA)
        snapshot_and_backup(agent, pool, store, S1)
        write(volume_file, 0xBB)
        assert agent.handle(create(pool, S2)).result
        command = backup(pool, store, S2, parent=rel(S1))
        first = agent.handle(command)
        rebases = runner.count("rebase")
        second = agent.handle(command)  # the primary copy is gone by now
        assert first.result, first.details
        assert second == first
        assert runner.count("rebase") == rebases == 1
        write(volume_file, 0xCC)
        assert agent.handle(revert(pool, store, S2)).result
        assert agent.handle(revert(pool, store, S2)).result
        assert reads(volume_file, 0xBB)

    def test_a_delta_still_reads_after_its_store_moves(
        self, agent, pool, store, secondary, tmp_path, volume_file
    ):
        write(volume_file, 0xAA)
        snapshot_and_backup(agent, pool, store, S1)
        write(volume_file, 0xBB, "64k")
        snapshot_and_backup(agent, pool, store, S2, parent=rel(S1))
        moved = tmp_path / "elsewhere"
        secondary.rename(moved)
        assert reads(moved / rel(S2), 0xAA)
        assert reads(moved / rel(S2), 0xBB, "64k")

    def test_revert_prefers_the_primary_copy(self, agent, pool, store, volume_file):
        write(volume_file, 0xAA)
        snapshot_and_backup(agent, pool, store, S1, remove="false")
        write(volume_file, 0xCC)
        command = RevertSnapshotCommand(
            "r",
            snap_to(S1, store, volume_to(pool), path=rel(S1)),
            dataOnPrimaryStorage=snap_to(S1, pool, volume_to(pool), path=rel(S1)),
        )
        # Remove the image store copy: only the primary one can serve.
        (Path(store.uri.removeprefix("file://")) / rel(S1)).unlink()
        answer = agent.handle(command)
        assert answer.result, answer.details
        assert reads(volume_file, 0xAA)


@pytest.mark.qemu
class TestBackup:
    def test_remove_after_copy_removes_the_primary_copy_and_its_dir(
        self, agent, pool, store, volume_file
    ):
        snapshot_and_backup(agent, pool, store, S1, remove="true")
        assert not (Path(pool.path) / "snapshots" / VOL).exists()
        assert files_under(Path(pool.path)) == {Path(pool.path) / BASE, volume_file}

    def test_without_remove_after_copy_the_primary_copy_stays(
        self, agent, pool, store, volume_file
    ):
        snapshot_and_backup(agent, pool, store, S1, remove="false")
        assert (Path(pool.path) / rel(S1)).is_file()

    def test_full_option_makes_a_standalone_copy_despite_a_parent(
        self, agent, pool, store, secondary, volume_file
    ):
        snapshot_and_backup(agent, pool, store, S1)
        write(volume_file, 0xBB)
        answer = snapshot_and_backup(
            agent, pool, store, S2, parent=rel(S1), full="true"
        )
        assert answer.newData.parentSnapshotPath is None
        assert "backing-filename" not in info(secondary / rel(S2))
        assert reads(secondary / rel(S2), 0xBB)

    def test_repeat_after_the_primary_copy_is_gone_answers_success(
        self, agent, runner, pool, store, volume_file
    ):
        assert agent.handle(create(pool, S1)).result
        first = agent.handle(backup(pool, store, S1))
        second = agent.handle(backup(pool, store, S1))
        assert first.result, first.details
        assert second == first
        assert runner.count("convert") == 2  # the snapshot and one backup

    def test_missing_parent_fails_and_writes_nothing(
        self, agent, pool, store, secondary, volume_file
    ):
        assert agent.handle(create(pool, S2)).result
        answer = agent.handle(backup(pool, store, S2, parent=rel(S1)))
        assert not answer.result
        assert "parent snapshot" in answer.details
        assert "not found" in answer.details
        assert not files_under(secondary)
        assert (Path(pool.path) / rel(S2)).is_file()  # not removed on failure

    def test_unknown_option_value_is_refused(self, agent, pool, store, volume_file):
        assert agent.handle(create(pool, S1)).result
        answer = agent.handle(backup(pool, store, S1, remove="yes"))
        assert not answer.result
        assert "removeAfterCopy" in answer.details


@pytest.mark.qemu
class TestTemplatesAndStaging:
    def test_template_from_volume_carries_its_data(
        self, agent, pool, store, secondary, volume_file
    ):
        write(volume_file, 0xAA)
        dest = TemplateObjectTO(TMPL, "t", "QCOW2", store)
        seen: list[float] = []
        answer = agent.handle(
            CopyCommand("t", volume_to(pool), dest), on_progress=seen.append
        )
        assert answer.result, answer.details
        path = f"template/tmpl/{TMPL}/{TMPL}.qcow2"
        made = secondary / path
        assert answer.newData.path == path
        assert answer.newData.size == 16 * MiB
        assert answer.newData.physicalSize == made.stat().st_size
        assert answer.newData.format == "QCOW2"
        assert "backing-filename" not in info(made)
        assert reads(made, 0xAA)
        assert reads(made, 0xAB, "1M")
        assert seen
        assert agent.handle(CopyCommand("t", volume_to(pool), dest)) == answer

    def test_template_from_a_delta_snapshot_flattens_its_chain(
        self, agent, pool, store, secondary, volume_file
    ):
        write(volume_file, 0xAA)
        snapshot_and_backup(agent, pool, store, S1)
        write(volume_file, 0xBB)
        snapshot_and_backup(agent, pool, store, S2, parent=rel(S1))
        answer = agent.handle(
            CopyCommand(
                "t",
                snap_to(S2, store, volume_to(pool), path=rel(S2)),
                TemplateObjectTO(TMPL, "t", "QCOW2", store),
            )
        )
        assert answer.result, answer.details
        made = secondary / answer.newData.path
        assert "backing-filename" not in info(made)
        assert reads(made, 0xBB)
        assert reads(made, 0xAB, "1M")

    def test_volume_staged_through_the_image_store(
        self, agent, pool, pool2, store, secondary, volume_file
    ):
        write(volume_file, 0xAA)
        on_store = VolumeObjectTO(VOL, "vol", "ROOT", 16 * MiB, store)
        out = agent.handle(CopyCommand("s1", volume_to(pool), on_store))
        assert out.result, out.details
        assert out.newData.path == f"volumes/{VOL}.qcow2"
        assert out.newData.dataStore == store
        parked = secondary / f"volumes/{VOL}.qcow2"
        assert "backing-filename" not in info(parked)
        back = agent.handle(CopyCommand("s2", out.newData, volume_to(pool2, VOL, None)))
        assert back.result, back.details
        moved = Path(pool2.path) / VOL
        assert (back.newData.path, back.newData.size) == (VOL, 16 * MiB)
        assert reads(moved, 0xAA)
        assert reads(moved, 0xAB, "1M")
        assert files_under(Path(pool2.path)) == {moved}


@pytest.mark.qemu
class TestDelete:
    @pytest.mark.parametrize("on_store", [False, True])
    def test_removes_file_and_emptied_dir_and_repeats(
        self, agent, pool, store, volume_file, on_store
    ):
        snapshot_and_backup(agent, pool, store, S1, remove="false")
        where = store if on_store else pool
        root = Path(store.uri.removeprefix("file://")) if on_store else Path(pool.path)
        command = DeleteCommand("d", snap_to(S1, where, volume_to(pool), path=rel(S1)))
        assert agent.handle(command).result
        assert not (root / "snapshots" / VOL).exists()
        assert (root / "snapshots").is_dir()
        assert agent.handle(command).result

    def test_keeps_a_directory_still_holding_other_snapshots(
        self, agent, pool, volume_file
    ):
        assert agent.handle(create(pool, S1)).result
        assert agent.handle(create(pool, S2)).result
        answer = agent.handle(
            DeleteCommand("d", snap_to(S1, pool, volume_to(pool), path=rel(S1)))
        )
        assert answer.result
        assert files_under(Path(pool.path) / "snapshots") == {Path(pool.path) / rel(S2)}


class TestFailures:
    def test_out_of_space_backup_leaves_no_partial_file(
        self, tmp_path, pool, store, secondary
    ):
        source = Path(pool.path) / rel(S1)
        source.parent.mkdir(parents=True)
        source.write_bytes(b"a snapshot")
        image = {"format": "qcow2", "virtual-size": 16 * MiB}

        def full_disk(argv: list[str]) -> Completed:
            if argv[1] == "info":
                return Completed(0, json.dumps(image), "")
            Path(argv[-1]).write_bytes(b"partial")  # qemu-img got this far
            return Completed(1, "", f"qemu-img: {argv[-1]}: No space left on device")

        runner = RecordedRunner(full_disk)
        answer = KvmAgent(runner).handle(backup(pool, store, S1))
        assert not answer.result
        assert "insufficient space" in answer.details
        assert [argv[1] for argv in runner.calls] == ["info", "convert"]
        assert not files_under(secondary)
        assert not list(secondary.iterdir())  # no snapshots/<volume> either
        assert source.exists()  # the primary copy is kept for a retry

    @pytest.mark.qemu
    @pytest.mark.parametrize(
        ("fails", "make"),
        [
            ("convert", lambda pool, store: create(pool, S3)),
            ("convert", lambda pool, store: backup(pool, store, S2)),
            ("create", lambda pool, store: backup(pool, store, S2, parent=rel(S1))),
            ("rebase", lambda pool, store: backup(pool, store, S2, parent=rel(S1))),
            (
                "resize",
                lambda pool, store: CopyCommand(
                    "v",
                    snap_to(S1, store, volume_to(pool), path=rel(S1)),
                    volume_to(pool, NEW, None, 32 * MiB),
                ),
            ),
            (
                "convert",
                lambda pool, store: CopyCommand(
                    "t", volume_to(pool), TemplateObjectTO(TMPL, "t", "QCOW2", store)
                ),
            ),
            (
                "convert",
                lambda pool, store: CopyCommand(
                    "s", volume_to(pool), VolumeObjectTO(NEW, "v", "ROOT", MiB, store)
                ),
            ),
        ],
    )
    def test_a_failed_step_leaves_no_partial_file(
        self, pool, store, secondary, volume_file, fails, make
    ):
        agent = KvmAgent(SubprocessRunner())
        snapshot_and_backup(agent, pool, store, S1)
        assert agent.handle(create(pool, S2)).result
        before = files_under(Path(pool.path)) | files_under(secondary)
        dirs = {p for p in Path(pool.path).rglob("*") if p.is_dir()}
        answer = KvmAgent(FailingRunner(fails)).handle(make(pool, store))
        assert not answer.result
        assert "insufficient space" in answer.details
        assert files_under(Path(pool.path)) | files_under(secondary) == before
        assert {p for p in Path(pool.path).rglob("*") if p.is_dir()} == dirs
        assert not (secondary / "template").exists()
        assert not (secondary / "volumes").exists()

    @pytest.mark.qemu
    def test_failed_revert_leaves_the_volume_as_it_was(self, pool, store, volume_file):
        agent = KvmAgent(SubprocessRunner())
        write(volume_file, 0xAA)
        snapshot_and_backup(agent, pool, store, S1)
        write(volume_file, 0xCC)
        answer = KvmAgent(FailingRunner("convert")).handle(revert(pool, store, S1))
        assert not answer.result
        assert reads(volume_file, 0xCC)
        assert info(volume_file)["backing-filename"].endswith(BASE)
        assert not (Path(pool.path) / f".{VOL}.part").exists()

    @pytest.mark.parametrize(
        "make",
        [
            lambda pool, store: backup(pool, store, S1, parent="../x"),
            lambda pool, store: CopyCommand(
                "b",
                snap_to(S1, pool, volume_to(pool), path="../x"),
                snap_to(S1, store, volume_to(pool)),
            ),
            lambda pool, store: CopyCommand(
                "b",
                snap_to(S1, pool, volume_to(pool), path=rel(S1)),
                snap_to("../x", store, volume_to(pool)),
            ),
            lambda pool, store: CreateObjectCommand(
                "c", snap_to(S1, pool, volume_to(pool, path="../x"))
            ),
            lambda pool, store: CreateObjectCommand(
                "c", snap_to(S1, pool, volume_to(pool, uuid="../x", path=None))
            ),
            lambda pool, store: RevertSnapshotCommand(
                "r", snap_to(S1, store, volume_to(pool), path="../../x")
            ),
            lambda pool, store: RevertSnapshotCommand(
                "r", snap_to(S1, store, volume_to(pool, path="../x"), path=rel(S1))
            ),
            lambda pool, store: DeleteCommand(
                "d", snap_to(S1, store, None, path="snapshots/../../x")
            ),
            lambda pool, store: CopyCommand(
                "t",
                snap_to(S1, store, None, path="../x"),
                TemplateObjectTO(TMPL, "t", "QCOW2", store),
            ),
            lambda pool, store: CopyCommand(
                "s",
                VolumeObjectTO(VOL, "v", "ROOT", MiB, store, path="../x"),
                volume_to(pool, NEW, None),
            ),
        ],
    )
    def test_a_name_escaping_its_store_writes_nothing(
        self, tmp_path, pool, store, make
    ):
        (tmp_path / "x").write_bytes(b"outside")
        before = {p: p.read_bytes() for p in files_under(tmp_path)}
        runner = RecordedRunner(lambda argv: Completed(0, "", ""))
        answer = KvmAgent(runner).handle(make(pool, store))
        assert not answer.result
        assert "invalid path" in answer.details
        assert runner.calls == []
        assert {p: p.read_bytes() for p in files_under(tmp_path)} == before

    @pytest.mark.qemu
    def test_a_snapshot_backed_by_a_host_file_is_refused(
        self, tmp_path, pool, store, secondary, volume_file
    ):
        outside = tmp_path / "host-secret.qcow2"
        qemu_img("create", "-q", "-f", "qcow2", str(outside), str(MiB))
        crafted = secondary / rel(S1)
        crafted.parent.mkdir(parents=True)
        qemu_img(
            "create",
            "-q",
            "-f",
            "qcow2",
            "-F",
            "qcow2",
            "-b",
            str(outside),
            str(crafted),
        )
        runner = CountingRunner()
        agent = KvmAgent(runner)
        answers = [
            agent.handle(revert(pool, store, S1)),
            agent.handle(
                CopyCommand(
                    "v",
                    snap_to(S1, store, volume_to(pool), path=rel(S1)),
                    volume_to(pool, NEW, None),
                )
            ),
        ]
        for answer in answers:
            assert not answer.result
            assert "outside the store" in answer.details
        assert runner.count("convert") == 0
        assert not (Path(pool.path) / NEW).exists()
        assert "backing-filename" in info(volume_file)  # untouched
