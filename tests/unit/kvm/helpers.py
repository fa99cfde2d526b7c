"""What the KVM agent's tests share besides fixtures: the real tools, read back.

`qemu-img` and `qemu-io` against `tmp_path` stores, and runners that run them for
real while keeping count (or failing on demand).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

from executors.runner import Completed, SubprocessRunner
from ledger.commands import ImageStoreTO

MiB = 1 << 20


def qemu_img(*args: str) -> str:
    done = subprocess.run(
        ["qemu-img", *args], capture_output=True, text=True, check=True
    )
    return done.stdout


def info(path: Path) -> dict:
    return json.loads(qemu_img("info", "--output=json", "-f", "qcow2", "-U", str(path)))


def files_under(path: Path) -> set[Path]:
    return {p for p in path.rglob("*") if not p.is_dir()}


def qemu_io(path: Path, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["qemu-io", "-f", "qcow2", "-c", command, str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


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


def image_store_dir(store: ImageStoreTO) -> Path:
    return Path(store.uri.removeprefix("file://"))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class CountingRunner(SubprocessRunner):
    """The real runner, keeping every argv so a test can count what ran."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def run(self, argv, *, timeout, on_progress=None):
        self.calls.append(list(argv))
        return super().run(argv, timeout=timeout, on_progress=on_progress)

    def count(self, subcommand: str) -> int:
        return sum(1 for argv in self.calls if argv[1] == subcommand)


class FailingRunner(SubprocessRunner):
    """Runs everything for real, then reports `fails` as out of space."""

    def __init__(self, fails: str) -> None:
        self.fails = fails

    def run(self, argv, *, timeout, on_progress=None):
        done = super().run(argv, timeout=timeout, on_progress=on_progress)
        if argv[1] == self.fails:
            assert done.returncode == 0, done.stderr  # it did write a file
            return Completed(
                1, "", "qemu-img: error while writing: No space left on device"
            )
        return done
