"""Copies made from snapshots or through an image store, on real files: templates from
a volume or a delta snapshot, a volume staged between pools, and the failures (full
disk, a failed step, a name or backing file escaping its store) that must leave no
partial file and the volume as it was.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from executors.agents.kvm import KvmAgent
from executors.runner import (
    Completed,
    RecordedRunner,
    SubprocessRunner,
)
from ledger.commands import (
    CopyCommand,
    CreateObjectCommand,
    DeleteCommand,
    RevertSnapshotCommand,
    TemplateObjectTO,
    VolumeObjectTO,
)
from tests.unit.kvm.commands import (
    BASE,
    NEW,
    S1,
    S2,
    S3,
    TMPL,
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
    CountingRunner,
    FailingRunner,
    MiB,
    files_under,
    info,
    qemu_img,
    reads,
    write,
)


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
