"""Names are data: hostile names never become paths, options or shell words.

Host, pool, store, template, VM and volume names holding `../`, absolute paths, NUL,
newlines, `$(...)`, `; rm -rf /`, backticks, option look-alikes and 10,000 characters,
on a real KVM zone (qemu-img on directories). Each is refused with exit 2 and one line,
or accepted as an opaque name that reads back unchanged. Either way: no file appears
outside the pool and store roots, the shell-injection marker never appears (no shell
ran), and every file on a pool is named by an id.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from .conftest import Result, Storctl

pytestmark = pytest.mark.skipif(
    shutil.which("qemu-img") is None or shutil.which("qemu-io") is None,
    reason="qemu-img and qemu-io are needed for a real KVM zone",
)

MARKER = Path(f"/tmp/storctl-pwned-{uuid.uuid4().hex}")
HOSTILE = [
    "../escape",
    "../../../../etc/passwd",
    "/abs/path/name",
    "a\0b",
    "line\nbreak",
    f"$(touch {MARKER})",
    f"; rm -rf / ; touch {MARKER}",
    f"`touch {MARKER}`",
    f"x' && touch {MARKER} #",
    "-rf",
    "--help-me",
    "%s%n%x",
    "name with spaces",
    "ünïcødé-名前",
    "x" * 10_000,
]
UUID_NAME = re.compile(
    r"\.?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
)
SAFE_PART = re.compile(r"[A-Za-z0-9_.+-]+")


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir()}


@pytest.fixture
def kvm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Storctl:
    for d in ("p1", "p2", "sec", "img", "cwd"):
        (tmp_path / d).mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    image = tmp_path / "img" / "tiny.qcow2"
    subprocess.run(["qemu-img", "create", "-f", "qcow2", str(image), "64M"],
                   check=True, capture_output=True)  # fmt: skip
    cli = Storctl(str(tmp_path / "ledger.db"))
    cli.ok("host", "add", "kvm1", "--zone", "z1", "--cluster", "c1")
    cli.ok("pool", "add", "p1", "--zone", "z1", "--cluster", "c1",
           "--path", str(tmp_path / "p1"), "--capacity", "10G")  # fmt: skip
    cli.ok("store", "add", "sec1", "--zone", "z1", "--path", str(tmp_path / "sec"))
    cli.ok("config", "set", "template.url.allowed.roots", str(tmp_path / "img"))
    cli.ok("template", "register", "tiny", "--url", f"file://{image}",
           "--format", "qcow2", "--zone", "z1")  # fmt: skip
    cli.ok("vm", "deploy", "vm0", "--template", "tiny", "--zone", "z1")
    return cli


def _refused_or_taken(result: Result, what: str) -> bool:
    """True when accepted; a refusal must be exit 2 with one line and no traceback."""
    assert "Traceback" not in result.err, f"{what}: {result}"
    if result.code == 0:
        return True
    assert result.code == 2, f"{what}: {result}"
    lines = [x for x in result.err.splitlines() if x.strip()]
    lines = [x for x in lines if not x.startswith(("Usage: ", "Try '"))]
    assert len(lines) == 1, f"{what}: {result}"
    return False


@pytest.mark.parametrize("name", HOSTILE, ids=lambda n: repr(n[:24]))
def test_hostile_names_are_opaque(kvm: Storctl, tmp_path: Path, name: str) -> None:
    cli = kvm
    before = _files(tmp_path)
    image = tmp_path / "img" / "tiny.qcow2"
    steps = {
        "host": ("host", "add", name, "--zone", "z1", "--cluster", "c1"),
        "pool": ("pool", "add", name, "--zone", "z1", "--cluster", "c1",
                 "--path", str(tmp_path / "p2"), "--capacity", "10G"),
        "store": ("store", "add", name, "--zone", "z9",
                  "--path", str(tmp_path / "sec")),
        "template": ("template", "register", name, "--url", f"file://{image}",
                     "--format", "qcow2", "--zone", "z1"),
        "vm": ("vm", "deploy", name, "--template", "tiny", "--zone", "z1",
               "--host", "kvm1"),
        "volume": ("volume", "create", name, "--zone", "z1", "--size", "1M",
                   "--pool", "p1"),
    }  # fmt: skip
    for kind, argv in steps.items():
        result = cli.run(*argv)
        if _refused_or_taken(result, kind):
            shown = result.json
            assert shown["name"] == name, f"{kind}: name changed: {shown['name']!r}"
            again = cli.run(kind if kind != "template" else "template", "show",
                            shown["id"])  # fmt: skip
            assert again.code == 0, again
            assert again.json["name"] == name
    accepted_volume = cli.run("volume", "show", name)
    if accepted_volume.code == 0:
        attach = cli.run("volume", "attach", accepted_volume.json["id"], "--vm", "vm0")
        assert attach.code == 0, attach

    # No shell ran, nothing was written outside the roots, pools hold ids only.
    assert not MARKER.exists(), "a name was run by a shell"
    assert not list(Path("/tmp").glob("storctl-pwned-*"))
    assert not (Path("/") / "abs").exists()
    new = _files(tmp_path) - before
    roots = ("p1/", "p2/", "sec/")
    outside = {
        f for f in new if not f.startswith(roots) and not f.startswith("ledger.db")
    }
    assert outside == set(), f"files outside the pool and store roots: {outside}"
    for pool in ("p1", "p2"):
        for f in _files(tmp_path / pool):
            assert UUID_NAME.fullmatch(f.removesuffix(".part")), f"{pool}/{f}"
    for f in _files(tmp_path / "sec"):
        assert all(SAFE_PART.fullmatch(part) for part in Path(f).parts), f
    assert list((tmp_path / "cwd").iterdir()) == []
