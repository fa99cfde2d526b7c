"""KVM snapshots on real files: create, back up (full and delta), revert, delete.

The volume is a linked clone of a base template in the pool, so every flattened copy
must carry the template's data too. Patterns are written and read back with
`qemu-io`; scripted or failing runners stand in only where a failure is needed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.commands import (
    CopyCommand,
    CreateObjectCommand,
    DeleteCommand,
    RevertSnapshotCommand,
)
from tests.unit.kvm.commands import (
    BASE,
    NEW,
    S1,
    S2,
    VOL,
    backup,
    create,
    rel,
    revert,
    snap_to,
    snapshot_and_backup,
    volume_to,
)
from tests.unit.kvm.helpers import (
    MiB,
    files_under,
    info,
    reads,
    write,
)


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
