"""The KVM agent's fixtures, shared by every test module here: directory pools and an
image store on `tmp_path`, an agent whose runner runs the real `qemu-img` and counts
what it ran, a source template (`source`), that template cached on the pool
(`cached_template`), and a volume that is a linked clone of a base (`volume_file`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from executors.agents.kvm import KvmAgent
from ledger.commands import CopyCommand, ImageStoreTO, PrimaryDataStoreTO
from tests.unit.kvm.commands import BASE, TMPL, VOL, download, template_on
from tests.unit.kvm.helpers import CountingRunner, MiB, qemu_img, qemu_io, write


@pytest.fixture
def pool(tmp_path: Path) -> PrimaryDataStoreTO:
    (tmp_path / "pool1").mkdir()
    return PrimaryDataStoreTO("p-1", "pool1", "Filesystem", str(tmp_path / "pool1"))


@pytest.fixture
def pool2(tmp_path: Path) -> PrimaryDataStoreTO:
    (tmp_path / "pool2").mkdir()
    return PrimaryDataStoreTO("p-2", "pool2", "Filesystem", str(tmp_path / "pool2"))


@pytest.fixture
def image_store(tmp_path: Path) -> ImageStoreTO:
    (tmp_path / "secondary").mkdir()
    return ImageStoreTO("is-1", "secondary", f"file://{tmp_path / 'secondary'}")


@pytest.fixture
def store(image_store: ImageStoreTO) -> ImageStoreTO:
    """`image_store` under the name the snapshot tests give it."""
    return image_store


@pytest.fixture
def secondary(tmp_path: Path, image_store: ImageStoreTO) -> Path:
    return tmp_path / "secondary"


@pytest.fixture
def runner() -> CountingRunner:
    return CountingRunner()


@pytest.fixture
def agent(runner: CountingRunner) -> KvmAgent:
    return KvmAgent(runner)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A 32 MiB qcow2 template whose first 64 KiB are 0xab."""
    path = tmp_path / "src" / "tmpl.qcow2"
    path.parent.mkdir()
    qemu_img("create", "-f", "qcow2", str(path), str(32 * MiB))
    assert qemu_io(path, "write -P 0xab 0 64k").returncode == 0
    return path


@pytest.fixture
def cached_template(agent, source, image_store, pool) -> Path:
    """The template downloaded and copied to the pool: the base of linked clones."""
    assert agent.handle(download(source.as_uri(), image_store)).result
    answer = agent.handle(
        CopyCommand("c-cp", template_on(image_store), template_on(pool, None))
    )
    assert answer.result, answer.details
    return Path(pool.path) / TMPL


@pytest.fixture
def volume_file(pool: PrimaryDataStoreTO) -> Path:
    """A 16 MiB linked clone of a base template whose 1 MiB at 1 MiB is 0xab."""
    base = Path(pool.path) / BASE
    qemu_img("create", "-q", "-f", "qcow2", str(base), str(16 * MiB))
    write(base, 0xAB, "1M", "1M")
    volume = Path(pool.path) / VOL
    qemu_img("create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(base), str(volume))
    return volume
