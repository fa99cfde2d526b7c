"""The KVM agent's fixtures: directory pools and an image store on `tmp_path`, and
an agent whose runner runs the real `qemu-img` and counts what it ran."""

from __future__ import annotations

from pathlib import Path

import pytest

from executors.agents.kvm import KvmAgent
from ledger.commands import ImageStoreTO, PrimaryDataStoreTO
from tests.unit.kvm.helpers import CountingRunner


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
