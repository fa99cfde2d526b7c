"""The rbd driver on the lab's Ceph, command by command through the KVM agent:
what the CLI cannot make happen on purpose.

A repeated command finds the finished image and answers success without writing
again; a copy that fails half way (a template whose data is cut short) leaves no
`<image>.part` behind; a template image that still has clones is refused in
one line naming them; a command whose stores are all directories never calls
Ceph. Every image is named `rbdtest-<uuid>` and removed afterwards.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from executors.agents.kvm import KvmAgent
from executors.runner import Completed, SubprocessRunner
from ledger.commands import (
    CopyCommand,
    CreateObjectCommand,
    DeleteCommand,
    ImageStoreTO,
    PrimaryDataStoreTO,
    SnapshotObjectTO,
    TemplateObjectTO,
    VolumeObjectTO,
)
from tests.integration.test_rbd import BASE, URL, Ceph, qemu_io
from tests.unit.rbd_fake import words_of

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.skipif(not shutil.which("qemu-img"), reason="needs qemu-img"),
]
MiB = 1 << 20


class Counting(SubprocessRunner):
    """The real runner, keeping every argv."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def run(self, argv: list[str], **kw: Any) -> Completed:
        self.calls.append(list(argv))
        return super().run(argv, **kw)

    def verbs(self) -> list[str]:
        return [" ".join(a[:2]) if a[0] == "qemu-img" else _rbd_verb(a)
                for a in self.calls]  # fmt: skip


def _rbd_verb(argv: list[str]) -> str:
    rest = words_of(argv)
    return f"{argv[0]} {' '.join(rest[:2]) if rest[0] == 'snap' else rest[0]}"


@pytest.fixture
def ceph(lab_backends: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Ceph]:
    monkeypatch.setenv("STORCTL_CREDENTIALS", str(lab_backends.credentials))
    c = lab_backends["lab-ceph"]
    cluster = Ceph(c["conf"], c["keyring"], c["pool"])
    yield cluster
    cluster.remove({n for n in cluster.images() if n.startswith("rbdtest-")})


@pytest.fixture
def pool() -> PrimaryDataStoreTO:
    return PrimaryDataStoreTO("p", "ceph", "RBD", URL, credentials="lab-ceph")


@pytest.fixture
def store(tmp_path: Path) -> ImageStoreTO:
    (tmp_path / "sec").mkdir()
    return ImageStoreTO("s", "sec", str(tmp_path / "sec"))


def name() -> str:
    return f"rbdtest-{uuid.uuid4()}"


def template(tmp_path: Path, size: str = "32M") -> Path:
    path = tmp_path / "sec" / "t.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), size],
                   check=True)  # fmt: skip
    assert "wrote" in qemu_io("qcow2", str(path), "write -P 0x11 0 4M")
    return path


def test_each_command_repeated_finds_its_image_and_writes_nothing_again(
    ceph, pool, store, tmp_path
):
    runner = Counting()
    agent = KvmAgent(runner)
    template(tmp_path)
    tid, vid, sid = name(), name(), str(uuid.uuid4())
    volume = VolumeObjectTO(vid, "v", "ROOT", 64 * MiB, pool)
    snapshot = SnapshotObjectTO(sid, "s", volume.replace(path=vid), pool)
    commands = [
        CopyCommand("c-1", TemplateObjectTO(tid, "t", "QCOW2", store, path="t.qcow2"),
                    TemplateObjectTO(tid, "t", "QCOW2", pool)),
        CopyCommand("c-2", TemplateObjectTO(tid, "t", "RAW", pool, path=tid), volume),
        CreateObjectCommand("c-3", snapshot),
    ]  # fmt: skip
    writes = {"qemu-img convert", "rbd clone", "rbd snap create", "rbd resize"}
    for command in commands:
        first = agent.handle(command)
        assert first.result, first.details
        runner.calls.clear()
        again = agent.handle(command)
        assert again.result, again.details
        assert not writes & set(runner.verbs()), runner.verbs()
    assert ceph.info(vid)["size"] == 64 * MiB
    assert ceph.info(vid)["parent"]["image"] == tid
    assert set(ceph.snaps(vid)) == {sid}
    assert ceph.reads(vid, 0x11)

    refused = agent.handle(
        DeleteCommand("c-4", TemplateObjectTO(tid, "t", "RAW", pool, path=tid))
    )
    assert not refused.result
    assert refused.details == (
        f"template image storctl/{tid} still has clones: storctl/{vid}"
    )
    gone = agent.handle(DeleteCommand("c-5", volume.replace(path=vid)))
    assert gone.result, gone.details
    assert agent.handle(
        DeleteCommand("c-6", TemplateObjectTO(tid, "t", "RAW", pool, path=tid))
    ).result
    assert not {tid, vid} & ceph.images()


def test_a_copy_that_fails_half_way_leaves_no_part_image(ceph, pool, store, tmp_path):
    path = template(tmp_path, "64M")
    with path.open("r+b") as f:  # the header reads, the first L2 table does not
        f.seek(40)
        (l1,) = struct.unpack(">Q", f.read(8))
        f.seek(l1)
        (entry,) = struct.unpack(">Q", f.read(8))
        f.seek(l1)
        f.write(struct.pack(">Q", entry | 0x200))  # an unaligned L2 offset
    tid = name()
    answer = KvmAgent().handle(
        CopyCommand(
            "c-1",
            TemplateObjectTO(tid, "t", "QCOW2", store, path="t.qcow2"),
            TemplateObjectTO(tid, "t", "QCOW2", pool),
        )
    )
    assert not answer.result
    assert answer.details == (
        "qemu-img convert failed: error while reading block status at offset 0: "
        "Input/output error"
    )
    assert "keyring" not in answer.details
    assert not {n for n in ceph.images() if n.startswith(tid)}


def test_a_command_on_directories_only_never_calls_ceph(ceph, pool, store, tmp_path):
    """A template made from a backup of an RBD volume's snapshot: only the image
    store is read and written."""
    runner = Counting()
    backup = tmp_path / "sec" / "snapshots" / "v" / "s.qcow2"
    backup.parent.mkdir(parents=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(backup), "8M"],
                   check=True)  # fmt: skip
    volume = VolumeObjectTO("v", "v", "DATADISK", 8 * MiB, pool, path="v")
    source = SnapshotObjectTO("s", "s", volume, store, path="snapshots/v/s.qcow2")
    made = KvmAgent(runner).handle(
        CopyCommand("c-1", source, TemplateObjectTO("t2", "t2", "QCOW2", store))
    )
    assert made.result, made.details
    assert {a[0] for a in runner.calls} == {"qemu-img"}
    assert not any(BASE in " ".join(a) or "rbd:" in " ".join(a) for a in runner.calls)
