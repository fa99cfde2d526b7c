"""The object store drivers' operations, written once over `ObjectStore`.

- `download` (the SSVM's `DownloadCommand`): the template's URL fetched to a
  temporary file and verified exactly as the directory driver does it (sha256
  checksum, `qemu-img info` of the format, no backing or external data file), then
  uploaded; the object carries its virtual size and sha256 as metadata, so a repeat
  that finds it answers success without fetching again.
- `copy` (the SSVM's `copyFromS3ToNfs` / `copyFromNfsToS3`, and Swift's): between
  the object store and a directory store, in either direction. Into a directory
  (the staging cache, or a command's workspace in it) the object lands at the same
  path under a temporary name, is read by `qemu-img`, renamed, and then the backing
  files it names (a snapshot delta's parents, laid out as on the store) are fetched
  the same way and the whole chain is checked to stay inside the directory. Out of
  a directory the file is uploaded to the same path.
- `delete` of a template or a snapshot backup: its object; already gone is done.
- `revert_snapshot`: the backup's chain fetched into a temporary directory, then
  the directory driver's revert from there.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import stat
import tempfile
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from executors.paths import contained, store_root
from executors.providers.command_run import CommandRun
from executors.providers.directory.images import Images, image_format
from executors.providers.directory.snapshots import Snapshots, snapshot_path
from executors.providers.directory.staging import parent_dirs, remove, staged, temp_for
from executors.providers.directory.templates import (
    Templates,
    _check_digest,
    _expected_sha256,
)
from executors.providers.driver import AgentFailure
from executors.providers.s3.objects import (
    SHA256,
    VIRTUAL_SIZE,
    ObjectHead,
    ObjectStore,
    Opener,
    Progress,
)
from executors.providers.url_check import checked_file
from executors.qemu import ImageInfo
from ledger.commands import (
    Answer,
    CopyCmdAnswer,
    CopyCommand,
    DataTO,
    DeleteCommand,
    DownloadAnswer,
    DownloadCommand,
    ImageStoreTO,
    RevertSnapshotCommand,
    SnapshotObjectTO,
    TemplateObjectTO,
)
from ledger.errors import InvalidInput

_MAX_CHAIN = 64  # as the directory driver's checked_source
_FETCH_SHARE = 0.3  # of a download's progress: fetching; the rest is the upload
_HASH_SHARE = 0.15  # of a local file's: hashing it; the rest is the upload
_CHUNK = 4 << 20


@dataclass
class Transfers:
    """The operations of one command's run on the store `open` reaches."""

    run: CommandRun
    open: Opener

    @property
    def images(self) -> Images:
        return Images(self.run)

    # ------------------------------------------------------------ DownloadCommand

    def download(self, cmd: DownloadCommand) -> Answer:
        """Fetch, verify, upload; a repeat finds the object and answers success."""
        fmt = image_format(cmd.format)
        expected = _expected_sha256(cmd.checksum)
        store = self.open(cmd.store)
        found = store.head(cmd.installPath)
        if found is not None and _measured(found):
            digest = _check_digest(expected, found.metadata[SHA256])
            virtual, physical = int(found.metadata[VIRTUAL_SIZE]), found.size
        elif (local := _local_file(cmd.url, cmd.allowedRoots)) is not None:
            digest, virtual, physical = self._upload_in_place(store, cmd, local, fmt)
        else:
            with tempfile.TemporaryDirectory(prefix="storctl-download-") as tmp:
                path = Path(tmp) / "template"
                fetching = _scaled(self.run, 0.0, _FETCH_SHARE)
                templates = Templates(Images(fetching))
                fetched = templates.fetch(
                    cmd.url, path, cmd.allowedRoots, cmd.allowedInternalSites
                )
                digest = _check_digest(expected, fetched)
                virtual = templates.verify_template(path, fmt).virtual_size
                physical = path.stat().st_size
                metadata = {VIRTUAL_SIZE: str(virtual), SHA256: digest}
                store.upload(
                    path,
                    cmd.installPath,
                    metadata,
                    self._progress("upload", physical, _FETCH_SHARE),
                )
        return DownloadAnswer(
            commandId=cmd.commandId,
            result=True,
            installPath=cmd.installPath,
            templateSize=virtual,
            templatePhySicalSize=physical,
            downloadStatus="DOWNLOADED",
            downloadPct=100,
            checkSum=f"sha256:{digest}",
        )

    def _upload_in_place(
        self, store: ObjectStore, cmd: DownloadCommand, local: Path, fmt: str
    ) -> tuple[str, int, int]:
        """A `file://` template uploaded from where it is, with no staging copy:
        hashed and verified there (the directory driver's checks), uploaded, and
        refused (its object deleted) if the file changed meanwhile."""
        fd = os.open(local, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            before = os.fstat(fd)
            if not stat.S_ISREG(before.st_mode):
                raise AgentFailure(f"{local} is not a regular file")
            digest = _check_digest(
                _expected_sha256(cmd.checksum), self._sha256(fd, before.st_size)
            )
            templates = Templates(self.images)
            virtual = templates.verify_template(local, fmt).virtual_size
            metadata = {VIRTUAL_SIZE: str(virtual), SHA256: digest}
            progress = self._progress("upload", before.st_size, _HASH_SHARE)
            store.upload(local, cmd.installPath, metadata, progress)
            after = (os.fstat(fd), os.stat(local, follow_symlinks=False))
            if any(_identity(before) != _identity(now) for now in after):
                store.delete(cmd.installPath)
                raise AgentFailure(f"{local} changed while it was being uploaded")
        finally:
            os.close(fd)
        return digest, virtual, before.st_size

    def _sha256(self, fd: int, size: int) -> str:
        digest, offset, run = hashlib.sha256(), 0, self.run
        while chunk := os.pread(fd, _CHUNK, offset):
            run.check_deadline(["sha256", str(size)])
            digest.update(chunk)
            offset += len(chunk)
            if run.on_progress is not None and size:
                run.on_progress(_HASH_SHARE * min(offset / size, 1.0))
        return digest.hexdigest()

    # ------------------------------------------------------- object <-> directory

    def copy(self, cmd: CopyCommand, src: DataTO, dest: DataTO) -> Answer:
        """Between this object store and a directory store, either way."""
        if _is_directory(dest.dataStore) and not _is_directory(src.dataStore):
            return self.to_directory(cmd, src, dest)
        if _is_directory(src.dataStore) and not _is_directory(dest.dataStore):
            return self.from_directory(cmd, src, dest)
        raise AgentFailure(
            "a copy between two object stores, or two directories, is not "
            "this driver's: one side must be a directory store (the staging cache)"
        )

    def to_directory(self, cmd: CopyCommand, src: DataTO, dest: DataTO) -> Answer:
        """The object (and the backing files it names) into the directory store."""
        if not src.path:
            raise InvalidInput(src.objectType.lower(), src.uuid, "names no object")
        assert isinstance(src.dataStore, ImageStoreTO)
        store = self.open(src.dataStore)
        root = store_root(dest.dataStore)
        what = src.objectType.lower()
        final, info = self.fetch_chain(store, src.path, root, _format_of(src), what)
        new = _sized(dest, src.path, info.virtual_size, final.stat().st_size)
        return CopyCmdAnswer(commandId=cmd.commandId, result=True, newData=new)

    def from_directory(self, cmd: CopyCommand, src: DataTO, dest: DataTO) -> Answer:
        """The directory's file uploaded to the same path (or `dest.path`)."""
        if not src.path:
            raise InvalidInput(src.objectType.lower(), src.uuid, "names no file")
        assert isinstance(dest.dataStore, ImageStoreTO)
        root = store_root(src.dataStore)
        source = contained(root, src.path)
        path = dest.path or src.path
        store = self.open(dest.dataStore)
        found = store.head(path)
        if found is not None and VIRTUAL_SIZE in found.metadata:
            virtual, physical = int(found.metadata[VIRTUAL_SIZE]), found.size
        else:
            fmt, what = _format_of(src), src.objectType.lower()
            info = self.images.checked_source(source, root, fmt, what)
            if isinstance(src, TemplateObjectTO) and info.backing_file is not None:
                raise AgentFailure(f"template has a backing file {info.backing_file!r}")
            virtual, physical = info.virtual_size, source.stat().st_size
            store.upload(
                source,
                path,
                {VIRTUAL_SIZE: str(virtual)},
                self._progress("upload", physical, 0.0),
            )
        new = _sized(dest, path, virtual, physical)
        return CopyCmdAnswer(commandId=cmd.commandId, result=True, newData=new)

    def fetch_chain(
        self, store: ObjectStore, path: str, root: Path, fmt: str, what: str
    ) -> tuple[Path, ImageInfo]:
        """`path` and every backing file it names (relative, as the directory
        driver writes deltas) downloaded into `root`, each where it is on the
        store; the top's info once the whole chain is checked to stay inside
        `root`. A template names no backing file: one that does is refused."""
        base = root.resolve()
        top = final = contained(root, path)
        layer_fmt = fmt
        for _ in range(_MAX_CHAIN):
            info = self._fetched(store, path, final, root, layer_fmt, what)
            if info.backing_file is None:
                return top, self.images.checked_source(top, root, fmt, what)
            if info.backing_format not in ("qcow2", "raw"):
                raise AgentFailure(
                    f"{what} {top.name}: backing file {info.backing_file!r} "
                    "has no qcow2 or raw format recorded"
                )
            backing = (final.parent / info.backing_file).resolve()
            if not backing.is_relative_to(base) or backing == base:
                raise AgentFailure(
                    f"{what} {top.name}: backing file {info.backing_file!r} "
                    "is outside the store"
                )
            path = backing.relative_to(base).as_posix()
            final, layer_fmt = contained(root, path), info.backing_format
        raise AgentFailure(f"{what} {top.name}: backing chain deeper than {_MAX_CHAIN}")

    def _fetched(
        self,
        store: ObjectStore,
        path: str,
        final: Path,
        root: Path,
        fmt: str,
        what: str,
    ) -> ImageInfo:
        """`final`'s info, downloaded first (staged name, then rename) unless an
        earlier run left it there complete; a template that names a backing file
        is refused before it gets its name."""
        remove(temp_for(final))  # a killed run's leftover
        if final.is_file():
            return self.images.info(final, fmt)
        found = store.head(path)
        if found is None:
            raise AgentFailure(f"object {path} not found in the store")
        with parent_dirs(final, root), staged(final) as tmp:
            store.download(path, tmp, self._progress("download", found.size, 0.0))
            info = self.images.info(tmp, fmt)
            if what == "template" and info.backing_file is not None:
                raise AgentFailure(f"template has a backing file {info.backing_file!r}")
            if info.data_file is not None:
                raise AgentFailure(
                    f"{path} has an external data file {info.data_file!r}"
                )
        return info

    # ------------------------------------------------------------ deletes, revert

    def delete(self, cmd: DeleteCommand, data: DataTO) -> Answer:
        """A template's or a snapshot backup's object; already gone is done."""
        assert isinstance(data.dataStore, ImageStoreTO)
        if isinstance(data, SnapshotObjectTO):
            path = data.path or snapshot_path(data)
        elif data.path:
            path = data.path
        else:
            raise InvalidInput(data.objectType.lower(), data.uuid, "names no object")
        self.open(data.dataStore).delete(path)
        return Answer(commandId=cmd.commandId, result=True)

    def revert_snapshot(self, cmd: RevertSnapshotCommand) -> Answer:
        """The backup's chain into a temporary directory, reverted from there (the
        copy on primary, when it is still there, is read directly)."""
        snapshot = cmd.data
        on_primary = cmd.dataOnPrimaryStorage
        if (
            on_primary is not None
            and on_primary.path
            and contained(store_root(on_primary.dataStore), on_primary.path).is_file()
        ):
            return Snapshots(self.images).revert_snapshot(cmd)
        assert isinstance(snapshot.dataStore, ImageStoreTO)
        path = snapshot.path or snapshot_path(snapshot)
        with tempfile.TemporaryDirectory(prefix="storctl-revert-") as tmp:
            store = self.open(snapshot.dataStore)
            self.fetch_chain(store, path, Path(tmp), "qcow2", "snapshot")
            local = snapshot.dataStore.replace(uri=tmp, providerName="NFS")
            moved = cmd.replace(data=snapshot.replace(dataStore=local, path=path))
            return Snapshots(self.images).revert_snapshot(moved)

    def _progress(self, what: str, total: int, start: float) -> Progress:
        """The deadline checked and the run's progress reported as bytes move."""
        run = self.run

        def report(done: int) -> None:
            run.check_deadline([what, str(total)])
            if run.on_progress is not None and total:
                run.on_progress(start + (1.0 - start) * min(done / total, 1.0))

        return report


def _local_file(url: str, roots: list[str]) -> Path | None:
    """The real path a `file://` URL names, inside the allowed roots (the URL
    policy, checked again here); None for any other URL (fetched)."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme != "file":
        return None
    if parsed.query or parsed.fragment:
        raise InvalidInput("url", url, "a file:// url must name a local path")
    return checked_file(url, roots)


def _identity(info: os.stat_result) -> tuple[int, ...]:
    """What changes when a file is replaced or written (ctime cannot be set)."""
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def _format_of(data: DataTO) -> str:
    if isinstance(data, SnapshotObjectTO):
        return "qcow2"
    return image_format(data.format)


def _is_directory(store: object) -> bool:
    if not isinstance(store, ImageStoreTO):
        return False
    return store.uri.startswith(("/", "file://"))


def _measured(found: ObjectHead) -> bool:
    return VIRTUAL_SIZE in found.metadata and SHA256 in found.metadata


def _sized(dest: DataTO, path: str, virtual: int, physical: int) -> Any:
    """`dest` at `path` with the sizes its kind of object records."""
    fields = {f.name for f in dataclasses.fields(dest)}
    changes: dict[str, Any] = {"path": path}
    if "size" in fields:
        changes["size"] = virtual
    if "physicalSize" in fields:
        changes["physicalSize"] = physical
    return dest.replace(**changes)


def _scaled(run: CommandRun, low: float, high: float) -> CommandRun:
    """`run` with its progress mapped onto [low, high], the same deadline."""
    report = run.on_progress
    scaled = dataclasses.replace(
        run,
        on_progress=None
        if report is None
        else (lambda done: report(low + (high - low) * done)),
    )
    scaled.deadline = run.deadline
    return scaled
