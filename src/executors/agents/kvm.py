"""The KVM agent's storage side: CloudStack's `KVMStorageProcessor` on directories.

A primary pool is a directory (CloudStack mounts it at `/mnt/<pool uuid>`), an image
store is another (CloudStack's NFS secondary, reached by the SSVM); TOs carry paths
relative to those roots and every absolute path is built by `paths.contained`.

Each operation is idempotent the way a retried agent command must be: its output has a
deterministic name, is written under a temporary sibling name and renamed into place
only once `qemu-img info` has read it. A repeat finds the finished file and answers
success; a crash leaves at most a temporary file, which the repeat removes first.
`handle` never raises: a failure is an answer with one line for the operator.

Snapshots (create, back up, revert, delete) and the copies made from them or to an
image store (volume or template from a snapshot, template from a volume, staging a
volume through secondary storage) live in `kvm_snapshots`; `_Job.run` hands them over.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from executors import qemu
from executors.agents import kvm_snapshots, kvm_stats
from executors.agents.staging import AgentFailure
from executors.agents.staging import remove as _remove
from executors.agents.staging import staged as _staged
from executors.agents.staging import temp_for as _temp_for
from executors.paths import contained, pool_root, store_root
from executors.runner import (
    CommandTimedOut,
    Completed,
    ProgressCallback,
    Runner,
    SubprocessRunner,
)
from ledger.commands import (
    DEFAULT_WAIT,
    Answer,
    AttachAnswer,
    AttachCommand,
    Command,
    CopyCmdAnswer,
    CopyCommand,
    CreateObjectAnswer,
    CreateObjectCommand,
    DataTO,
    DeleteCommand,
    DettachAnswer,
    DettachCommand,
    DownloadAnswer,
    DownloadCommand,
    GetStorageStatsCommand,
    ImageStoreTO,
    PrimaryDataStoreTO,
    ResizeVolumeAnswer,
    ResizeVolumeCommand,
    TemplateObjectTO,
    VolumeObjectTO,
    failure_for,
)
from ledger.errors import InvalidInput

_CHUNK = 1 << 20
# Bytes per copy call: small enough to check the deadline and report progress a few
# times a second, large enough that the calls cost nothing next to the copying.
_COPY_CHUNK = 32 << 20
# copy_file_range can't do this pair of files (another file system, an old kernel):
# sendfile still copies in the kernel.
_NO_COPY_RANGE = frozenset({errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL})
_PREALLOCATION = {"THIN": "off", "SPARSE": "metadata", "FAT": "full"}
_SHA256 = re.compile(r"(?:sha256:|\{sha-?256\})?([0-9a-f]{64})")


class KvmAgent:
    """Answers storage commands for one KVM host, as CloudStack's agent does."""

    def __init__(self, runner: Runner | None = None) -> None:
        self.runner: Runner = runner if runner is not None else SubprocessRunner()

    def handle(
        self, command: Command, on_progress: ProgressCallback | None = None
    ) -> Answer:
        """The command's answer; any exception becomes `result=false` with why."""
        wait = float(getattr(command, "wait", 0) or DEFAULT_WAIT)
        try:
            return _Job(self.runner, wait, on_progress).run(command)
        except CommandTimedOut as exc:
            what = " ".join(exc.argv[:2])
            return failure_for(command, f"{what} timed out after {wait:g} s")
        except (AgentFailure, InvalidInput) as exc:
            return failure_for(command, _one_line(str(exc)))
        except OSError as exc:
            return failure_for(command, _one_line(_os_error(exc)))
        except Exception as exc:  # a bug still becomes an answer, not a lost job
            return failure_for(command, _one_line(f"{type(exc).__name__}: {exc}"))


@dataclass
class _Job:
    """One command's run: its runner, its deadline (the command's `wait`)."""

    runner: Runner
    wait: float
    on_progress: ProgressCallback | None
    deadline: float = field(init=False)

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.wait

    def run(self, command: Command) -> Answer:
        match command:
            case DownloadCommand():
                return self.download(command)
            case CopyCommand(
                srcTO=TemplateObjectTO(dataStore=ImageStoreTO()) as src,
                destTO=TemplateObjectTO(dataStore=PrimaryDataStoreTO()) as dest,
            ):
                return self.copy_template_to_primary(command, src, dest)
            case CopyCommand(
                srcTO=TemplateObjectTO(dataStore=PrimaryDataStoreTO()) as src,
                destTO=VolumeObjectTO(dataStore=PrimaryDataStoreTO()) as dest,
            ):
                return self.clone_from_base_template(command, src, dest)
            case CopyCommand(
                srcTO=VolumeObjectTO(dataStore=PrimaryDataStoreTO()) as src,
                destTO=VolumeObjectTO(dataStore=PrimaryDataStoreTO()) as dest,
            ):
                return self.copy_volume_to_primary(command, src, dest)
            case CreateObjectCommand(data=VolumeObjectTO() as volume):
                return self.create_volume(command, volume)
            case DeleteCommand(data=VolumeObjectTO() | TemplateObjectTO() as data):
                return self.delete(command, data)
            case AttachCommand() | DettachCommand():
                return self.check_disk(command)
            case ResizeVolumeCommand():
                return self.resize(command)
            case GetStorageStatsCommand():
                return kvm_stats.storage_stats(command)
        answer = kvm_snapshots.run(self, command)
        if answer is not None:
            return answer
        return failure_for(command, f"unsupported command {_describe(command)}")

    # ------------------------------------------------------------ templates

    def download(self, cmd: DownloadCommand) -> Answer:
        """The SSVM's `DownloadCommand`: fetch, verify, then publish at installPath."""
        root = store_root(cmd.store)
        fmt = _format(cmd.format)
        expected = _expected_sha256(cmd.checksum)
        final = contained(root, cmd.installPath)
        _remove(_temp_for(final))  # a crashed earlier run's leftover
        if final.exists():
            info = self.verify_template(final, fmt)
            digest = _check_digest(expected, _sha256_of(final))
        else:
            base = root.resolve()
            created = [p for p in final.parents if p != base and p.is_relative_to(base)]
            created = [p for p in created if not p.exists()]
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                with _staged(final) as tmp:
                    digest = _check_digest(expected, self.fetch(cmd.url, tmp))
                    info = self.verify_template(tmp, fmt)
            except BaseException:
                for directory in created:  # innermost first
                    with contextlib.suppress(OSError):
                        directory.rmdir()
                raise
        return DownloadAnswer(
            commandId=cmd.commandId,
            result=True,
            installPath=cmd.installPath,
            templateSize=info.virtual_size,
            templatePhySicalSize=final.stat().st_size,
            downloadStatus="DOWNLOADED",
            downloadPct=100,
            checkSum=f"sha256:{digest}",
        )

    def fetch(self, url: str, dest: Path) -> str:
        """Copy `url` (file, http, https; no shell, no curl) to `dest`; its sha256."""
        parsed = urllib.parse.urlparse(url)
        source: IO[bytes] | Any
        if parsed.scheme == "file":
            if parsed.netloc not in ("", "localhost"):
                raise InvalidInput("url", url, "a file:// url must name a local path")
            source = open(urllib.parse.unquote(parsed.path), "rb")  # noqa: SIM115
            total = os.fstat(source.fileno()).st_size
        elif parsed.scheme in ("http", "https"):
            timeout = max(min(self.deadline - time.monotonic(), 300.0), 0.001)
            try:
                # The scheme was checked above, which is what S310 asks for.
                source = urllib.request.urlopen(url, timeout=timeout)  # noqa: S310
            except urllib.error.URLError as exc:
                raise AgentFailure(_os_error(exc)) from exc
            total = int(source.headers.get("Content-Length") or 0)
        else:
            raise InvalidInput("url", url, "only file, http and https are supported")
        digest, done = hashlib.sha256(), 0
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        with source, os.fdopen(os.open(dest, flags, 0o644), "wb") as sink:
            while chunk := source.read(_CHUNK):
                if time.monotonic() > self.deadline:
                    raise CommandTimedOut(["download", url], self.wait)
                digest.update(chunk)
                sink.write(chunk)
                done += len(chunk)
                if total and self.on_progress is not None:
                    self.on_progress(min(done / total, 1.0))
            sink.flush()
            os.fsync(sink.fileno())
        if total and done != total:
            raise AgentFailure(f"download incomplete: got {done} of {total} bytes")
        return digest.hexdigest()

    def verify_template(self, path: Path, fmt: str) -> qemu.ImageInfo:
        """Refuse a template that is not `fmt` or that points at a backing file."""
        try:
            info = self.info(path, fmt)
        except AgentFailure as exc:
            raise AgentFailure(f"not a valid {fmt} image: {exc}") from exc
        if info.backing_file is not None:
            # A template's backing file would be read from this host: refuse it.
            raise AgentFailure(f"template has a backing file {info.backing_file!r}")
        if info.data_file is not None:
            # The same for an external data file: its bytes would be the guest's disk.
            raise AgentFailure(f"template has an external data file {info.data_file!r}")
        return info

    def copy_template_to_primary(
        self, cmd: CopyCommand, src: TemplateObjectTO, dest: TemplateObjectTO
    ) -> Answer:
        """`copyTemplateToPrimaryStorage`: the base image cache, named the uuid."""
        source = _template_file(store_root(src.dataStore), src.path or src.uuid)
        src_fmt = _format(src.format)
        final = contained(pool_root(dest.dataStore), dest.uuid)
        info = self.finished(final, "qcow2")
        if info is None:
            verified = self.verify_template(source, src_fmt)
            info = self.standalone_copy(source, src_fmt, verified, final)
        new = dest.replace(
            path=dest.uuid,
            format="QCOW2",
            size=info.virtual_size,
            physicalSize=final.stat().st_size,
        )
        return CopyCmdAnswer(commandId=cmd.commandId, result=True, newData=new)

    # ------------------------------------------------------------ volumes

    def clone_from_base_template(
        self, cmd: CopyCommand, src: TemplateObjectTO, dest: VolumeObjectTO
    ) -> Answer:
        """`cloneVolumeFromBaseTemplate`: a qcow2 overlay on the cached template."""
        name = src.path or src.uuid
        base = contained(pool_root(src.dataStore), name)
        final = contained(pool_root(dest.dataStore), dest.uuid)
        if not base.is_file():
            raise AgentFailure(f"base template {name} not found in {base.parent}")
        size = max(dest.size, self.info(base, "qcow2").virtual_size)
        info = self.finished(final, "qcow2", backing=str(base))
        if info is None:
            with _staged(final) as tmp:
                self.qemu(qemu.create_argv(tmp, "qcow2", size, base, "qcow2"))
                info = self.info(tmp, "qcow2")
        new = dest.replace(path=dest.uuid, size=info.virtual_size, format="QCOW2")
        return CopyCmdAnswer(commandId=cmd.commandId, result=True, newData=new)

    def copy_volume_to_primary(
        self, cmd: CopyCommand, src: VolumeObjectTO, dest: VolumeObjectTO
    ) -> Answer:
        """`copyVolumeFromPrimaryToPrimary`: a full, flattened copy (migration)."""
        source, src_info = self.volume_file(src)
        final = contained(pool_root(dest.dataStore), dest.uuid)
        if final == source:
            raise AgentFailure(f"source and destination are the same file {final}")
        info = self.finished(final, "qcow2")
        if info is None:
            info = self.standalone_copy(source, _format(src.format), src_info, final)
        new = dest.replace(path=dest.uuid, size=info.virtual_size, format="QCOW2")
        return CopyCmdAnswer(commandId=cmd.commandId, result=True, newData=new)

    def create_volume(self, cmd: CreateObjectCommand, volume: VolumeObjectTO) -> Answer:
        """`createVolume`: an empty disk of the requested virtual size."""
        fmt = _format(volume.format)
        prealloc = _PREALLOCATION.get(volume.provisioningType)
        if prealloc is None:
            raise InvalidInput("provisioning type", volume.provisioningType, "unknown")
        final = contained(pool_root(volume.dataStore), volume.uuid)
        info = self.finished(final, fmt)
        if info is not None and info.virtual_size < volume.size:
            raise AgentFailure(
                f"{final} exists with {info.virtual_size} bytes, not {volume.size}"
            )
        if info is None:
            with _staged(final) as tmp:
                self.qemu(
                    qemu.create_argv(tmp, fmt, volume.size, preallocation=prealloc)
                )
                info = self.info(tmp, fmt)
        data = volume.replace(path=volume.uuid, size=info.virtual_size)
        return CreateObjectAnswer(commandId=cmd.commandId, result=True, data=data)

    def delete(
        self, cmd: DeleteCommand, data: VolumeObjectTO | TemplateObjectTO
    ) -> Answer:
        """`deleteVolume` and template deletion: already gone counts as done."""
        root = store_root(data.dataStore).resolve()
        target = contained(root, data.path or data.uuid)
        if target.is_dir() and isinstance(data, TemplateObjectTO):
            for child in target.iterdir():  # a template directory holds files only
                child.unlink()
            target.rmdir()
        else:
            _remove(_temp_for(target))
            _remove(target)
            if isinstance(data, TemplateObjectTO) and target.parent != root:
                with contextlib.suppress(OSError):  # only if now empty
                    target.parent.rmdir()
        return Answer(commandId=cmd.commandId, result=True)

    def check_disk(self, cmd: AttachCommand | DettachCommand) -> Answer:
        """Attach/detach without libvirt: only the disk's readability is checked."""
        self.existing_volume(cmd.disk.data)
        answer = AttachAnswer if isinstance(cmd, AttachCommand) else DettachAnswer
        return answer(commandId=cmd.commandId, result=True, disk=cmd.disk)

    # ------------------------------------------------------------ helpers

    def resize(self, cmd: ResizeVolumeCommand) -> Answer:
        """`ResizeVolumeCommand`: `qemu-img resize`; a repeat finds it done."""
        path = self.existing_volume(cmd.volume)
        fmt = _format(cmd.volume.format)
        if self.info(path, fmt).virtual_size != cmd.newSize:
            self.qemu(qemu.resize_argv(path, fmt, cmd.newSize, shrink=cmd.shrinkOk))
        size = self.info(path, fmt).virtual_size
        return ResizeVolumeAnswer(commandId=cmd.commandId, result=True, newSize=size)

    def existing_volume(self, volume: VolumeObjectTO) -> Path:
        """The volume's file, checked to exist and to be readable by `qemu-img`."""
        return self.volume_file(volume)[0]

    def volume_file(self, volume: VolumeObjectTO) -> tuple[Path, qemu.ImageInfo]:
        """The volume's file and what `qemu-img info` reads in it."""
        name = volume.path or volume.uuid
        path = contained(pool_root(volume.dataStore), name)
        if not path.is_file():
            raise AgentFailure(f"volume file {name} not found in {path.parent}")
        return path, self.info(path, _format(volume.format))

    def convert(self, source: Path, src_fmt: str, final: Path) -> qemu.ImageInfo:
        """A standalone qcow2 copy of `source` at `final`, with progress reported."""
        with _staged(final) as tmp:
            self.qemu(qemu.convert_argv(source, tmp, src_fmt, "qcow2"), progress=True)
            return self.info(tmp, "qcow2")

    def standalone_copy(
        self, source: Path, src_fmt: str, src_info: qemu.ImageInfo, final: Path
    ) -> qemu.ImageInfo:
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
        with _staged(final) as tmp:
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
                        if time.monotonic() > self.deadline:
                            raise CommandTimedOut(argv, self.wait)
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
                        if self.on_progress is not None:
                            self.on_progress(offset / size)
                os.ftruncate(dst, size)  # a hole at the end has no extent to copy
            except OSError as exc:
                # os.* calls name no file; the operator's line should.
                raise OSError(exc.errno, exc.strerror, str(dest)) from exc
            finally:
                os.close(dst)
        finally:
            os.close(src)
        if self.on_progress is not None:
            self.on_progress(1.0)

    def finished(
        self, final: Path, fmt: str, backing: str | None = None
    ) -> qemu.ImageInfo | None:
        """The info of `final` if an earlier run finished it; None if never made."""
        _remove(_temp_for(final))  # a crashed earlier run's leftover
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

    def info(self, path: Path, fmt: str) -> qemu.ImageInfo:
        return qemu.parse_info(self.qemu(qemu.info_argv(path, fmt)).stdout)

    def qemu(
        self, argv: list[str], *, progress: bool = False, ok: tuple[int, ...] = (0,)
    ) -> Completed:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise CommandTimedOut(argv, self.wait)
        callback = self.on_progress if progress else None
        done = self.runner.run(argv, timeout=remaining, on_progress=callback)
        if done.returncode not in ok:
            raise AgentFailure(_qemu_failure(argv, done.stderr))
        return done


def _template_file(root: Path, name: str) -> Path:
    """CloudStack's rule: a template path naming a directory means its first qcow2."""
    path = contained(root, name)
    if path.is_dir():
        found = sorted(child.name for child in path.glob("*.qcow2"))
        if not found:
            raise AgentFailure(f"no .qcow2 file in template directory {path}")
        path = contained(root, name, found[0])
    if not path.is_file():
        raise AgentFailure(f"template file {path} not found")
    return path


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


def _format(image_format: str) -> str:
    """Only what a KVM pool holds; VHD or VMDK would need a conversion step first."""
    if image_format.upper() not in ("QCOW2", "RAW"):
        raise InvalidInput("image format", image_format, "only QCOW2 and RAW")
    return qemu.qemu_format(image_format)


def _expected_sha256(checksum: str | None) -> str | None:
    if not checksum:
        return None
    match = _SHA256.fullmatch(checksum.strip().lower())
    if match is None:
        raise InvalidInput("checksum", checksum, "expected sha256: and 64 hex digits")
    return match.group(1)


def _check_digest(expected: str | None, actual: str) -> str:
    if expected is not None and expected != actual:
        raise AgentFailure(f"checksum mismatch: expected {expected}, got {actual}")
    return actual


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _qemu_failure(argv: list[str], stderr: str) -> str:
    lines = [line.removeprefix("qemu-img: ") for line in stderr.splitlines() if line]
    why = lines[-1] if lines else "no message"
    what = " ".join(argv[:2])
    if "No space left on device" in stderr or "Disk quota exceeded" in stderr:
        return f"insufficient space: {what} failed: {why}"
    return f"{what} failed: {why}"


def _os_error(exc: OSError) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"download failed: HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return f"download failed: {exc.reason}"
    where = f": {exc.filename}" if exc.filename else ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"insufficient space: {exc.strerror}{where}"
    return f"{exc.strerror or exc}{where}"


def _describe(command: Command) -> str:
    if isinstance(command, CopyCommand):
        return f"CopyCommand {_where(command.srcTO)} -> {_where(command.destTO)}"
    if isinstance(command, CreateObjectCommand | DeleteCommand):
        return f"{command.kind} for {_where(command.data)}"
    return command.kind


def _where(data: DataTO) -> str:
    store = data.dataStore.role if data.dataStore is not None else "no store"
    return f"{data.objectType} on {store}"


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= 500 else line[:497] + "..."
