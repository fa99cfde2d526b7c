"""Bad input through the CLI: refused with exit 2, one line, nothing written.

One SQLite ledger is prepared per module (a simulator zone with a VM, an attached, a
detached and two same-named volumes; a KVM zone whose store is a real directory) and
copied for every example, so each invocation starts from the same state. For every
generated bad invocation: the exit code is 2 (3 where CLI.md says the operation runs
and fails: a `file://` URL under an allowed root that names nothing is only found
missing by the download), there is no traceback, the error is one line, and for
exit 2 the event count is what it was before.

Click's own usage errors (a `--format` outside its choices, an option without its
value) print `Usage:` and `Try ...` lines before their one `Error:` line; those two
boilerplate lines are not counted.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli.main import cli
from executors.lease import give_back_idle
from ledger.app import Ledger
from ledger.errors import InvalidInput
from ledger.store.database import parse_db
from ledger.values import MiB, is_id_prefix, parse_size
from tests.integration.conftest import Storctl, simulator_zone

TAKEN = {
    "z1", "z2", "c1", "c2", "sim1", "kvm2", "p1", "s1", "s2", "t1", "vm1",
    "ROOT-vm1", "att", "det", "dup",
}  # fmt: skip
REFUSED = frozenset({2})
RAN = frozenset({2, 3})


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    root = tmp_path_factory.mktemp("bad-input")
    (root / "s2").mkdir()
    db = root / "ledger.db"
    sim = simulator_zone(Storctl(str(db)))
    cli = sim.cli
    cli.ok("vm", "deploy", "vm1", "--template", "t1", "--zone", "z1")
    cli.ok("volume", "create", "att", "--zone", "z1", "--size", "1G")
    cli.ok("volume", "attach", "att", "--vm", "vm1")
    cli.ok("volume", "create", "det", "--zone", "z1", "--size", "1G", "--pool", "p1")
    cli.ok("volume", "create", "dup", "--zone", "z1", "--size", "1G")
    cli.ok("volume", "create", "dup", "--zone", "z1", "--size", "1G")
    cli.ok("host", "add", "kvm2", "--zone", "z2", "--cluster", "c2")
    cli.ok("store", "add", "s2", "--zone", "z2", "--path", str(root / "s2"))
    # file:// reads only under this (absent) directory: the URL policy's own cases
    cli.ok("config", "set", "template.url.allowed.roots", "/nonexistent")
    # no lingering lease may be given back (a write) while examples copy the file
    give_back_idle(parse_db(str(db)).url)
    yield db, _events(db)
    shutil.rmtree(root, ignore_errors=True)


def _events(db: Path) -> int:
    app = Ledger(env=parse_db(str(db)).env)
    try:
        return int(app.recorder.max_notification_id() or 0)
    finally:
        app.close()


# ------------------------------------------------------------------ strategies


def _invalid(minimum: int) -> st.SearchStrategy[str]:
    def bad(text: str) -> bool:
        try:
            parse_size(text, minimum=minimum)
        except InvalidInput:
            return True
        return False

    fixed = st.sampled_from(
        [
            "-1",
            "0",
            "1.5.3G",
            "10Q",
            "",
            "99999999999999999999999T",
            "1" + "0" * 400,
            "0.5",
            "10GG",
            "-10G",
            "1e3G",
            "0x10",
            " ",
            "G",
            "1023K" if minimum > 1 else "0K",
        ]
    )
    return st.one_of(fixed, st.text(max_size=12)).filter(bad)


def _free(taken: set[str] = TAKEN) -> st.SearchStrategy[str]:
    return st.one_of(
        st.uuids().map(str),
        st.text(min_size=1, max_size=40).filter(
            # a hex word may abbreviate an existing id, which then resolves
            lambda s: s not in taken and not s.startswith("-") and not is_id_prefix(s)
        ),
    )


Case = tuple[list[str], frozenset[int]]


def _sizes() -> st.SearchStrategy[Case]:
    return st.one_of(
        _invalid(MiB).map(
            lambda s: ["volume", "create", "nv", "--zone", "z1", "--size", s]
        ),
        _invalid(MiB)
        .filter(bool)
        .map(
            lambda s: [
                "vm",
                "deploy",
                "nvm",
                "--template",
                "t1",
                "--zone",
                "z1",
                "--root-size",
                s,
            ]
        ),
        _invalid(1).map(
            lambda s: [
                "pool",
                "add",
                "np",
                "--zone",
                "z1",
                "--cluster",
                "c1",
                "--path",
                "/sim/np",
                "--capacity",
                s,
                "--type",
                "simulator",
            ]
        ),
    ).map(lambda argv: (argv, REFUSED))


ON_A_REF = [
    ["volume", "show"], ["volume", "attach", "{}", "--vm", "vm1"],
    ["volume", "detach"], ["volume", "delete"], ["volume", "recover"],
    ["volume", "expunge"], ["why"], ["vm", "show"], ["vm", "start"], ["vm", "stop"],
    ["vm", "destroy"], ["pool", "show"], ["pool", "disable"], ["pool", "enable"],
    ["pool", "delete"], ["template", "show"], ["template", "delete"],
    ["host", "show"], ["host", "disable"], ["job", "show"], ["job", "wait"],
    ["volume", "attach", "att", "--vm", "{}"], ["history", "volume"],
]  # fmt: skip


def _with_ref(template: list[str], ref: str) -> list[str]:
    if "{}" in template:
        return [ref if part == "{}" else part for part in template]
    return [*template, ref]


def _unknown() -> st.SearchStrategy[Case]:
    return st.builds(
        lambda t, ref: (_with_ref(t, ref), REFUSED), st.sampled_from(ON_A_REF), _free()
    )


def _ambiguous() -> st.SearchStrategy[Case]:
    volume_cmds = [t for t in ON_A_REF if t[0] in ("volume", "why") and "{}" not in t]
    return st.sampled_from(volume_cmds).map(lambda t: ([*t, "dup"], REFUSED))


ILLEGAL = [
    ["volume", "expunge", "det"],
    ["volume", "attach", "att", "--vm", "vm1"],
    ["volume", "attach", "det", "--vm", "vm1", "--vm", "nope"],
    ["volume", "detach", "det"],
    ["volume", "recover", "det"],
    ["volume", "delete", "ROOT-vm1"],
    ["volume", "detach", "ROOT-vm1"],
    ["volume", "attach", "ROOT-vm1", "--vm", "vm1"],
    ["volume", "delete", "att"],
    ["pool", "delete", "p1"],
    ["vm", "start", "vm1"],
]


def _illegal() -> st.SearchStrategy[Case]:
    return st.sampled_from(ILLEGAL).map(lambda argv: (argv, REFUSED))


def _formats() -> st.SearchStrategy[Case]:
    fmt = st.one_of(
        st.sampled_from(["vhd", "vmdk", "VHDX", "ova", "", "qcow3", "iso"]),
        st.text(max_size=8),
    ).filter(lambda f: f.lower() not in ("qcow2", "raw"))
    return fmt.map(
        lambda f: (
            [
                "template",
                "register",
                "nt",
                "--url",
                "http://example.invalid/x",
                "--format",
                f,
                "--zone",
                "z1",
            ],
            REFUSED,
        )
    )


def _urls() -> st.SearchStrategy[Case]:
    bad = st.one_of(
        st.sampled_from(["ftp://x", "", "x", "gopher://a", "/etc/passwd", "ssh://h/x"]),
        st.text(max_size=20),
    ).filter(lambda u: not u.startswith(("file://", "http://", "https://")))
    # what the template URL policy refuses before anything connects or is written
    forbidden = st.sampled_from(
        [
            "file:///etc/passwd",
            "file:///nonexistent/../etc/passwd",
            "file://otherhost/nonexistent/x.qcow2",
            "http://127.0.0.1:5432/x.qcow2",
            "http://localhost/x.qcow2",
            "http://[::1]/x.qcow2",
            "http://169.254.169.254/latest/meta-data",
            "http://10.0.0.1/x.qcow2",
            "https://user:hunter2@example.org/x.qcow2",
        ]
    )
    bad = st.one_of(bad, forbidden)
    refused = bad.map(
        lambda u: (
            [
                "template",
                "register",
                "nt",
                "--url",
                u,
                "--format",
                "qcow2",
                "--zone",
                "z1",
            ],
            REFUSED,
        )
    )
    missing = st.sampled_from(["file:///nonexistent", "file:///nonexistent/x.qcow2"])
    ran = missing.map(
        lambda u: (
            [
                "template",
                "register",
                "nt",
                "--url",
                u,
                "--format",
                "qcow2",
                "--zone",
                "z2",
            ],
            RAN,
        )
    )
    return st.one_of(refused, ran)


def _places() -> st.SearchStrategy[Case]:
    zone = _free()
    return st.one_of(
        zone.map(lambda z: ["volume", "create", "nv", "--zone", z, "--size", "1G"]),
        zone.map(lambda z: ["vm", "deploy", "nvm", "--template", "t1", "--zone", z]),
        zone.map(
            lambda z: [
                "pool",
                "add",
                "np",
                "--zone",
                z,
                "--cluster",
                "c1",
                "--path",
                "/sim/np",
                "--capacity",
                "1G",
                "--type",
                "simulator",
            ]
        ),
        _free().map(
            lambda c: [
                "pool",
                "add",
                "np",
                "--zone",
                "z1",
                "--cluster",
                c,
                "--path",
                "/sim/np",
                "--capacity",
                "1G",
                "--type",
                "simulator",
            ]
        ),
        st.just(["host", "add", "nh", "--zone", "z1", "--cluster", ""]),
        zone.map(
            lambda z: [
                "template",
                "register",
                "nt",
                "--url",
                "http://example.invalid/x",
                "--format",
                "qcow2",
                "--zone",
                z,
            ]
        ),
    ).map(lambda argv: (argv, REFUSED))


def invocations() -> st.SearchStrategy[Case]:
    return st.one_of(
        _sizes(), _unknown(), _ambiguous(), _illegal(), _formats(), _urls(), _places()
    )


# ------------------------------------------------------------------ the property

_BOILERPLATE = ("Usage: ", "Try '")


def error_lines(stderr: str) -> list[str]:
    return [
        line
        for line in stderr.splitlines()
        if line.strip() and not line.startswith(_BOILERPLATE)
    ]


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(case=invocations())
def test_bad_input_is_refused_in_one_line(
    prepared: tuple[Path, int], case: Case
) -> None:
    argv, allowed = case
    source, events = prepared
    work = Path(tempfile.mkdtemp(dir=source.parent))
    try:
        db = work / "ledger.db"
        for suffix in ("", "-wal", "-shm"):
            if Path(f"{source}{suffix}").exists():
                shutil.copy(f"{source}{suffix}", f"{db}{suffix}")
        result = CliRunner(env={"STORCTL_DB": None}).invoke(
            cli, ["--db", str(db), "-o", "json", *argv]
        )
        shown = f"storctl {argv!r}: exit {result.exit_code}\n{result.stderr}"
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            shown
        )
        assert "Traceback" not in result.stderr, shown
        assert result.exit_code in allowed, shown
        lines = error_lines(result.stderr)
        assert len(lines) == 1, shown
        assert lines[0].startswith(("storctl: ", "Error: ")), shown
        if result.exit_code == 2:
            assert _events(db) == events, shown
    finally:
        shutil.rmtree(work, ignore_errors=True)
