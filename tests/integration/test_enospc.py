"""A real ENOSPC: a pool on an 8 MiB tmpfs that claims 10G, and a template of 16 MiB.

The ledger believes the pool has room (its capacity is what the operator said), so the
allocator picks it; the copy of the template onto it then runs out of space.
CLI.md's exit 3: "insufficient space" in one line, the volume back to Allocated with
no pool, the pool's allocated capacity as before, and nothing left on the tmpfs (no
partial file, no `.part`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Storctl

pytestmark = pytest.mark.skipif(
    shutil.which("qemu-img") is None or shutil.which("qemu-io") is None,
    reason="qemu-img and qemu-io are needed for a real KVM pool",
)


@pytest.fixture
def small_pool(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs, unmounted in the finalizer."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        why = done.stderr.strip() or f"mount exited {done.returncode}"
        if os.environ.get("CI"):
            pytest.fail(f"mounting a tmpfs failed on CI (must run as root): {why}")
        pytest.skip(f"mounting a tmpfs is not permitted here: {why}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False, capture_output=True)


def test_insufficient_space_is_exit_3_and_leaves_nothing(
    db_url: str, tmp_path: Path, small_pool: Path
) -> None:
    for d in ("sec", "img"):
        (tmp_path / d).mkdir()
    image = tmp_path / "img" / "big.qcow2"
    subprocess.run(["qemu-img", "create", "-f", "qcow2", str(image), "64M"],
                   check=True, capture_output=True)  # fmt: skip
    subprocess.run(["qemu-io", "-c", "write -P 0xab 0 16M", str(image)],
                   check=True, capture_output=True)  # fmt: skip
    cli = Storctl(db_url)
    cli.ok("host", "add", "kvm1", "--zone", "z1", "--cluster", "c1")
    pool = cli.ok("pool", "add", "small", "--zone", "z1", "--cluster", "c1",
                  "--path", str(small_pool), "--capacity", "10G",
                  "--overprovision", "1")  # fmt: skip
    cli.ok("store", "add", "sec1", "--zone", "z1", "--path", str(tmp_path / "sec"))
    cli.ok("config", "set", "template.url.allowed.roots", str(tmp_path / "img"))
    cli.ok("template", "register", "big", "--url", f"file://{image}",
           "--format", "qcow2", "--zone", "z1")  # fmt: skip
    before = pool["disksizeallocated"]

    failed = cli.run("vm", "deploy", "web1", "--template", "big", "--zone", "z1")
    assert failed.code == 3, failed
    assert "insufficient space" in failed.err, failed
    assert len(failed.err.strip().splitlines()) == 1, failed

    # nothing was made: the VM and its ROOT volume are gone, their names free
    assert "ROOT-web1" not in [v["name"] for v in cli.ok("volume", "list")]
    [root] = cli.db_rows("SELECT * FROM volumes WHERE name = ?", ["ROOT-web1"])
    assert root["state"] == "Expunged"
    assert root["pool_id"] is None
    assert root["path"] is None
    assert cli.pool("small")["disksizeallocated"] == before
    left = [p.name for p in small_pool.iterdir()]
    assert left == [], f"left on the full pool: {left}"

    # The pool is clean in the ledger's eyes too.
    clean = cli.run("reconcile", "small")
    assert clean.code == 0, clean
