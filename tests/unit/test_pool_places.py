"""One backend location, one pool: `pool add` refuses a second pool on the place an
existing pool (not Removed) keeps its objects in, in one line, writing nothing.

Two pools on one directory or one Ceph pool are one set of objects under two
names: a staged migration from one to the other finds the volume's image already
there, and deleting the source deletes the only copy. The place is the
provider's (`Provider.place`): a directory's real path, a Ceph cluster's fsid
and pool; an iSCSI pool or a simulator pool shares nothing.
"""

from __future__ import annotations

import json
import os

import pytest

from executors.providers import installed
from executors.providers.locations import directory_place
from executors.providers.provider import never_shared, same_location
from executors.providers.rbd.provider import place as rbd_place
from executors.runner import Completed
from ledger.aggregate import Ctx
from ledger.errors import InvalidInput
from ledger.usecases import infrastructure
from ledger.values import Hypervisor, PoolType, Scope
from tests.unit.test_cli_infra import event_count, run

FSID = "744c6bad-f5cc-432d-aa10-c8b039c1b145"
KEY = "AQBbTmNnAAAAABAAw0p0bFpP8iZrS1+e3WkbNQ=="


def add_pool(db_url: str, name: str, path: str, *extra: str, code: int = 0):
    return run(db_url, "pool", "add", name, "--zone", "z1", "--cluster", "c1",
               "--capacity", "10G", "--path", path, *extra, code=code)  # fmt: skip


@pytest.fixture
def zone(db_url, tmp_path):
    (tmp_path / "gold").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "gold")
    run(db_url, "host", "add", "kvm-01", "--zone", "z1", "--cluster", "c1")
    add_pool(db_url, "gold", str(tmp_path / "gold"))
    return db_url


# ------------------------------------------------------------ the places


def test_a_directory_is_one_place_through_symlinks_dots_and_file_urls(tmp_path):
    (tmp_path / "gold").mkdir()
    (tmp_path / "sub").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "gold")
    spellings = [
        str(tmp_path / "gold"),
        f"{tmp_path}/sub/../gold",
        str(tmp_path / "link"),
        f"{tmp_path}/./link/",
        (tmp_path / "gold").as_uri(),
    ]
    places = {directory_place(s, None) for s in spellings}
    assert places == {"file://" + os.path.realpath(tmp_path / "gold")}
    assert directory_place(str(tmp_path / "sub"), None) not in places


def test_every_provider_names_its_place_kind():
    """Directories by real path, rbd by cluster, iSCSI and the simulator never
    shared; anything else (s3, swift stores) the location itself."""
    places = {n: p.place for n, p in installed().providers.items()}
    for name in ("filesystem", "sharedmountpoint", "networkfilesystem"):
        assert places[name] is directory_place
    assert places["rbd"] is rbd_place
    assert places["iscsi"] is never_shared
    assert places["simulator"] is never_shared
    assert places["nfs"] is same_location


class FsidRunner:
    """`ceph fsid` as the lab's cluster answers it, keeping every argv."""

    def __init__(self, stdout: str = json.dumps({"fsid": FSID}), code: int = 0,
                 stderr: str = "") -> None:  # fmt: skip
        self.answer = Completed(code, stdout, stderr)
        self.calls: list[list[str]] = []

    def run(self, argv, *, timeout, on_progress=None) -> Completed:
        self.calls.append(list(argv))
        return self.answer


@pytest.fixture
def cephx(monkeypatch):
    monkeypatch.setenv("STORCTL_CRED_UNITCEPH_KEY", KEY)
    return "unitceph"


def test_an_rbd_place_is_the_cluster_fsid_and_the_pool_whatever_the_spelling(cephx):
    runner = FsidRunner()
    spellings = [
        "rbd://admin@127.0.0.1:3300/storctl",
        "rbd://admin@127.0.0.1:6789/storctl",
        "rbd://cinder@LOCALHOST/storctl/",
    ]
    places = {rbd_place(url, cephx, runner) for url in spellings}
    assert places == {f"rbd://{FSID}/storctl"}
    assert rbd_place("rbd://admin@127.0.0.1/other", cephx, runner) != places.pop()
    for argv in runner.calls:
        assert argv[0] == "ceph"
        assert argv[-3:] == ["fsid", "--format", "json"]
        assert "-m" in argv
        assert not any(KEY in a for a in argv)  # a temporary keyring, by path


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (Completed(1, "", "[errno 13] RADOS permission denied\n"), "Ceph refused"),
        (Completed(0, "not json", ""), "no cluster fsid"),
        (Completed(0, json.dumps({"fsid": "x"}), ""), "no cluster fsid"),
    ],
)
def test_an_rbd_place_ceph_does_not_name_is_refused_in_one_line(cephx, answer, says):
    runner = FsidRunner(answer.stdout, answer.returncode, answer.stderr)
    with pytest.raises(InvalidInput, match=says) as refused:
        rbd_place("rbd://admin@127.0.0.1:3300/storctl", cephx, runner)
    line = refused.value.message()
    assert "\n" not in line
    assert KEY not in line


# ------------------------------------------------------------ the rule, CLI


@pytest.mark.parametrize("spelling", ["{tmp}/gold", "{tmp}/link", "{tmp}/x/../gold"])
def test_a_second_pool_on_one_directory_is_refused_writing_nothing(
    zone, tmp_path, spelling
):
    (tmp_path / "x").mkdir()
    before = event_count(zone)
    refused = add_pool(zone, "silver", spelling.format(tmp=tmp_path), code=2)
    assert refused.stderr.count("\n") == 1
    assert "pool gold is on the same backend location" in refused.stderr
    assert os.path.realpath(tmp_path / "gold") in refused.stderr
    assert event_count(zone) == before
    assert [p["name"] for p in run(zone, "pool", "list")] == ["gold"]


def test_a_removed_pools_place_is_free_again(zone, tmp_path):
    add_pool(zone, "silver", str(tmp_path / "link"), code=2)
    run(zone, "pool", "maintenance", "enable", "gold")
    add_pool(zone, "silver", str(tmp_path / "link"), code=2)  # in Maintenance: held
    run(zone, "pool", "delete", "gold")
    silver = add_pool(zone, "silver", str(tmp_path / "link"))
    assert silver["path"] == str(tmp_path / "link")
    add_pool(zone, "bronze", str(tmp_path / "gold"), code=2)  # now silver's


def test_pools_on_other_directories_and_simulator_pools_are_not_held(zone, tmp_path):
    (tmp_path / "gold" / "inner").mkdir()
    add_pool(zone, "inner", str(tmp_path / "gold" / "inner"))  # another directory
    for name in ("sim1", "sim2"):  # the simulator keeps nothing anywhere
        add_pool(zone, name, "/srv/simulated", "--type", "simulator")
    assert len(run(zone, "pool", "list")) == 4


# ------------------------------------------------------------ the rule, use case


def test_the_use_case_refuses_a_held_place_and_ignores_none(ledger):
    ctx = Ctx.new("unit")
    infrastructure.register_host(ledger, ctx, "kvm-01", "z1", "c1", Hypervisor.KVM)
    fields = dict(zone="z1", capacity=1 << 30, scope=Scope.CLUSTER, cluster="c1",
                  pool_type=PoolType.RBD)  # fmt: skip
    place = f"rbd://{FSID}/storctl"
    infrastructure.register_pool(
        ledger, ctx, name="a", path="rbd://admin@127.0.0.1:3300/storctl",
        place=place, **fields,
    )  # fmt: skip
    with pytest.raises(InvalidInput, match="pool a is on the same backend location"):
        infrastructure.register_pool(
            ledger, ctx, name="b", path="rbd://cinder@127.0.0.1:6789/storctl",
            place=place, **fields,
        )  # fmt: skip
    for name in ("c", "d"):  # no place: nothing claimed, nothing refused
        infrastructure.register_pool(
            ledger, ctx, name=name, path="iscsi://127.0.0.1:3260", place=None,
            **fields,
        )  # fmt: skip
