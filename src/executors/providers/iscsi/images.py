"""Pure `qemu-img` argv builders for LUNs reached over iSCSI (qemu's libiscsi driver).

A LUN is named by qemu's option syntax (`--image-opts`), not by an `iscsi://` URL,
because a URL would carry the CHAP password (`iscsi://user%password@...`) in the
argv, where `ps` and any error quoting the argv would show it. Instead the password
stays in the volume's 0600 secret file, which qemu reads itself:

    qemu-img convert -p -n --target-is-zero -W -m 16 -t writeback -f qcow2 SRC
        --object secret,id=chap,file=<volume>.chap
        --target-image-opts driver=raw,file.driver=iscsi,file.portal=HOST:PORT,
            file.target=IQN,file.lun=1,file.user=USER,file.password-secret=chap

Formats are always given (`driver=raw`, `-f`), never probed. `--target-is-zero`
holds because a LUN is filled only right after its sparse file was made, so the
holes of the source are never written as zeros; `-t writeback` makes the copy end
with a SCSI SYNCHRONIZE CACHE, which tgtd turns into an fdatasync of the LUN file:
a filled LUN is on disk when its answer says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from executors import qemu

SECRET_ID = "chap"  # noqa: S105 - the id of qemu's secret object, not a secret
#: qemu-img convert's parallel requests and its out-of-order writes: a network
#: target is latency-bound with one request in flight (measured: 2x)
_COROUTINES = "16"


@dataclass(frozen=True)
class LunSpec:
    """How qemu reaches one LUN: the portal, the target, the CHAP user and the
    file holding the password."""

    portal: str
    iqn: str
    user: str
    secret_file: Path

    def opts(self) -> str:
        """`--image-opts` of the LUN as a raw image (no secret in it)."""
        return ",".join(
            [
                "driver=raw",
                "file.driver=iscsi",
                "file.transport=tcp",
                f"file.portal={_value(self.portal)}",
                f"file.target={_value(self.iqn)}",
                "file.lun=1",
                f"file.user={_value(self.user)}",
                f"file.password-secret={SECRET_ID}",
            ]
        )

    def secret(self) -> list[str]:
        """`--object secret,...`: qemu reads the password from the file."""
        return [
            "--object",
            f"secret,id={SECRET_ID},file={_value(str(self.secret_file))}",
        ]


def file_opts(path: Path, fmt: str) -> str:
    """`--image-opts` of a local image of format `fmt` (a qcow2's backing chain is
    opened by qemu from its header, as with a plain file name)."""
    return f"driver={_driver(fmt)},file.driver=file,file.filename={_value(str(path))}"


#: `qemu-img convert` into a LUN just made: in place (`-n`), its holes left as
#: they are (`--target-is-zero`: a new sparse file reads zeros), out of order with
#: parallel requests, ending with a SYNCHRONIZE CACHE (`-t writeback`)
_INTO_NEW_LUN = (
    qemu.QEMU_IMG, "convert", "-p", "-n", "--target-is-zero", "-W", "-m",
    _COROUTINES, "-t", "writeback",
)  # fmt: skip


def fill_argv(source: Path, src_fmt: str, lun: LunSpec) -> list[str]:
    """A local image written whole into a LUN just made (sparse, so all zeros)."""
    return fill_from_argv(_path(source), src_fmt, lun)


def fill_from_argv(source: str, src_fmt: str, lun: LunSpec) -> list[str]:
    """`source`, a local path or another backend's qemu filename (`rbd:POOL/IMAGE
    :conf=..`, which names files, never a key), written whole into a LUN just
    made: one convert from backend to backend, no copy on the host between."""
    return [
        *_INTO_NEW_LUN,
        "-f",
        _driver(src_fmt),
        _endpoint(source),
        *lun.secret(),
        "--target-image-opts",
        lun.opts(),
    ]


def lun_to_lun_argv(source: LunSpec, dest: LunSpec) -> list[str]:
    """One LUN's data written into another LUN just made."""
    if source.secret_file == dest.secret_file:
        raise ValueError("a LUN cannot be copied onto itself")
    return [
        *_INTO_NEW_LUN,
        "--object",
        f"secret,id=src,file={_value(str(source.secret_file))}",
        *dest.secret(),
        "--image-opts",
        source.opts().replace(f"password-secret={SECRET_ID}", "password-secret=src"),
        "--target-image-opts",
        dest.opts(),
    ]


def drain_argv(lun: LunSpec, dest: Path, fmt: str = "qcow2") -> list[str]:
    """A LUN's data as a new standalone file (a migration off the pool, a
    snapshot's backup on an image store)."""
    return drain_to_argv(lun, _path(dest), fmt)


def drain_to_argv(lun: LunSpec, dest: str, fmt: str) -> list[str]:
    """A LUN's data written whole into `dest`, a local path or another backend's
    qemu filename (`rbd:...`, created by qemu-img as a raw image)."""
    return [
        qemu.QEMU_IMG,
        "convert",
        "-p",
        "-W",
        "-m",
        _COROUTINES,
        *lun.secret(),
        "--image-opts",
        lun.opts(),
        "-O",
        _driver(fmt),
        _endpoint(dest),
    ]


def info_argv(lun: LunSpec) -> list[str]:
    """`qemu-img info` of the LUN: a login with CHAP, so the target answers."""
    return [
        qemu.QEMU_IMG,
        "info",
        "--output=json",
        *lun.secret(),
        "--image-opts",
        lun.opts(),
    ]


def _driver(fmt: str) -> str:
    """A qemu driver name of what a pool holds (`image_format` gives it)."""
    if fmt not in ("qcow2", "raw"):
        raise ValueError(f"unknown qemu image format {fmt!r}")
    return fmt


def _value(text: str) -> str:
    """A value in qemu's option syntax: a comma is written twice; no control
    character may pass."""
    if not text or any(not c.isprintable() for c in text):
        raise ValueError(f"unsafe option value {text!r}")
    return text.replace(",", ",,")


def _path(path: Path) -> str:
    text = str(path)
    if not text.startswith("/"):
        raise ValueError(f"not an absolute image path {text!r}")
    return text


def _endpoint(name: str) -> str:
    """An absolute path or an rbd filename: nothing qemu-img would read as an
    option or another protocol."""
    if "\x00" in name or not (name.startswith("/") or name.startswith("rbd:")):
        raise ValueError(f"unsafe image name {name[:80]!r}")
    return name
