"""Root containment: every name from a command is hostile until `contained` says not."""

from __future__ import annotations

from pathlib import Path

import pytest

from executors.paths import contained, pool_root, store_root
from ledger.commands import ImageStoreTO, PrimaryDataStoreTO
from ledger.errors import InvalidInput


@pytest.fixture
def root(tmp_path: Path) -> Path:
    store = tmp_path / "store"
    store.mkdir()
    return store


@pytest.mark.parametrize(
    "name",
    [
        "../x",
        "/etc/passwd",
        "a/../../b",
        "a/..",
        "..",
        ".",
        "",
        "a//b",
        "a/",
        "vol\x00.qcow2",
        "vol\nname",
        "vol\rname",
        "$(rm -rf /)",
        "`id`",
        "a b",
        "-f",
        "nbd:host:10809",
        "x" * 300,
        "/".join(["d" * 200] * 30),  # each part fine, the whole too long
    ],
)
def test_hostile_name_is_refused(root, name):
    with pytest.raises(InvalidInput) as caught:
        contained(root, name)
    assert caught.value.what == "path"


@pytest.mark.parametrize(
    "parts",
    [
        ("0b5f3a0e-2c44-4f54-9a57-7d1cbb1f0a43",),
        ("template/tmpl/2/0b5f3a0e.qcow2",),
        ("template", "tmpl", "2", "0b5f3a0e.qcow2"),
        (".0b5f3a0e.part",),
        ("x" * 255,),
    ],
)
def test_ordinary_name_lands_inside_the_root(root, parts):
    path = contained(root, *parts)
    assert path == root.resolve().joinpath(*"/".join(parts).split("/"))
    assert path.is_relative_to(root.resolve())


def test_hostile_part_among_good_ones_is_refused(root):
    with pytest.raises(InvalidInput):
        contained(root, "template", "../../etc", "passwd")


def test_no_parts_is_refused(root):
    with pytest.raises(InvalidInput):
        contained(root)


def test_symlink_escaping_the_root_is_refused(root, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "link").symlink_to(outside)
    with pytest.raises(InvalidInput, match="escapes the root"):
        contained(root, "link", "file")
    (root / "file-link").symlink_to(tmp_path / "secret")
    with pytest.raises(InvalidInput, match="escapes the root"):
        contained(root, "file-link")


def test_symlink_back_to_the_root_itself_is_refused(root):
    (root / "self").symlink_to(root)
    with pytest.raises(InvalidInput):
        contained(root, "self")


def test_symlink_inside_the_root_is_followed(root):
    (root / "real").mkdir()
    (root / "alias").symlink_to(root / "real")
    assert contained(root, "alias", "v") == root.resolve() / "real" / "v"


def test_root_reached_through_a_symlink_still_contains(tmp_path, root):
    via = tmp_path / "via"
    via.symlink_to(root)
    assert contained(via, "v") == root.resolve() / "v"


def test_store_root_reads_a_file_uri_and_a_plain_path(root):
    assert store_root(ImageStoreTO("s", "s", f"file://{root}")) == root
    assert store_root(ImageStoreTO("s", "s", str(root))) == root
    assert store_root(PrimaryDataStoreTO("p", "p", "Filesystem", str(root))) == root


@pytest.mark.parametrize(
    "uri",
    ["nfs://server/export", "file://otherhost/srv", "relative/dir", "/does/not/exist"],
)
def test_store_root_refuses_what_is_not_a_local_directory(uri):
    with pytest.raises(InvalidInput):
        store_root(ImageStoreTO("s", "s", uri))


def test_pool_root_refuses_an_image_store(root):
    with pytest.raises(InvalidInput, match="not a primary pool"):
        pool_root(ImageStoreTO("s", "s", str(root)))
