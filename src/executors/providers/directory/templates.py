"""Templates on directories: the SSVM's download into an image store, and the copy
of a template into a pool's base image cache (`copyTemplateToPrimaryStorage`).

An image store is a directory (CloudStack's NFS secondary, reached by the SSVM); a
template lands at its install path (`template/tmpl/<id>/<uuid>.qcow2`) only once it
is complete, its checksum matches and `qemu-img` reads it as a standalone image.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from executors.paths import contained, pool_root, store_root
from executors.providers.directory.images import Images, image_format
from executors.providers.directory.staging import remove, staged, temp_for
from executors.providers.driver import AgentFailure, os_error_line
from executors.providers.url_check import open_checked, open_file_checked
from executors.qemu import ImageInfo
from ledger.commands import (
    Answer,
    CopyCmdAnswer,
    CopyCommand,
    DownloadAnswer,
    DownloadCommand,
    TemplateObjectTO,
)
from ledger.errors import InvalidInput

_CHUNK = 1 << 20
_SHA256 = re.compile(r"(?:sha256:|\{sha-?256\})?([0-9a-f]{64})")


@dataclass
class Templates:
    """The template operations of one command's run."""

    images: Images

    def download(self, cmd: DownloadCommand) -> Answer:
        """The SSVM's `DownloadCommand`: fetch, verify, then publish at installPath."""
        root = store_root(cmd.store)
        fmt = image_format(cmd.format)
        expected = _expected_sha256(cmd.checksum)
        final = contained(root, cmd.installPath)
        remove(temp_for(final))  # a crashed earlier run's leftover
        if final.exists():
            info = self.verify_template(final, fmt)
            digest = _check_digest(expected, _sha256_of(final))
        else:
            base = root.resolve()
            created = [p for p in final.parents if p != base and p.is_relative_to(base)]
            created = [p for p in created if not p.exists()]
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                with staged(final) as tmp:
                    digest = _check_digest(
                        expected,
                        self.fetch(
                            cmd.url, tmp, cmd.allowedRoots, cmd.allowedInternalSites
                        ),
                    )
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

    def fetch(
        self,
        url: str,
        dest: Path,
        roots: list[str] | None = None,
        sites: list[str] | None = None,
    ) -> str:
        """Copy `url` (file, http, https; no shell, no curl) to `dest`; its sha256.
        A file must lie under `roots` once its links are followed; a host must
        not resolve inside the cloud unless `sites` allows it, redirects too."""
        run = self.images.run
        parsed = urllib.parse.urlparse(url)
        source: IO[bytes] | Any
        if parsed.scheme == "file":
            source = open_file_checked(url, roots or [])
            total = os.fstat(source.fileno()).st_size
        elif parsed.scheme in ("http", "https"):
            timeout = max(min(run.remaining(), 300.0), 0.001)
            try:
                source = open_checked(url, sites or [], timeout)
            except urllib.error.URLError as exc:
                raise AgentFailure(os_error_line(exc)) from exc
            total = int(source.headers.get("Content-Length") or 0)
        else:
            raise InvalidInput("url", url, "only file, http and https are supported")
        digest, done = hashlib.sha256(), 0
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        with source, os.fdopen(os.open(dest, flags, 0o644), "wb") as sink:
            while chunk := source.read(_CHUNK):
                run.check_deadline(["download", url])
                digest.update(chunk)
                sink.write(chunk)
                done += len(chunk)
                if total and run.on_progress is not None:
                    run.on_progress(min(done / total, 1.0))
            sink.flush()
            os.fsync(sink.fileno())
        if total and done != total:
            raise AgentFailure(f"download incomplete: got {done} of {total} bytes")
        return digest.hexdigest()

    def verify_template(self, path: Path, fmt: str) -> ImageInfo:
        """Refuse a template that is not `fmt` or that points at a backing file."""
        try:
            info = self.images.info(path, fmt)
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
        src_fmt = image_format(src.format)
        final = contained(pool_root(dest.dataStore), dest.uuid)
        info = self.images.finished(final, "qcow2")
        if info is None:
            verified = self.verify_template(source, src_fmt)
            info = self.images.standalone_copy(source, src_fmt, verified, final)
        new = dest.replace(
            path=dest.uuid,
            format="QCOW2",
            size=info.virtual_size,
            physicalSize=final.stat().st_size,
        )
        return CopyCmdAnswer(commandId=cmd.commandId, result=True, newData=new)


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
