"""The iscsi provider's pure parts: tgtadm and qemu-img argv tables, the reader of
tgtd's `--op show`, the location and its profile, the names of a volume's LUN."""

from __future__ import annotations

from pathlib import Path

import pytest

from executors.providers.iscsi import images, layout, location, tgtadm
from ledger.errors import InvalidInput

POOL = "0b6a7f64-1e4f-4a55-9d8e-3c2b1a0f9e8d"
VOL = "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"
T = ["tgtadm", "-C", "17", "--lld", "iscsi"]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (tgtadm.system_argv(17), [*T, "--op", "show", "--mode", "system"]),
        (tgtadm.show_argv(17), [*T, "--op", "show", "--mode", "target"]),
        (tgtadm.new_target_argv(17, 12345, "iqn.x:y"),
         [*T, "--op", "new", "--mode", "target", "--tid", "12345", "-T", "iqn.x:y"]),
        (tgtadm.delete_target_argv(17, 9),
         [*T, "--op", "delete", "--mode", "target", "--tid", "9", "--force"]),
        (tgtadm.new_lun_argv(17, 9, "/l/a.lun"),
         [*T, "--op", "new", "--mode", "logicalunit", "--tid", "9", "--lun", "1",
          "-b", "/l/a.lun", "--bstype", "rdwr"]),
        (tgtadm.new_lun_argv(17, 9, "/l/a.lun", direct=True),
         [*T, "--op", "new", "--mode", "logicalunit", "--tid", "9", "--lun", "1",
          "-b", "/l/a.lun", "--bstype", "rdwr", "--bsoflags", "direct"]),
        (tgtadm.thin_argv(17, 9),
         [*T, "--op", "update", "--mode", "logicalunit", "--tid", "9", "--lun", "1",
          "--params", "thin_provisioning=1"]),
        (tgtadm.delete_lun_argv(17, 9),
         [*T, "--op", "delete", "--mode", "logicalunit", "--tid", "9", "--lun", "1"]),
        (tgtadm.bind_all_argv(17, 9),
         [*T, "--op", "bind", "--mode", "target", "--tid", "9", "-I", "ALL"]),
        (tgtadm.account_argv(17, "u", "pw"),
         [*T, "--op", "new", "--mode", "account", "--user", "u", "--password", "pw"]),
        (tgtadm.bind_account_argv(17, 9, "u"),
         [*T, "--op", "bind", "--mode", "account", "--tid", "9", "--user", "u"]),
        (tgtadm.delete_account_argv(17, "u"),
         [*T, "--op", "delete", "--mode", "account", "--user", "u"]),
        (tgtadm.target_param_argv(17, 9, "MaxRecvDataSegmentLength", "262144"),
         [*T, "--op", "update", "--mode", "target", "--tid", "9",
          "--name", "MaxRecvDataSegmentLength", "--value", "262144"]),
    ],
)  # fmt: skip
def test_tgtadm_argv(argv, expected):
    assert argv == expected


@pytest.mark.parametrize(
    "build",
    [
        lambda: tgtadm.new_target_argv(17, 0, "iqn.x"),
        lambda: tgtadm.new_target_argv(17, True, "iqn.x"),
        lambda: tgtadm.new_target_argv(17, 5, "--op"),
        lambda: tgtadm.new_lun_argv(17, 5, "/a\nb"),
        lambda: tgtadm.account_argv(17, "u", ""),
        lambda: tgtadm.system_argv(-1),
    ],
)
def test_tgtadm_argv_refuses_what_would_be_an_option_or_nothing(build):
    with pytest.raises(ValueError, match=r"invalid|unsafe"):
        build()


#: `tgtadm --op show --mode target` of tgtd 1.0.85: a target with a LUN, a CHAP
#: account and an initiator logged in, and a bare one
SHOW = Path(__file__).parents[2] / "data" / "tgtd_show_target.txt"


def test_the_show_output_of_tgtd_is_read():
    targets = tgtadm.parse_targets(SHOW.read_text())
    assert set(targets) == {
        "iqn.2024-01.org.storctl:parse",
        "iqn.2024-01.org.storctl:bare",
    }
    full = targets["iqn.2024-01.org.storctl:parse"]
    assert (full.tid, full.luns, full.accounts, full.acls, full.sessions) == (
        905,
        {0: "None", 1: "/tmp/iscsi-exp/l1.img"},
        ("parseuser",),
        ("ALL",),
        1,
    )
    bare = targets["iqn.2024-01.org.storctl:bare"]
    assert (bare.tid, bare.luns, bare.accounts, bare.acls, bare.sessions) == (
        906,
        {0: "None"},
        (),
        (),
        0,
    )
    assert tgtadm.parse_targets("") == {}


def test_a_tgtadm_failure_names_its_op_and_mode_never_its_password():
    argv = tgtadm.account_argv(17, "storctl-u", "s3cretpassw0rd")
    line = tgtadm.failure_line(argv, 22, "tgtadm: this account already exists\n", "")
    assert line == "tgtadm --op new --mode account failed: this account already exists"
    assert "s3cret" not in tgtadm.failure_line(argv, 1, "", "")


SPEC = images.LunSpec("127.0.0.1:3260", "iqn.x:p.v", "storctl-v", Path("/l/p/v.chap"))
LUN_OPTS = (
    "driver=raw,file.driver=iscsi,file.transport=tcp,file.portal=127.0.0.1:3260,"
    "file.target=iqn.x:p.v,file.lun=1,file.user=storctl-v,file.password-secret=chap"
)


def test_qemu_img_reaches_a_lun_with_the_secret_in_a_file():
    assert SPEC.opts() == LUN_OPTS
    assert images.fill_argv(Path("/s/t.qcow2"), "qcow2", SPEC) == [
        "qemu-img", "convert", "-p", "-n", "--target-is-zero", "-W", "-m", "16",
        "-t", "writeback", "-f", "qcow2", "/s/t.qcow2",
        "--object", "secret,id=chap,file=/l/p/v.chap",
        "--target-image-opts", LUN_OPTS,
    ]  # fmt: skip
    assert images.drain_argv(SPEC, Path("/fs/.v.part")) == [
        "qemu-img", "convert", "-p", "-W", "-m", "16",
        "--object", "secret,id=chap,file=/l/p/v.chap",
        "--image-opts", LUN_OPTS, "-O", "qcow2", "/fs/.v.part",
    ]  # fmt: skip
    assert images.info_argv(SPEC) == [
        "qemu-img", "info", "--output=json",
        "--object", "secret,id=chap,file=/l/p/v.chap", "--image-opts", LUN_OPTS,
    ]  # fmt: skip
    other = images.LunSpec("127.0.0.1:3260", "iqn.x:q.v", "u2", Path("/l/q/v.chap"))
    argv = images.lun_to_lun_argv(SPEC, other)
    assert "secret,id=src,file=/l/p/v.chap" in argv
    assert "secret,id=chap,file=/l/q/v.chap" in argv
    assert argv[argv.index("--image-opts") + 1].endswith("password-secret=src")
    with pytest.raises(ValueError, match="onto itself"):
        images.lun_to_lun_argv(SPEC, SPEC)


RBD = "rbd:storctl/v:conf=/etc/ceph.conf:id=admin:keyring=/k"


def test_a_lun_is_filled_from_and_drained_into_rbd_in_one_convert():
    """Between the two block backends, qemu-img reads one and writes the other:
    the rbd filename names files (conf, keyring), never a key."""
    assert images.fill_from_argv(RBD, "raw", SPEC) == [
        "qemu-img", "convert", "-p", "-n", "--target-is-zero", "-W", "-m", "16",
        "-t", "writeback", "-f", "raw", RBD,
        "--object", "secret,id=chap,file=/l/p/v.chap",
        "--target-image-opts", LUN_OPTS,
    ]  # fmt: skip
    assert images.drain_to_argv(SPEC, RBD, "raw") == [
        "qemu-img", "convert", "-p", "-W", "-m", "16",
        "--object", "secret,id=chap,file=/l/p/v.chap",
        "--image-opts", LUN_OPTS, "-O", "raw", RBD,
    ]  # fmt: skip


@pytest.mark.parametrize(
    "name", ["relative.raw", "-O", "nbd://h/x", "iscsi://u%p@h/iqn/1", "/a\x00b", ""]
)
def test_a_source_or_destination_is_a_path_or_an_rbd_filename_only(name):
    with pytest.raises(ValueError, match="unsafe image name"):
        images.fill_from_argv(name, "raw", SPEC)
    with pytest.raises(ValueError, match="unsafe image name"):
        images.drain_to_argv(SPEC, name, "raw")


def test_qemu_options_double_a_comma_and_refuse_a_control_character():
    odd = images.LunSpec("h:1", "iqn.x", "u", Path("/a,b/v.chap"))
    assert odd.secret() == ["--object", "secret,id=chap,file=/a,,b/v.chap"]
    assert "file.filename=/x,,y.qcow2" in images.file_opts(Path("/x,y.qcow2"), "qcow2")
    with pytest.raises(ValueError, match="unsafe"):
        images.LunSpec("h:1", "iqn\n", "u", Path("/v.chap")).opts()
    with pytest.raises(ValueError, match="format"):
        images.fill_argv(Path("/s/t.vmdk"), "vmdk", SPEC)


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("iscsi://127.0.0.1:3260", "iscsi://127.0.0.1:3260"),
        ("iscsi://127.0.0.1:3260/", "iscsi://127.0.0.1:3260"),
        ("iscsi://127.0.0.1", "iscsi://127.0.0.1:3260"),
        ("ISCSI://Target.Example:3261", "iscsi://target.example:3261"),
        ("iscsi://[::1]:3260", "iscsi://[::1]:3260"),
    ],
)
def test_a_good_location_is_the_portal_in_canonical_form(given, canonical):
    assert location.validate(given) == canonical


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("iscsi://127.0.0.1:3260/iqn.x/1", "no path"),
        ("iscsi://127.0.0.1:3260?lun=1", "query string"),
        ("iscsi://127.0.0.1:3260#x", "query string"),
        ("iscsi://user@127.0.0.1:3260", "no user or password"),
        ("iscsi://user%pass@127.0.0.1:3260", "no user or password"),
        ("iscsi://:3260", "no host"),
        ("iscsi://127.0.0.1:99999", "port"),
        ("iscsi://127.0.0.1:x", "port"),
        ("iscsi://127.0.0.1:3260\n/etc", "control character"),
        ("nfs://127.0.0.1", "not an iscsi"),
        ("", "empty"),
    ],
)
def test_a_bad_location_is_refused_in_one_line(given, says):
    with pytest.raises(InvalidInput, match=says) as caught:
        location.validate(given)
    assert "\n" not in str(caught.value)


def test_the_profile_is_read_and_refused_naming_the_key_only(tmp_path):
    profile = location.parse_profile(
        {"control_port": "17", "portal": "127.0.0.1:3260", "lun_dir": str(tmp_path)}
    )
    assert profile == location.Profile(17, "127.0.0.1:3260", tmp_path)
    assert (
        location.parse_profile(
            {"control_port": 17, "portal": "h", "lun_dir": "/l"}
        ).portal
        == "h:3260"
    )
    for broken, says in (
        ({"portal": "h", "lun_dir": "/l"}, "control_port"),
        ({"control_port": 17, "lun_dir": "/l"}, "portal"),
        ({"control_port": 17, "portal": "h", "lun_dir": "rel"}, "lun_dir"),
    ):
        with pytest.raises(InvalidInput, match=says):
            location.parse_profile(broken, "lab-iscsi")


def test_a_check_refuses_a_profile_for_another_portal(tmp_path):
    creds = {"control_port": 17, "portal": "10.0.0.1:3260", "lun_dir": str(tmp_path)}
    with pytest.raises(InvalidInput, match=r"another portal, 10\.0\.0\.1:3260"):
        location.check("iscsi://127.0.0.1:3260", creds)


def test_a_volume_s_names_derive_from_the_two_uuids(tmp_path):
    lun = layout.Lun.of(POOL.upper(), VOL, tmp_path)
    assert lun.pool == POOL
    assert lun.iqn == f"iqn.2010-01.org.apache.cloudstack.storctl:{POOL}.{VOL}"
    assert lun.user == f"storctl-{VOL}-{POOL[:8]}"
    assert lun.file == tmp_path / POOL / f"{VOL}.lun"
    assert lun.part == tmp_path / POOL / f".{VOL}.lun.part"
    assert lun.secret_file == tmp_path / POOL / f"{VOL}.chap"
    assert layout.TID_FLOOR <= lun.first_tid < 2**31
    assert lun.first_tid == layout.Lun.of(POOL, VOL, Path("/elsewhere")).first_tid
    for hostile in ("../x", f"{VOL}/../../etc", "", "1"):
        with pytest.raises(InvalidInput, match="not a uuid"):
            layout.Lun.of(POOL, hostile, tmp_path)


def test_the_chap_secret_is_made_once_0600_and_never_shown(tmp_path):
    lun = layout.Lun.of(POOL, VOL, tmp_path)
    with pytest.raises(FileNotFoundError):
        lun.password(create=False)
    password = lun.password(create=True)
    assert len(password) == 24
    assert password.isalnum()
    assert lun.password(create=True) == password
    assert lun.secret_file.stat().st_mode & 0o777 == 0o600
    assert lun.root.stat().st_mode & 0o777 == 0o700
    lun.secret_file.write_text(password + "\n")
    with pytest.raises(InvalidInput, match="damaged") as caught:
        lun.password(create=False)
    assert password not in str(caught.value)


def test_a_lun_file_is_opened_direct_only_where_its_file_system_takes_it(tmp_path):
    from executors.providers.iscsi.targets import takes_direct

    lun = tmp_path / "a.lun"
    assert not takes_direct(str(lun))  # no file: no flag, tgtd would refuse anyway
    lun.write_bytes(b"\0" * 4096)
    assert takes_direct(str(lun))  # ext4 under the tests' tmp_path takes O_DIRECT
    link = tmp_path / "b.lun"
    link.symlink_to(lun)
    assert not takes_direct(str(link))  # never through a link
