"""Each provider's inventory (what `storctl reconcile` lists on a pool), with fakes
behind the `Runner` seam, and the one comparison every provider's findings go
through (`executors.reconcile.compare`), with a property test of its rules.

The RBD listing is answered by `rbd_fake.FakeCeph` in the shape Ceph Pacific
prints `rbd ls -l --format json` (checked on the lab); tgtd's `--op show` by
`iscsi.fake.FakeHost`. The lab tests (`tests/integration/test_rbd.py`,
`test_iscsi.py`) run the same listers against the real daemons.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from executors.providers.inventory import Claim, Found, Inventory
from executors.providers.iscsi import inventory as iscsi_inventory
from executors.providers.iscsi.layout import IQN_PREFIX, Lun
from executors.providers.rbd import inventory as rbd_inventory
from executors.providers.rbd.ceph import BASE_SNAP
from executors.providers.rbd.snapshots import GUARD
from executors.providers.registry import installed
from executors.reconcile import compare
from executors.runner import CommandTimedOut, Completed
from ledger.commands import PrimaryDataStoreTO
from ledger.errors import InvalidInput
from tests.unit.iscsi.fake import FakeHost, FakeTarget
from tests.unit.rbd_fake import FakeCeph, Img

MiB = 1 << 20
RBD_POOL = PrimaryDataStoreTO(
    str(uuid.uuid4()), "ceph", "RBD", "rbd://admin@127.0.0.1:3300/storctl",
    credentials="unit-ceph",
)  # fmt: skip
RBD_CREDS = {"keyring": "/nonexistent/keyring"}


def problems(findings: list) -> list[tuple[str, str]]:
    return sorted((f.problem, f.path) for f in findings)


# ---------------------------------------------------------------- registry


def test_every_primary_provider_but_the_simulator_can_be_listed() -> None:
    registry = installed()
    listed = {
        name
        for name in registry.names()
        if registry.providers[name].inventory is not None
    }
    assert {"filesystem", "sharedmountpoint", "networkfilesystem", "rbd", "iscsi"} <= (
        listed
    )
    assert registry.providers["simulator"].inventory is None


# ---------------------------------------------------------------- rbd


def ceph_pool() -> FakeCeph:
    """A template copy, a ROOT clone of it with a native snapshot, a data volume
    that a revert left a guard snapshot on, a copy in progress, and a stray."""
    ceph = FakeCeph()
    ceph.images = {
        "tmpl": Img(64 * MiB, snaps={BASE_SNAP: True}),
        "root": Img(128 * MiB, parent=("tmpl", BASE_SNAP), snaps={"snap1": False}),
        "data": Img(10 * MiB, snaps={GUARD: False}),
        "other.part": Img(64 * MiB, snaps={BASE_SNAP: True}),
        "stray": Img(MiB),
    }
    return ceph


def test_rbd_listing_folds_base_and_guard_snapshots() -> None:
    ceph = ceph_pool()
    inventory = rbd_inventory.list_pool(RBD_POOL, RBD_CREDS, ceph)
    assert sorted(inventory.found) == [
        "data", "other.part", "root", "root@snap1", "stray", "tmpl",
    ]  # fmt: skip
    root = inventory.found["root"]
    assert (root.size, root.backing) == (128 * MiB, f"storctl/tmpl@{BASE_SNAP}")
    assert inventory.found["other.part"].temp_of == "other"
    assert inventory.based == {"tmpl", "other.part"}
    [argv] = ceph.calls
    assert argv[0] == "rbd"
    assert argv[-5:] == ["ls", "-l", "--format", "json", "storctl"]
    assert not any("keyring" in a and "key =" in a for a in argv)


def rbd_claims() -> list[Claim]:
    return [
        Claim("template", "t1", "tiny", "tmpl", "Ready", settled=True),
        Claim(
            "volume",
            "v1",
            "ROOT-web",
            "root",
            "Ready",
            True,
            "RAW",
            128 * MiB,
            base="tmpl",
            check_backing=True,
        ),
        Claim(
            "volume",
            "v2",
            "data-1",
            "data",
            "Ready",
            True,
            "RAW",
            10 * MiB,
            check_backing=True,
        ),
        Claim("snapshot", "s1", "nightly", "root@snap1", "BackedUp", settled=True),
    ]


def test_rbd_clean_pool_has_only_the_orphans_and_leftovers() -> None:
    inventory = rbd_inventory.list_pool(RBD_POOL, RBD_CREDS, ceph_pool())
    found = compare(inventory, rbd_claims())
    assert problems(found) == [("leftover", "other.part"), ("orphan", "stray")]
    orphan = next(f for f in found if f.problem == "orphan")
    assert orphan.found == f"an image of {MiB} bytes"


def test_rbd_drift_of_every_kind() -> None:
    ceph = ceph_pool()
    del ceph.images["data"]  # a volume's image removed
    ceph.images["tmpl"].snaps[BASE_SNAP] = False  # unprotected base
    ceph.images["root"].size = 256 * MiB  # grown behind the ledger's back
    ceph.images["root"].parent = ("stray", "s")  # and cloned from elsewhere
    ceph.images["root"].snaps["manual"] = False  # a snapshot nobody recorded
    inventory = rbd_inventory.list_pool(RBD_POOL, RBD_CREDS, ceph)
    found = compare(inventory, rbd_claims(), in_flight=["other"])
    assert problems(found) == [
        ("backing", "root"),
        ("incomplete", "tmpl"),
        ("missing", "data"),
        ("orphan", "root@manual"),
        ("orphan", "stray"),
        ("size", "root"),
    ]
    by = {f.problem: f for f in found}
    assert (by["missing"].expected, by["missing"].found) == (
        "Ready volume's image",
        "no such image",
    )
    assert by["backing"].expected == f"storctl/tmpl@{BASE_SNAP}"
    assert by["backing"].found == "storctl/stray@s"
    assert by["incomplete"].expected == f"a protected snapshot {BASE_SNAP}"
    assert (by["size"].expected, by["size"].found) == (str(128 * MiB), str(256 * MiB))


TRANSIENT = "rbd: listing images failed: (108) Cannot send after transport endpoint\n"
UNOPENABLE = (
    "rbd: error opening data: (2) No such file or directory\n"
    "rbd: listing images failed: (2) No such file or directory\n"
)


def test_rbd_listing_is_tried_once_more_after_a_transient_failure() -> None:
    ceph = ceph_pool()
    ceph.fail("rbd", "ls", TRANSIENT)
    inventory = rbd_inventory.list_pool(RBD_POOL, RBD_CREDS, ceph)
    assert "tmpl" in inventory.found
    assert len(ceph.calls) == 2


def test_an_image_rbd_cannot_open_fails_only_itself() -> None:
    """`rbd ls -l` fails whole on one image whose header is gone (an `rbd rm`
    cut by a stopped OSD): the pool is listed image by image instead, and the
    broken one is found without a size, named for what it is."""
    whole = rbd_inventory.list_pool(RBD_POOL, RBD_CREDS, ceph_pool())
    ceph = ceph_pool()
    ceph.fail("rbd", "ls", UNOPENABLE)
    ceph.fail("rbd", "info", "rbd: error opening image data: (2) No such file\n")
    inventory = rbd_inventory.list_pool(RBD_POOL, RBD_CREDS, ceph)
    assert set(inventory.found) == set(whole.found)
    assert inventory.based == whole.based
    broken = inventory.found["data"]
    assert broken.size is None
    assert "cannot open" in broken.description
    for path, item in whole.found.items():
        if path != "data":
            assert inventory.found[path] == item, path


def test_rbd_listing_that_keeps_failing_is_refused_in_cephs_words() -> None:
    ceph = ceph_pool()
    ceph.fail("rbd", "ls", TRANSIENT)
    ceph.fail("rbd", "ls", "rbd: listing images failed: (110) Connection timed out\n")
    with pytest.raises(InvalidInput) as caught:
        rbd_inventory.list_pool(RBD_POOL, RBD_CREDS, ceph)
    assert caught.value.exit_code == 2
    assert "(110) Connection timed out" in str(caught.value)
    assert len(ceph.calls) == 2


def test_rbd_refused_key_is_not_retried_and_no_key_is_shown() -> None:
    key = "AQ" + "B" * 38 + "=="
    ceph = ceph_pool()
    ceph.fail(
        "rbd", "ls", f"key = {key}\nrbd: listing failed: (13) Permission denied\n"
    )
    with pytest.raises(InvalidInput) as caught:
        rbd_inventory.list_pool(RBD_POOL, {"key": key}, ceph)
    assert "(13) Permission denied" in str(caught.value)
    assert key not in str(caught.value)
    assert len(ceph.calls) == 1


def test_rbd_listing_timed_out_twice() -> None:
    class Stuck:
        calls = 0

        def run(
            self, argv: list[str], *, timeout: float, on_progress=None
        ) -> Completed:
            Stuck.calls += 1
            raise CommandTimedOut(argv[:1], timeout)

    with pytest.raises(InvalidInput, match="no answer in"):
        rbd_inventory.list_pool(RBD_POOL, RBD_CREDS, Stuck())
    assert Stuck.calls == 2


def test_rbd_unreadable_listing() -> None:
    with pytest.raises(ValueError, match="not a list"):
        rbd_inventory.parse_listing("storctl", {"not": "a list"})


# ---------------------------------------------------------------- iscsi


POOL_UUID = "4f6e2c1a-0d7b-4d8e-9a53-2b1f6a0c9e11"
OTHER_POOL = "9a1c7a2e-5b43-4e0a-8f62-1d2c3b4a5e6f"


@pytest.fixture
def lun_dir(tmp_path: Path) -> Path:
    return tmp_path / "luns"


def iscsi_store() -> PrimaryDataStoreTO:
    return PrimaryDataStoreTO(
        POOL_UUID, "lun", "Iscsi", "iscsi://127.0.0.1:3260", credentials="unit-iscsi"
    )


def iscsi_creds(lun_dir: Path) -> dict[str, object]:
    return {"control_port": 17, "portal": "127.0.0.1:3260", "lun_dir": str(lun_dir)}


def make_volume(
    host: FakeHost, lun_dir: Path, vol: str, *, file: bool = True,
    target: bool = True, secret: bool = True, pool: str = POOL_UUID,
) -> Lun:  # fmt: skip
    lun = Lun.of(pool, vol, lun_dir)
    lun.root.mkdir(parents=True, exist_ok=True)
    if file:
        with lun.file.open("wb") as out:
            out.truncate(8 * MiB)
    if secret:
        lun.password(create=True)
    if target:
        tid = 10_000 + len(host.targets)
        host.targets[tid] = FakeTarget(
            tid, lun.iqn, {1: str(lun.file)}, [lun.user], ["ALL"]
        )
    return lun


def vols(n: int) -> list[str]:
    return [str(uuid.UUID(int=i + 1)) for i in range(n)]


def test_iscsi_listing_one_entry_a_volume(lun_dir: Path) -> None:
    host = FakeHost()
    whole, no_target, gone, stray, temp = vols(5)
    a = make_volume(host, lun_dir, whole)
    b = make_volume(host, lun_dir, no_target, target=False)
    c = make_volume(host, lun_dir, gone, file=False, secret=False)
    d = make_volume(host, lun_dir, stray)
    (a.root / "notes.txt").write_text("hello")
    Lun.of(POOL_UUID, temp, lun_dir).part.write_bytes(b"half")
    make_volume(host, lun_dir, vols(6)[5], pool=OTHER_POOL)  # another pool's
    host.targets[3] = FakeTarget(3, "iqn.2003-01.org.example:by-hand")
    inventory = iscsi_inventory.list_pool(iscsi_store(), iscsi_creds(lun_dir), host)
    assert sorted(inventory.found) == sorted(
        [a.iqn, b.iqn, c.iqn, d.iqn, "notes.txt", f".{temp}.lun.part"]
    )
    assert inventory.found[a.iqn].lacks == ()
    assert inventory.found[a.iqn].size == 8 * MiB
    assert inventory.found[b.iqn].lacks == (
        "its target in tgtd (storctl pool targets makes it)",
    )
    assert inventory.found[c.iqn].remnant
    assert inventory.found[f".{temp}.lun.part"].temp_of == (
        Lun.of(POOL_UUID, temp, lun_dir).iqn
    )
    assert [call[-4:] for call in host.calls] == [["--op", "show", "--mode", "target"]]


def test_iscsi_drift_and_no_secret_in_any_finding(lun_dir: Path) -> None:
    host = FakeHost()
    whole, no_target, gone, stray, temp, creating = vols(6)
    a = make_volume(host, lun_dir, whole)
    b = make_volume(host, lun_dir, no_target, target=False)
    c = make_volume(host, lun_dir, gone, file=False)
    d = make_volume(host, lun_dir, stray)
    Lun.of(POOL_UUID, temp, lun_dir).part.write_bytes(b"half")
    Lun.of(POOL_UUID, creating, lun_dir).part.write_bytes(b"filling")
    claims = [
        Claim("volume", whole, "ROOT-a", a.iqn, "Ready", True, "RAW", 8 * MiB),
        Claim("volume", no_target, "data-b", b.iqn, "Ready", True, "RAW", 8 * MiB),
        Claim("volume", gone, "data-c", c.iqn, "Ready", True, "RAW", 8 * MiB),
        # a volume being made has no path yet: claimed by its uuid
        Claim("volume", creating, "data-e", creating, "Creating", settled=False),
    ]
    inventory = iscsi_inventory.list_pool(iscsi_store(), iscsi_creds(lun_dir), host)
    found = compare(inventory, claims, in_flight=[creating])
    assert problems(found) == sorted(
        [
            ("incomplete", b.iqn),
            ("missing", c.iqn),
            ("orphan", d.iqn),
            ("leftover", f".{temp}.lun.part"),
        ]
    )
    by = {f.problem: f for f in found}
    assert (
        by["missing"].found
        == "no LUN file; its target (tid 10001) and its CHAP secret file still there"
    )
    assert by["orphan"].found == f"LUN file of {8 * MiB} bytes, target tid 10002"
    secrets = [Lun.of(POOL_UUID, v, lun_dir).password(create=False)
               for v in (whole, no_target, gone, stray)]  # fmt: skip
    text = repr([f.row() for f in found])
    assert not any(s in text for s in secrets)


def test_iscsi_size_and_target_on_another_file(lun_dir: Path) -> None:
    host = FakeHost()
    [vol] = vols(1)
    a = make_volume(host, lun_dir, vol)
    host.targets[10_000].luns[1] = "/elsewhere.lun"
    claims = [Claim("volume", vol, "v", a.iqn, "Ready", True, "RAW", 4 * MiB)]
    inventory = iscsi_inventory.list_pool(iscsi_store(), iscsi_creds(lun_dir), host)
    found = compare(inventory, claims)
    assert problems(found) == [("incomplete", a.iqn), ("size", a.iqn)]


def test_iscsi_tgtd_down_or_wrong_profile_is_refused(lun_dir: Path) -> None:
    lun_dir.mkdir()
    with pytest.raises(InvalidInput, match="cannot list its targets: tgtadm --op show"):
        iscsi_inventory.list_pool(
            iscsi_store(), iscsi_creds(lun_dir), FakeHost(up=False)
        )
    other = {**iscsi_creds(lun_dir), "portal": "127.0.0.1:3261"}
    with pytest.raises(InvalidInput, match="is not the pool's"):
        iscsi_inventory.list_pool(iscsi_store(), other, FakeHost())
    gone = iscsi_creds(lun_dir / "nope")
    with pytest.raises(InvalidInput, match="is missing"):
        iscsi_inventory.list_pool(iscsi_store(), gone, FakeHost())


def test_iscsi_empty_pool_lists_nothing(lun_dir: Path) -> None:
    lun_dir.mkdir()
    inventory = iscsi_inventory.list_pool(
        iscsi_store(), iscsi_creds(lun_dir), FakeHost()
    )
    assert inventory.found == {}
    assert inventory.key(POOL_UUID) == f"{IQN_PREFIX}:{POOL_UUID}.{POOL_UUID}"
    assert inventory.key("not-a-uuid") == "not-a-uuid"


# ---------------------------------------------------------------- compare


names = st.sampled_from([f"o{i}" for i in range(8)])


@settings(max_examples=200, deadline=None)
@given(
    present=st.sets(names),
    claimed=st.dictionaries(names, st.booleans()),  # path -> settled
    busy=st.sets(names),
)
def test_compare_names_every_object_once_by_the_rules(
    present: set[str], claimed: dict[str, bool], busy: set[str]
) -> None:
    """Whatever is on the backend and whatever the ledger claims: an unclaimed,
    idle object is one orphan; a settled claim without its object one missing;
    a claimed object that reads as expected gives nothing; in-flight objects and
    claims in flight never give a finding."""
    inventory = Inventory(noun="thing")
    for path in present:
        inventory.add(Found(path, "thing", description="a thing"))
    claims = [
        Claim("volume", f"id-{p}", p, p, "Ready" if s else "Creating", settled=s)
        for p, s in claimed.items()
    ]
    found = compare(inventory, claims, busy)
    want = [("orphan", p) for p in present - set(claimed) - busy]
    want += [("missing", p) for p, s in claimed.items() if s and p not in present]
    assert problems(found) == sorted(want)
    assert len({(f.problem, f.path) for f in found}) == len(found)


@settings(max_examples=200, deadline=None)
@given(
    temps=st.sets(names),
    claimed=st.dictionaries(names, st.booleans()),
    busy=st.sets(names),
)
def test_a_staged_write_is_a_leftover_only_when_nothing_makes_it(
    temps: set[str], claimed: dict[str, bool], busy: set[str]
) -> None:
    """`.NAME.part` of a name in flight (an operation's, or a claim not settled)
    is left alone; of any other name, it is one leftover, owned by the claim of
    that name if there is one."""
    inventory = Inventory(noun="thing")
    for name in temps:
        inventory.add(Found(f".{name}.part", "thing", temp_of=name))
    claims = [
        Claim("volume", f"id-{p}", p, p, "Ready" if s else "Creating", settled=s)
        for p, s in claimed.items()
    ]
    found = compare(inventory, claims, busy)
    making = busy | {p for p, s in claimed.items() if not s}
    left = [f for f in found if f.problem == "leftover"]
    assert sorted(f.path for f in left) == sorted(f".{n}.part" for n in temps - making)
    for f in left:
        owner = f.path[1 : -len(".part")]
        assert f.object_id == (f"id-{owner}" if owner in claimed else None)
