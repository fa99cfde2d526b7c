"""Pure `qemu-img` argv builders and output parsers: CloudStack's `QemuImg` class.

Nothing here runs a process, so every command line is table-testable. Two rules come
from Cinder's `qemu-img` lessons: the image format is always given with `-f` (never
probed, so a raw guest disk can't pose as a qcow2 with a backing file on the host),
and commands are argv lists, never shell strings.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

QEMU_IMG = "qemu-img"
PathLike = Path | str

# CloudStack's `Storage.ImageFormat` names -> qemu's driver names.
_FORMATS = {
    "QCOW2": "qcow2",
    "RAW": "raw",
    "VHD": "vpc",
    "VHDX": "vhdx",
    "VMDK": "vmdk",
}
_DRIVERS = frozenset(_FORMATS.values())
# `getPreallocationType`: THIN -> off, SPARSE -> metadata, FAT -> full.
_PREALLOCATION = frozenset({"off", "metadata", "falloc", "full"})
_PROGRESS = re.compile(r"\(\s*(\d+(?:\.\d+)?)/100%\)")


@dataclass(frozen=True)
class ImageInfo:
    """What `qemu-img info` says about one image (CloudStack's `QemuImgFile` facts)."""

    format: str
    virtual_size: int
    actual_size: int | None
    backing_file: str | None
    backing_format: str | None
    # A qcow2 `data_file` keeps the guest's data in another file, named by path: like
    # a backing file, a reference out of the image that a byte copy would carry along.
    data_file: str | None = None


def qemu_format(image_format: str) -> str:
    """The qemu driver for a CloudStack image format (`QCOW2` -> `qcow2`)."""
    driver = _FORMATS.get(image_format.upper())
    if driver is None:
        raise ValueError(f"unsupported image format {image_format!r}")
    return driver


def create_argv(
    path: PathLike,
    fmt: str,
    size: int | None = None,
    backing: PathLike | None = None,
    backing_fmt: str | None = None,
    preallocation: str = "off",
) -> list[str]:
    """`QemuImg.create`: an empty image, or a linked clone over `backing`."""
    if preallocation not in _PREALLOCATION:
        raise ValueError(f"unknown preallocation {preallocation!r}")
    argv = [QEMU_IMG, "create", "-o", f"preallocation={preallocation}", "-f", _fmt(fmt)]
    if backing is not None:
        if backing_fmt is None:
            raise ValueError("a backing file needs its format (-F)")
        argv += ["-F", _fmt(backing_fmt), "-b", _path(backing)]
    elif size is None:
        raise ValueError("No size was passed, and no backing file was passed")
    argv.append(_path(path))
    if size is not None:
        argv.append(_size(size))
    return argv


def convert_argv(
    src: PathLike, dst: PathLike, src_fmt: str, dst_fmt: str, *, progress: bool = True
) -> list[str]:
    """`QemuImg.convert`: a full copy that flattens any backing chain of `src`."""
    argv = [QEMU_IMG, "convert"]
    if progress:
        argv.append("-p")
    return [*argv, "-f", _fmt(src_fmt), "-O", _fmt(dst_fmt), _path(src), _path(dst)]


def info_argv(path: PathLike, fmt: str) -> list[str]:
    """`QemuImg.info`, as JSON; `-U` so an image held open by a VM can still be read."""
    return [QEMU_IMG, "info", "--output=json", "-f", _fmt(fmt), "-U", _path(path)]


def check_argv(path: PathLike, fmt: str, repair: str | None = None) -> list[str]:
    """`QemuImg.check`; `repair` is qemu's `-r leaks|all`."""
    argv = [QEMU_IMG, "check", "--output=json", "-f", _fmt(fmt)]
    if repair is not None:
        if repair not in ("leaks", "all"):
            raise ValueError(f"unknown repair mode {repair!r}")
        argv += ["-r", repair]
    return [*argv, _path(path)]


def resize_argv(
    path: PathLike, fmt: str, size: int, *, shrink: bool = False
) -> list[str]:
    """`ResizeVolumeCommand` on a stopped VM; shrinking must be asked for."""
    argv = [QEMU_IMG, "resize", "-f", _fmt(fmt)]
    if shrink:
        argv.append("--shrink")
    return [*argv, _path(path), _size(size)]


def snapshot_create_argv(path: PathLike, fmt: str, name: str) -> list[str]:
    """An internal qcow2 snapshot (`qemu-img snapshot -c`)."""
    return _snapshot(path, fmt, "-c", name)


def snapshot_apply_argv(path: PathLike, fmt: str, name: str) -> list[str]:
    """Revert the image to an internal snapshot (`qemu-img snapshot -a`)."""
    return _snapshot(path, fmt, "-a", name)


def snapshot_delete_argv(path: PathLike, fmt: str, name: str) -> list[str]:
    """Drop an internal snapshot; "not found" means done, as in CloudStack."""
    return _snapshot(path, fmt, "-d", name)


def snapshot_list_argv(path: PathLike, fmt: str) -> list[str]:
    """List internal snapshots; `-U` because listing must not need the write lock."""
    return [QEMU_IMG, "snapshot", "-f", _fmt(fmt), "-U", "-l", _path(path)]


def rebase_argv(
    path: PathLike,
    fmt: str,
    backing: PathLike | None,
    backing_fmt: str | None = None,
    *,
    unsafe: bool = False,
    progress: bool = False,
) -> list[str]:
    """`QemuImg.rebase`; `backing=None` merges the chain in (`-b ""`).

    A safe (not `-u`) rebase compares the old and the new backing chains and writes
    into `path` every cluster where they differ: over an empty overlay of a snapshot,
    that leaves exactly the delta from the new backing file (a parent snapshot).
    A relative `backing` is resolved by qemu from the directory of `path`.
    """
    argv = [QEMU_IMG, "rebase"]
    if progress:
        argv.append("-p")
    argv += ["-f", _fmt(fmt)]
    if unsafe:
        argv.append("-u")
    if backing is None:
        argv += ["-b", ""]
    else:
        if backing_fmt is None:
            raise ValueError("a backing file needs its format (-F)")
        argv += ["-F", _fmt(backing_fmt), "-b", _path(backing)]
    return [*argv, _path(path)]


def parse_info(json_text: str) -> ImageInfo:
    """Read `qemu-img info --output=json`; raise ValueError on anything else."""
    try:
        data: Any = json.loads(json_text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"qemu-img info output is not JSON: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise ValueError("qemu-img info output is not a JSON object")
    fmt, virtual = data.get("format"), data.get("virtual-size")
    if not isinstance(fmt, str) or not isinstance(virtual, int):
        raise ValueError("qemu-img info output lacks format or virtual-size")
    actual = data.get("actual-size")
    backing = data.get("backing-filename")
    backing_fmt = data.get("backing-filename-format")
    specific = data.get("format-specific")
    details = specific.get("data") if isinstance(specific, dict) else None
    data_file = details.get("data-file") if isinstance(details, dict) else None
    return ImageInfo(
        format=fmt,
        virtual_size=virtual,
        actual_size=actual if isinstance(actual, int) else None,
        backing_file=backing if isinstance(backing, str) and backing else None,
        backing_format=backing_fmt if isinstance(backing_fmt, str) else None,
        data_file=data_file if isinstance(data_file, str) and data_file else None,
    )


def parse_progress(chunk: str) -> float | None:
    """The last `(45.50/100%)` of `convert -p` output as a fraction 0..1, if any."""
    matches = _PROGRESS.findall(chunk)
    if not matches:
        return None
    return min(max(float(matches[-1]) / 100.0, 0.0), 1.0)


def _snapshot(path: PathLike, fmt: str, flag: str, name: str) -> list[str]:
    if not name or "\x00" in name:
        raise ValueError(f"invalid snapshot name {name!r}")
    return [QEMU_IMG, "snapshot", "-f", _fmt(fmt), flag, name, _path(path)]


def _fmt(fmt: str) -> str:
    # Formats are qemu driver names; a CloudStack name here is a caller's slip.
    if fmt not in _DRIVERS:
        raise ValueError(f"unknown qemu image format {fmt!r}")
    return fmt


def _path(path: PathLike) -> str:
    text = str(path)
    # A leading '-' would be read as an option, and a ':' before any '/' as a
    # protocol prefix (`nbd:`, `json:`): both would make a name into an instruction.
    if not text or text.startswith("-") or "\x00" in text:
        raise ValueError(f"unsafe image path {text!r}")
    if ":" in text.split("/", 1)[0]:
        raise ValueError(f"image path looks like a protocol: {text!r}")
    return text


def _size(size: int) -> str:
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ValueError(f"invalid size {size!r}")
    return str(size)
