"""The image-file steps every directory operation is built from.

A directory pool or store holds one file per image. Each operation is idempotent the
way a retried agent command must be: its output has a deterministic name, is written
under a temporary sibling name and renamed into place only once `qemu-img info` has
read it (`staging`). A repeat finds the finished file (`finished`) and answers
success; a crash leaves at most a temporary file, which the repeat removes first.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from executors import qemu
from executors.paths import contained, pool_root
from executors.providers.command_run import CommandRun
from executors.providers.directory.staging import (
    parent_dirs,
    remove,
    staged,
    temp_for,
)
from executors.providers.driver import AgentFailure
from executors.qemu import ImageInfo
from executors.runner import Completed
from ledger.commands import VolumeObjectTO
from ledger.errors import InvalidInput

# Bytes per copy call: small enough to check the deadline and report progress a few
# times a second, large enough that the calls cost nothing next to the copying.
_COPY_CHUNK = 32 << 20
# copy_file_range can't do this pair of files (another file system, an old kernel):
# sendfile still copies in the kernel.
_NO_COPY_RANGE = frozenset({errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL})
_MAX_CHAIN = 64  # CloudStack's snapshot.delta.max is 16; anything deeper is damage


@dataclass
class Images:
    """The steps, bound to one command's run (its runner, deadline and progress)."""

    run: CommandRun

    def qemu(
        self, argv: list[str], *, progress: bool = False, ok: tuple[int, ...] = (0,)
    ) -> Completed:
        return self.run.qemu(argv, progress=progress, ok=ok)

    def info(self, path: Path, fmt: str) -> ImageInfo:
        return self.run.info(path, fmt)

    def existing_volume(self, volume: VolumeObjectTO) -> Path:
        """The volume's file, checked to exist and to be readable by `qemu-img`."""
        return self.volume_file(volume)[0]

    def volume_file(self, volume: VolumeObjectTO) -> tuple[Path, ImageInfo]:
        """The volume's file and what `qemu-img info` reads in it."""
        name = volume.path or volume.uuid
        path = contained(pool_root(volume.dataStore), name)
        if not path.is_file():
            raise AgentFailure(f"volume file {name} not found in {path.parent}")
        return path, self.info(path, image_format(volume.format))

    def convert(self, source: Path, src_fmt: str, final: Path) -> ImageInfo:
        """A standalone qcow2 copy of `source` at `final`, with progress reported."""
        with staged(final) as tmp:
            self.qemu(qemu.convert_argv(source, tmp, src_fmt, "qcow2"), progress=True)
            return self.info(tmp, "qcow2")

    def standalone_copy(
        self, source: Path, src_fmt: str, src_info: ImageInfo, final: Path
    ) -> ImageInfo:
        """`convert`, or the same result by copying bytes when `source` allows it.

        `qemu-img convert` decodes and re-encodes every cluster, about 0.7 of a plain
        `cp`. A qcow2 that names no backing file and no external data file already is
        a standalone qcow2, so its bytes are copied as they are, holes kept. The
        validation convert did by reading every table is left to `qemu-img check` of
        the copy: a copy it does not pass (corruption; leaked clusters are harmless)
        is dropped and made by `convert` after all, as it always was.
        """
        if (
            src_fmt != "qcow2"
            or src_info.backing_file is not None
            or src_info.data_file is not None
        ):
            return self.convert(source, src_fmt, final)
        with staged(final) as tmp:
            self.copy_file(source, tmp)
            # Exit 3 is leaked clusters only, 2 corruption, 1 a check that failed.
            check = self.qemu(qemu.check_argv(tmp, "qcow2"), ok=(0, 1, 2, 3))
            if check.returncode in (0, 3):
                return self.info(tmp, "qcow2")
        return self.convert(source, src_fmt, final)

    def copy_file(self, source: Path, dest: Path) -> None:
        """`source`'s bytes in a new file `dest`, read only where `source` has data.

        In the kernel (copy_file_range, which may share blocks, or sendfile across
        file systems), checking the deadline and reporting progress between chunks.
        No fsync, as `qemu-img convert` (cache mode unsafe) never did either.
        """
        argv = ["copy", str(source)]
        on_progress = self.run.on_progress
        created = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        src = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            dst = os.open(dest, created, 0o644)
            try:
                size = os.fstat(src).st_size
                in_kernel = True
                for start, end in _data_extents(src, size):
                    offset = start
                    while offset < end:
                        self.run.check_deadline(argv)
                        count = min(_COPY_CHUNK, end - offset)
                        try:
                            done = _copy_range(
                                src, dst, offset, count, in_kernel=in_kernel
                            )
                        except OSError as exc:
                            if not in_kernel or exc.errno not in _NO_COPY_RANGE:
                                raise
                            in_kernel = False
                            continue
                        if done == 0:
                            raise AgentFailure(f"{source} shrank while being copied")
                        offset += done
                        if on_progress is not None:
                            on_progress(offset / size)
                os.ftruncate(dst, size)  # a hole at the end has no extent to copy
            except OSError as exc:
                # os.* calls name no file; the operator's line should.
                raise OSError(exc.errno, exc.strerror, str(dest)) from exc
            finally:
                os.close(dst)
        finally:
            os.close(src)
        if on_progress is not None:
            on_progress(1.0)

    def finished(
        self, final: Path, fmt: str, backing: str | None = None
    ) -> ImageInfo | None:
        """The info of `final` if an earlier run finished it; None if never made."""
        remove(temp_for(final))  # a crashed earlier run's leftover
        if not final.exists():
            return None
        try:
            info = self.info(final, fmt)
        except AgentFailure as exc:
            raise AgentFailure(f"{final} exists but is unreadable: {exc}") from exc
        if info.backing_file != backing:
            raise AgentFailure(
                f"{final} exists with backing file {info.backing_file!r}, "
                f"expected {backing!r}"
            )
        return info

    def flatten(
        self,
        source: Path,
        src_fmt: str,
        final: Path,
        root: Path,
        size: int | None = None,
    ) -> ImageInfo:
        """A standalone qcow2 of `source`'s whole chain at `final`, grown to `size`."""
        with parent_dirs(final, root), staged(final) as tmp:
            self.qemu(qemu.convert_argv(source, tmp, src_fmt, "qcow2"), progress=True)
            info = self.info(tmp, "qcow2")
            if size is not None and size > info.virtual_size:
                self.qemu(qemu.resize_argv(tmp, "qcow2", size))
                info = self.info(tmp, "qcow2")
            if info.backing_file is not None:
                raise AgentFailure(f"flattened copy kept backing {info.backing_file}")
            return info

    def delta(
        self, source: Path, parent: Path, backing: str, final: Path, root: Path
    ) -> ImageInfo:
        """Only the clusters where `source` differs from `parent`, backed by it.

        An empty overlay of `source` is rebased (safely, so with a comparison) onto
        `parent`: qemu writes into the overlay every cluster the two differ in.
        """
        with parent_dirs(final, root), staged(final) as tmp:
            self.qemu(qemu.create_argv(tmp, "qcow2", None, source, "qcow2"))
            self.qemu(
                qemu.rebase_argv(tmp, "qcow2", backing, "qcow2", progress=True),
                progress=True,
            )
            info = self.info(tmp, "qcow2")
            if info.backing_file != backing:
                raise AgentFailure(
                    f"delta {final.name} has backing file {info.backing_file!r}, "
                    f"expected its parent {backing!r}"
                )
            return info

    def checked_source(self, path: Path, root: Path, fmt: str, what: str) -> ImageInfo:
        """`path`'s info, once it exists and its whole chain stays inside `root`."""
        if not path.is_file():
            raise AgentFailure(f"{what} file {path.name} not found in {path.parent}")
        top = info = self.info(path, fmt)
        current = path
        base = root.resolve()
        for _ in range(_MAX_CHAIN):
            if info.backing_file is None:
                return top
            if info.backing_format not in ("qcow2", "raw"):
                raise AgentFailure(
                    f"{what} {path.name}: backing file {info.backing_file!r} "
                    "has no qcow2 or raw format recorded"
                )
            backing = current.parent / info.backing_file
            try:
                inside = backing.resolve().relative_to(base)
            except ValueError:
                raise AgentFailure(
                    f"{what} {path.name}: backing file {info.backing_file!r} "
                    f"is outside the store {base}"
                ) from None
            current = contained(base, str(inside))
            if not current.is_file():
                raise AgentFailure(
                    f"{what} {path.name}: backing file {info.backing_file!r} is missing"
                )
            info = self.info(current, info.backing_format)
        raise AgentFailure(f"{what} {path.name}: backing chain over {_MAX_CHAIN} deep")


def remove_with_dir(path: Path, root: Path) -> None:
    """Remove `path` (and a leftover temporary), then its directory if now empty."""
    remove(temp_for(path))
    remove(path)
    if path.parent != root.resolve():
        with contextlib.suppress(OSError):  # only if now empty
            path.parent.rmdir()


def distinct(source: Path, final: Path) -> None:
    """Refuse a copy onto its own source (two names that resolve to one file)."""
    if source == final:
        raise AgentFailure(f"source and destination are the same file {final}")


def image_format(name: str) -> str:
    """Only what a KVM pool holds; VHD or VMDK would need a conversion step first."""
    if name.upper() not in ("QCOW2", "RAW"):
        raise InvalidInput("image format", name, "only QCOW2 and RAW")
    return qemu.qemu_format(name)


def _data_extents(fd: int, size: int) -> Iterator[tuple[int, int]]:
    """The (start, end) byte ranges of `fd` that hold data; the rest are holes."""
    offset = 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # nothing but a hole up to the end
                return
            if exc.errno == errno.EINVAL and offset == 0:  # no SEEK_DATA here
                yield 0, size
                return
            raise
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        if end <= start:
            return
        yield start, end
        offset = end


def _copy_range(src: int, dst: int, offset: int, count: int, *, in_kernel: bool) -> int:
    """Copy up to `count` bytes at `offset` of `src` to the same offset of `dst`."""
    if in_kernel:
        return os.copy_file_range(src, dst, count, offset, offset)
    os.lseek(dst, offset, os.SEEK_SET)
    return os.sendfile(dst, src, offset, count)
