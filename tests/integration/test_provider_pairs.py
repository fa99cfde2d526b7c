"""Volume migration between every ordered pair of primary providers, through the
CLI, against the lab's real Ceph and tgtd.

One 64 MiB volume with random data in three places makes a tour of nine hops
that covers every ordered pair of `filesystem` (dir), `rbd` and `iscsi`, the
same-provider pairs between two pools of that provider (the second RBD pool on
its own Ceph pool, `storctl-pairs`: two storctl pools on one Ceph pool are the
same images). After each hop the volume's data, read back from its new backend
with qemu-img, has the reference's sha256, and the old copy is gone from the
backend it left (file, RBD image, LUN file and target).

The tour runs twice: with every pool in one cluster (one `CopyCommand` from
pool to pool on a host that reaches both) and with consecutive pools in two
clusters no host spans (staged through the image store, two legs a hop).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Lab
from tests.integration.test_rbd import MON

from .conftest import Storctl, ledger_events

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.skipif(
        not (shutil.which("qemu-img") and shutil.which("rbd")),
        reason="needs qemu-img and the rbd client",
    ),
]

MiB = 1 << 20
SIZE = 64 * MiB
#: The second Ceph pool: the lab makes it (`second_pool` in `lab-ceph`); made
#: here too if a lab from before that lacks it (8 PGs on the one OSD, like the
#: lab's own `storctl`).
SECOND = "storctl-pairs"
#: Every ordered pair of (dir, rbd, iscsi), as a tour: pool names, in order.
TOUR = ["dir1", "dir2", "rbd1", "rbd2", "iscsi1", "iscsi2", "dir1", "iscsi2",
        "rbd1", "dir2"]  # fmt: skip


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done
    return done


class Backends:
    """The lab's Ceph and tgtd as the test reads and cleans them."""

    def __init__(self, lab: Lab) -> None:
        ceph, iscsi = lab["lab-ceph"], lab["lab-iscsi"]
        self.conf, self.keyring = str(ceph["conf"]), str(ceph["keyring"])
        second = str(ceph.get("second_pool", SECOND))
        self.pools = {"rbd1": str(ceph["pool"]), "rbd2": second}
        self.port = str(iscsi["control_port"])
        self.portal = str(iscsi["portal"])
        self.lun_dir = Path(iscsi["lun_dir"])
        self._second_pool()

    def _tool(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        return run(tool, "-c", self.conf, "--id", "admin", "--keyring",
                   self.keyring, *args)  # fmt: skip

    def _second_pool(self) -> None:
        pools = json.loads(self._tool("ceph", "osd", "pool", "ls", "--format",
                                      "json").stdout)  # fmt: skip
        second = self.pools["rbd2"]
        if second not in pools:
            self._tool("ceph", "osd", "pool", "create", second, "8", "8",
                       "replicated")  # fmt: skip
            self._tool("rbd", "pool", "init", second)

    def images(self, ceph_pool: str) -> set[str]:
        done = self._tool("rbd", "ls", ceph_pool, "--format", "json")
        return set(json.loads(done.stdout or "[]"))

    def rbd_name(self, ceph_pool: str, image: str) -> str:
        return (f"rbd:{ceph_pool}/{image}:conf={self.conf}:id=admin"
                f":keyring={self.keyring}")  # fmt: skip

    def remove_images(self, ours: set[str]) -> None:
        for ceph_pool in self.pools.values():
            for name in self.images(ceph_pool):
                if name.removesuffix(".part") in ours:
                    self._tool("rbd", "snap", "purge", "--no-progress",
                               f"{ceph_pool}/{name}")  # fmt: skip
                    self._tool("rbd", "rm", "--no-progress", f"{ceph_pool}/{name}")

    def iqns(self) -> dict[str, tuple[str, list[str]]]:
        """Every target of tgtd: IQN -> (tid, its accounts)."""
        from executors.providers.iscsi.tgtadm import parse_targets, show_argv

        found = parse_targets(run(*show_argv(int(self.port))).stdout)
        return {t.iqn: (str(t.tid), list(t.accounts)) for t in found.values()}

    def remove_targets(self, pool_ids: list[str]) -> None:
        for iqn, (tid, accounts) in self.iqns().items():
            if any(pool_id in iqn for pool_id in pool_ids):
                run("tgtadm", "-C", self.port, "--op", "delete", "--mode", "target",
                    "--tid", tid, "--force")  # fmt: skip
                for user in accounts:
                    subprocess.run(["tgtadm", "-C", self.port, "--op", "delete",
                                    "--mode", "account", "--user", user],
                                   capture_output=True, check=False)  # fmt: skip
        for pool_id in pool_ids:
            shutil.rmtree(self.lun_dir / pool_id, ignore_errors=True)


class Zone:
    """Two pools of each provider, an image store, hosts kvm1 (c1) and kvm2 (c2)."""

    def __init__(self, lab: Lab, backends: Backends, root: Path, *, staged: bool):
        self.lab, self.backends, self.root = lab, backends, root
        self.staged = staged
        credentials = {"STORCTL_CREDENTIALS": str(lab.credentials)}
        self.cli = Storctl(str(root / "ledger.db"), env=credentials)
        self.pools: dict[str, dict[str, Any]] = {}
        self.cli.ok("host", "add", "kvm1", "--zone", "z1", "--cluster", "c1")
        self.cli.ok("host", "add", "kvm2", "--zone", "z1", "--cluster", "c2")
        (root / "sec").mkdir()
        self.cli.ok("store", "add", "sec", "--zone", "z1", "--path", str(root / "sec"))
        for name in ("dir1", "dir2", "rbd1", "rbd2", "iscsi1", "iscsi2"):
            # staged: the 1s in c1, the 2s in c2, and the tour alternates them
            cluster = "c2" if staged and name.endswith("2") else "c1"
            self.pools[name] = self._add(name, cluster)

    def _add(self, name: str, cluster: str) -> dict[str, Any]:
        where = ["--zone", "z1", "--cluster", cluster, "--capacity", "2G"]
        if name.startswith("dir"):
            (self.root / name).mkdir()
            return self.cli.ok("pool", "add", name, *where, "--path",
                               str(self.root / name))  # fmt: skip
        if name.startswith("rbd"):
            url = f"rbd://admin@{MON}/{self.backends.pools[name]}"
            return self.cli.ok("pool", "add", name, *where, "--provider", "rbd",
                               "--url", url, "--credentials", "lab-ceph")  # fmt: skip
        return self.cli.ok("pool", "add", name, *where, "--provider", "iscsi",
                           "--url", f"iscsi://{self.backends.portal}",
                           "--credentials", "lab-iscsi")  # fmt: skip

    # ------------------------------------------------------------ the data

    def read(self, volume: dict[str, Any], into: Path) -> bytes:
        """The volume's first 64 MiB as qemu-img reads them from its backend."""
        pool = volume["storage"]
        if pool.startswith("dir"):
            run("qemu-img", "convert", "-f", "qcow2", "-O", "raw",
                str(self.root / pool / volume["path"]), str(into))  # fmt: skip
        elif pool.startswith("rbd"):
            name = self.backends.rbd_name(self.backends.pools[pool], volume["path"])
            run("qemu-img", "convert", "-f", "raw", "-O", "raw", name, str(into))
        else:
            obj, opts = self.lun_opts(volume)
            run("qemu-img", "convert", "--object", obj, "--image-opts", opts,
                "-O", "raw", str(into))  # fmt: skip
        with into.open("rb") as data:
            return data.read(SIZE)

    def lun_opts(self, volume: dict[str, Any]) -> tuple[str, str]:
        pool_id = self.pools[volume["storage"]]["id"]
        secret = self.backends.lun_dir / pool_id / f"{volume['id']}.chap"
        user = f"storctl-{volume['id']}-{pool_id[:8]}"
        opts = ",".join([
            "driver=raw", "file.driver=iscsi", "file.transport=tcp",
            f"file.portal={self.backends.portal}", f"file.target={volume['path']}",
            "file.lun=1", f"file.user={user}", "file.password-secret=chap",
        ])  # fmt: skip
        return f"secret,id=chap,file={secret}", opts

    def present(self, pool: str, volume: dict[str, Any]) -> bool:
        """Whether `volume`'s copy is on the backend of `pool` (any part of it)."""
        if pool.startswith("dir"):
            return (self.root / pool / volume["id"]).exists() or (
                self.root / pool / volume["path"]
            ).exists()
        if pool.startswith("rbd"):
            images = self.backends.images(self.backends.pools[pool])
            return volume["id"] in images or f"{volume['id']}.part" in images
        pool_id = self.pools[pool]["id"]
        folder = self.backends.lun_dir / pool_id
        files = list(folder.glob(f"*{volume['id']}*")) if folder.is_dir() else []
        targets = [i for i in self.backends.iqns() if f"{pool_id}.{volume['id']}" in i]
        return bool(files or targets)

    def clean_up(self) -> None:
        ours = {e.originator_id for e in ledger_events(self.cli.db)}
        self.backends.remove_images({str(o) for o in ours})
        self.backends.remove_targets(
            [p["id"] for n, p in self.pools.items() if n.startswith("iscsi")]
        )


@pytest.fixture
def backends(lab_backends: Lab) -> Backends:
    return Backends(lab_backends)


@pytest.fixture(params=["one cluster", "staged"])
def zone(request, lab_backends: Lab, backends: Backends, tmp_path: Path):
    made = Zone(lab_backends, backends, tmp_path, staged=request.param == "staged")
    try:
        yield made
    finally:
        made.clean_up()


def reference(path: Path) -> bytes:
    """64 MiB: random MiBs at the start, in the middle (unaligned) and at the end,
    zeros between, as a raw file; its bytes."""
    with path.open("wb") as out:
        out.truncate(SIZE)
        for offset in (0, 20 * MiB + 4096, SIZE - MiB):
            out.seek(offset)
            out.write(os.urandom(MiB))
    return path.read_bytes()


def test_a_volume_tours_every_ordered_pair_of_primary_providers(
    zone: Zone, tmp_path: Path
) -> None:
    pairs = {(a[:-1], b[:-1]) for a, b in itertools.pairwise(TOUR)}
    assert len(pairs) == 9, "the tour misses an ordered pair"
    want = hashlib.sha256(reference(tmp_path / "ref.raw")).hexdigest()
    volume = zone.cli.ok("volume", "create", "d1", "--zone", "z1", "--size", "64M",
                         "--pool", TOUR[0])  # fmt: skip
    run("qemu-img", "convert", "-n", "-f", "raw", str(tmp_path / "ref.raw"), "-O",
        "qcow2", str(zone.root / TOUR[0] / volume["path"]))  # fmt: skip
    read = tmp_path / "read.raw"
    assert hashlib.sha256(zone.read(volume, read)).hexdigest() == want
    for source, target in itertools.pairwise(TOUR):
        before = volume
        volume = zone.cli.ok("volume", "migrate", "d1", "--pool", target)
        hop = f"{source} -> {target}"
        assert (volume["state"], volume["storage"]) == ("Ready", target), hop
        assert volume["size"] == SIZE, hop
        got = hashlib.sha256(zone.read(volume, read)).hexdigest()
        assert got == want, f"{hop}: the data changed"
        assert not zone.present(source, before), f"{hop}: the old copy stayed"
        assert zone.present(target, volume), hop
    legs = [e["event"] for e in zone.cli.ok("history", "volume", "d1")
            if e["event"] in ("StagedCopyRequested", "CopyRequested")]  # fmt: skip
    hop = ["CopyRequested", "StagedCopyRequested"] if zone.staged else ["CopyRequested"]
    expected = hop * (len(TOUR) - 1)
    assert legs == expected
    assert list((zone.root / "sec").rglob("volumes/*")) == []
