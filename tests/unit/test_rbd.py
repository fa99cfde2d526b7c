"""The rbd provider's pure parts: its URL, the argv it builds for `rbd`, `ceph` and
qemu-img's rbd driver, Ceph's stderr turned into one line, and the keyring made
from a key, which lives only while a command runs. Nothing here reaches a
cluster (the data path against the lab is `tests/integration/test_rbd*.py`)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from executors.providers.rbd.cluster import (
    Cluster,
    cluster_for,
    convert_argv,
    failure_line,
    redact,
)
from executors.providers.rbd.location import RbdLocation, image_name, parse, validate
from executors.providers.rbd.provider import check
from executors.runner import Completed, RecordedRunner
from ledger.errors import InvalidInput

KEY = "AQBgkjVnQ2xPJRAAl6JvYp0bO9S0v3mAqYk8Qw=="
CONF = "/etc/lab/ceph.conf"
KEYRING = "/etc/lab/ceph.client.admin.keyring"


@pytest.mark.parametrize(
    ("url", "canonical", "mon_host"),
    [
        ("rbd://admin@127.0.0.1:3300/storctl", None, "127.0.0.1:3300"),
        ("rbd://admin@127.0.0.1:3300/storctl/", "rbd://admin@127.0.0.1:3300/storctl",
         "127.0.0.1:3300"),
        ("RBD://admin@Mon-1.Example.org/rbd", "rbd://admin@mon-1.example.org/rbd",
         "mon-1.example.org"),
        ("rbd://cloudstack@[::1]:6789/vms", None, "[::1]:6789"),
    ],
)  # fmt: skip
def test_a_good_url_is_kept_in_its_canonical_form(url, canonical, mon_host):
    assert validate(url) == (canonical or url)
    assert parse(url).mon_host == mon_host


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("rbd://admin:hunter2@127.0.0.1/storctl", "no password in the URL"),
        ("rbd://admin@127.0.0.1/storctl?key=AQB", "query string"),
        ("rbd://admin@127.0.0.1/storctl#x", "query string"),
        ("rbd://127.0.0.1/storctl", "names no Ceph user"),
        ("rbd://-x@127.0.0.1/storctl", "names no Ceph user"),
        ("rbd://admin@/storctl", "names no monitor host"),
        ("rbd://admin@127.0.0.1:0/storctl", "bad monitor port"),
        ("rbd://admin@127.0.0.1:x/storctl", "bad monitor port"),
        ("rbd://admin@[nope]/storctl", "bad IPv6"),
        ("rbd://admin@127.0.0.1", "names no pool"),
        ("rbd://admin@127.0.0.1/a/b", "not one Ceph pool name"),
        ("rbd://admin@127.0.0.1/-rf", "not one Ceph pool name"),
        ("rbd://admin@127.0.0.1/storctl\n", "control character"),
    ],
)
def test_a_bad_url_is_refused_naming_the_right_form(url, says):
    with pytest.raises(InvalidInput, match=says) as refused:
        validate(url)
    message = str(refused.value)
    assert "\n" not in message
    assert "hunter2" not in message
    if "control" not in says:
        assert "rbd://USER@MON_HOST[:PORT]/POOL" in message


@pytest.mark.parametrize("name", ["", "a/b", "a@b", "a:b", "-x", "a b", "x" * 251])
def test_an_image_name_from_a_command_is_plain(name):
    with pytest.raises(InvalidInput):
        image_name(name)


# ------------------------------------------------------------ argv


CLUSTER = Cluster(parse("rbd://admin@127.0.0.1:3300/storctl"), KEYRING, CONF, 7)


def test_rbd_and_ceph_argv_name_the_urls_monitor_and_no_secret():
    assert CLUSTER.rbd("info", "--format", "json", CLUSTER.spec("v1")) == [
        "rbd", "-c", CONF, "--id", "admin", "--keyring", KEYRING,
        "-m", "127.0.0.1:3300", "--client_mount_timeout=7",
        "--rados_osd_op_timeout=60", "info", "--format", "json", "storctl/v1",
    ]  # fmt: skip
    assert CLUSTER.ceph("df", "--format", "json") == [
        "ceph", "-c", CONF, "--id", "admin", "--keyring", KEYRING,
        "-m", "127.0.0.1:3300", "--connect-timeout", "7", "df", "--format", "json",
    ]  # fmt: skip
    assert CLUSTER.spec("v1", "s1") == "storctl/v1@s1"
    with pytest.raises(InvalidInput):
        CLUSTER.spec("../v1")


def test_qemus_rbd_filename_escapes_what_its_parser_splits_on():
    odd = Cluster(parse("rbd://admin@[::1]:3300/storctl"), "/k:ey\\ring", CONF, 5)
    assert odd.qemu("v1", "s1") == (
        "rbd:storctl/v1@s1:conf=/etc/lab/ceph.conf:id=admin:keyring=/k\\:ey\\\\ring"
        ":mon_host=[\\:\\:1]\\:3300:client_mount_timeout=5:rados_osd_op_timeout=60"
    )
    assert odd.shown("v1", "s1") == "rbd:storctl/v1@s1"


@pytest.mark.parametrize(
    ("args", "argv"),
    [
        (("/s/t.qcow2", "qcow2", "rbd:storctl/v", "raw"),
         ["qemu-img", "convert", "-p", "-f", "qcow2", "-O", "raw", "-W", "-m", "16",
          "/s/t.qcow2", "rbd:storctl/v"]),
        (("rbd:storctl/v@s", "raw", "/s/b.qcow2", "qcow2"),
         ["qemu-img", "convert", "-p", "-f", "raw", "-O", "qcow2",
          "rbd:storctl/v@s", "/s/b.qcow2"]),
    ],
)  # fmt: skip
def test_convert_writes_out_of_order_only_into_rbd(args, argv):
    assert convert_argv(*args) == argv
    assert convert_argv(*args, existing=True)[-3] == "-n"


@pytest.mark.parametrize(
    ("source", "fmt"),
    [("relative.qcow2", "qcow2"), ("-x", "qcow2"), ("json:{}", "qcow2"),
     ("nbd:host:1", "raw"), ("/ok", "vmdk")],
)  # fmt: skip
def test_convert_refuses_what_qemu_would_read_as_an_option_or_protocol(source, fmt):
    with pytest.raises(ValueError, match=r"unsafe|format"):
        convert_argv(source, fmt, "rbd:storctl/v", "raw")


# ------------------------------------------------------------ Ceph's words


@pytest.mark.parametrize(
    ("stderr", "line"),
    [
        ("2026-12-08T02:06:01.842+0000 7fa47b68d380  0 monclient(hunting): "
         "authenticate timed out after 3\n\nrbd: couldn't connect to the cluster!\n"
         "rbd: listing images failed: (110) Connection timed out\n",
         "couldn't connect to the cluster!; listing images failed: (110) Connection "
         "timed out"),
        ("Creating snap: 10% complete...Creating snap: 100% complete...done.\n"
         "rbd: clone error: (2) No such file or directory\n",
         "clone error: (2) No such file or directory"),
        ("2026-12-08T02:06:56.098+0000 7f5658a586c0 -1 librbd::SnapshotUnprotect"
         "Request: cannot unprotect: at least 1 child(ren)\n", "librbd::"
         "SnapshotUnprotectRequest: cannot unprotect: at least 1 child(ren)"),
        ("timed out\n", "timed out"),
        ("", "no message"),
    ],
)  # fmt: skip
def test_cephs_stderr_becomes_its_own_words_on_one_line(stderr, line):
    assert failure_line(stderr) == line


def test_qemus_long_rbd_filename_is_shown_short_and_keys_never():
    long = CLUSTER.qemu("v1")
    stderr = f"qemu-img: Could not open '{long}': error connecting: timed out\n"
    assert failure_line(stderr, shown={long: CLUSTER.shown("v1")}) == (
        "Could not open 'rbd:storctl/v1': error connecting: timed out"
    )
    assert KEY not in redact(f"[client.admin]\n\tkey = {KEY}\n")
    assert KEY not in redact(f"auth failed for {KEY}")
    assert KEY not in failure_line(f"rbd: bad key {KEY}\n")


# ------------------------------------------------------------ credentials


def test_a_key_lives_in_a_private_keyring_only_while_the_block_runs():
    where = parse("rbd://cloudstack@127.0.0.1/storctl")
    with cluster_for(where, {"key": KEY, "conf": CONF}, "lab") as cluster:
        keyring = Path(cluster.keyring)
        assert stat.S_IMODE(keyring.stat().st_mode) == 0o600
        assert stat.S_IMODE(keyring.parent.stat().st_mode) == 0o700
        assert keyring.read_text() == f"[client.cloudstack]\n\tkey = {KEY}\n"
        assert KEY not in " ".join(cluster.rbd("ls")) + cluster.qemu("v")
        assert cluster.conf == CONF
    assert not keyring.exists()
    assert not keyring.parent.exists()


@pytest.mark.parametrize(
    ("credentials", "says"),
    [
        ({}, "need keyring or key"),
        ({"key": "not a key\n[client.x]"}, "not a cephx key"),
        ({"keyring": KEYRING, "connect_timeout": "0"}, "connect_timeout"),
    ],
)
def test_credentials_without_a_usable_key_are_refused_without_quoting_it(
    credentials, says
):
    with (
        pytest.raises(InvalidInput, match=says) as refused,
        cluster_for(parse("rbd://a@h/p"), credentials, "lab"),
    ):
        pass
    assert "[client.x]" not in str(refused.value)


def test_the_check_refuses_in_cephs_words_and_never_shows_the_key():
    failing = RecordedRunner(
        lambda argv: Completed(
            1, "", "rbd: listing images failed: (13) Permission denied\n"
        )
    )
    url = "rbd://admin@127.0.0.1:3300/storctl"
    with pytest.raises(InvalidInput) as refused:
        check(url, {"key": KEY}, failing)
    message = str(refused.value)
    assert message.endswith(
        "Ceph refused: listing images failed: (13) Permission denied"
    )
    assert KEY not in message
    (argv,) = failing.calls
    assert argv[-4:] == ["ls", "--format", "json", "storctl"]
    assert "--client_mount_timeout=5" in argv
    assert not Path(argv[argv.index("--keyring") + 1]).exists()
    quiet = RecordedRunner(lambda argv: Completed(0, "[]", ""))
    check(url, {"keyring": KEYRING}, quiet)  # a reachable pool passes


def test_rbd_location_is_what_the_url_says():
    assert parse("rbd://u@h:1/p") == RbdLocation("u", "h", 1, "p")
