"""The `qemu-img` argv builders and output parsers, as tables (no process runs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from executors import qemu

P = Path("/pool/vol")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            qemu.create_argv(P, "qcow2", 1024),
            "qemu-img create -o preallocation=off -f qcow2 /pool/vol 1024",
        ),
        (
            qemu.create_argv("/p/v", "raw", 10, preallocation="full"),
            "qemu-img create -o preallocation=full -f raw /p/v 10",
        ),
        (
            qemu.create_argv(
                P, "qcow2", 2048, backing="/pool/base", backing_fmt="qcow2"
            ),
            "qemu-img create -o preallocation=off -f qcow2 -F qcow2 -b /pool/base "
            "/pool/vol 2048",
        ),
        (
            qemu.create_argv(P, "qcow2", backing="/pool/base", backing_fmt="raw"),
            "qemu-img create -o preallocation=off -f qcow2 -F raw -b /pool/base "
            "/pool/vol",
        ),
        (
            qemu.convert_argv("/a", "/b", "raw", "qcow2"),
            "qemu-img convert -p -f raw -O qcow2 /a /b",
        ),
        (
            qemu.convert_argv("/a", "/b", "qcow2", "qcow2", progress=False),
            "qemu-img convert -f qcow2 -O qcow2 /a /b",
        ),
        (
            qemu.info_argv(P, "qcow2"),
            "qemu-img info --output=json -f qcow2 -U /pool/vol",
        ),
        (
            qemu.check_argv(P, "qcow2"),
            "qemu-img check --output=json -f qcow2 /pool/vol",
        ),
        (
            qemu.check_argv(P, "qcow2", repair="leaks"),
            "qemu-img check --output=json -f qcow2 -r leaks /pool/vol",
        ),
        (qemu.resize_argv(P, "qcow2", 4096), "qemu-img resize -f qcow2 /pool/vol 4096"),
        (
            qemu.resize_argv(P, "raw", 512, shrink=True),
            "qemu-img resize -f raw --shrink /pool/vol 512",
        ),
        (
            qemu.snapshot_create_argv(P, "qcow2", "s1"),
            "qemu-img snapshot -f qcow2 -c s1 /pool/vol",
        ),
        (
            qemu.snapshot_apply_argv(P, "qcow2", "s1"),
            "qemu-img snapshot -f qcow2 -a s1 /pool/vol",
        ),
        (
            qemu.snapshot_delete_argv(P, "qcow2", "s1"),
            "qemu-img snapshot -f qcow2 -d s1 /pool/vol",
        ),
        (
            qemu.snapshot_list_argv(P, "qcow2"),
            "qemu-img snapshot -f qcow2 -U -l /pool/vol",
        ),
        (
            qemu.rebase_argv(P, "qcow2", "/pool/b", "qcow2"),
            "qemu-img rebase -f qcow2 -F qcow2 -b /pool/b /pool/vol",
        ),
        (
            qemu.rebase_argv(P, "qcow2", "/pool/b", "qcow2", unsafe=True),
            "qemu-img rebase -f qcow2 -u -F qcow2 -b /pool/b /pool/vol",
        ),
    ],
)
def test_builder_makes_the_expected_argv(argv, expected):
    assert argv == expected.split(" ")
    assert "-f" in argv  # Cinder's rule: the format is never probed


def test_rebase_onto_nothing_passes_an_empty_backing_argument():
    assert qemu.rebase_argv(P, "qcow2", None) == [
        "qemu-img", "rebase", "-f", "qcow2", "-b", "", "/pool/vol",
    ]  # fmt: skip


def test_a_path_with_spaces_stays_one_argument():
    argv = qemu.info_argv("/pool/a b; rm -rf /", "raw")
    assert argv[-1] == "/pool/a b; rm -rf /"


@pytest.mark.parametrize(
    "build",
    [
        lambda: qemu.create_argv(P, "qcow2"),  # neither size nor backing
        lambda: qemu.create_argv(P, "qcow2", 1, backing="/b"),  # backing without -F
        lambda: qemu.create_argv(P, "qcow2", 1, preallocation="sparse"),
        lambda: qemu.create_argv(P, "qcow2", -1),
        lambda: qemu.create_argv(P, "qcow2", True),
        lambda: qemu.create_argv(P, "QCOW2", 1),  # CloudStack's name, not qemu's
        lambda: qemu.info_argv("-U", "qcow2"),  # would be read as an option
        lambda: qemu.info_argv("nbd:evil:10809", "raw"),  # a protocol, not a file
        lambda: qemu.info_argv("json:{}", "raw"),
        lambda: qemu.info_argv("", "raw"),
        lambda: qemu.convert_argv("/a", "/b", "qcow2", "-o"),
        lambda: qemu.check_argv(P, "qcow2", repair="everything"),
        lambda: qemu.snapshot_create_argv(P, "qcow2", ""),
        lambda: qemu.rebase_argv(P, "qcow2", "/b"),
    ],
)
def test_builder_refuses_what_would_change_the_meaning(build):
    with pytest.raises(ValueError):  # noqa: PT011 - several messages, one contract
        build()


@pytest.mark.parametrize(
    ("cloudstack", "driver"),
    [("QCOW2", "qcow2"), ("qcow2", "qcow2"), ("RAW", "raw"), ("VHD", "vpc")],
)
def test_qemu_format_maps_cloudstack_names(cloudstack, driver):
    assert qemu.qemu_format(cloudstack) == driver


def test_qemu_format_refuses_an_unknown_format():
    with pytest.raises(ValueError, match="ISO"):
        qemu.qemu_format("ISO")


PLAIN = {
    "virtual-size": 10485760,
    "filename": "b.qcow2",
    "cluster-size": 65536,
    "format": "qcow2",
    "actual-size": 200704,
    "dirty-flag": False,
}
CLONE = {
    **PLAIN,
    "virtual-size": 20971520,
    "backing-filename-format": "qcow2",
    "full-backing-filename": "/tmp/qt/a.qcow2",
    "backing-filename": "/tmp/qt/a.qcow2",
}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (PLAIN, qemu.ImageInfo("qcow2", 10485760, 200704, None, None)),
        (CLONE, qemu.ImageInfo("qcow2", 20971520, 200704, "/tmp/qt/a.qcow2", "qcow2")),
        (
            {"format": "raw", "virtual-size": 5},
            qemu.ImageInfo("raw", 5, None, None, None),
        ),
        (
            {
                **PLAIN,
                "format-specific": {
                    "type": "qcow2",
                    "data": {"compat": "1.1", "data-file": "/dev/sda"},
                },
            },
            qemu.ImageInfo("qcow2", 10485760, 200704, None, None, "/dev/sda"),
        ),
    ],
)
def test_parse_info_reads_qemu_img_json(data, expected):
    assert qemu.parse_info(json.dumps(data, indent=4)) == expected


@pytest.mark.parametrize(
    "text",
    [
        "qemu-img: Could not open '/x': No such file",
        "[]",
        '{"format": "qcow2"}',
        '{"format": "qcow2", "virtual-size": "big"}',
    ],
)
def test_parse_info_refuses_anything_else(text):
    with pytest.raises(ValueError, match="qemu-img info"):
        qemu.parse_info(text)


@pytest.mark.parametrize(
    ("chunk", "fraction"),
    [
        ("    (45.50/100%)", 0.455),
        ("    (0.00/100%)\r", 0.0),
        ("    (0.00/100%)\r    (1.00/100%)\r    (100.00/100%)\r\n", 1.0),
        ("(7/100%)", 0.07),
        ("", None),
        ("Formatting 'x', fmt=qcow2", None),
        ("(45.50/200%)", None),
    ],
)
def test_parse_progress_reads_convert_p_output(chunk, fraction):
    result = qemu.parse_progress(chunk)
    if fraction is None:
        assert result is None
    else:
        assert result == pytest.approx(fraction)
