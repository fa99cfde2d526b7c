"""`ObjectStore` on OpenStack Swift (auth v1), with nothing but `urllib`.

Auth v1: a GET of the auth URL with `X-Auth-User`/`X-Auth-Key` answers the
storage URL and a token (checked to be an http(s) URL before it is used). Objects
up to one segment go up in one PUT; larger ones as a Static Large Object: the
segments (`<key>.segments/<n>`, each PUT with its MD5 as `ETag`, a few at a time)
then the manifest, so the object appears only once complete. A failed upload
deletes the segments it made; a repeat deletes a killed run's leftovers first;
a delete removes the manifest with its segments (`multipart-manifest=delete`).
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from executors.credentials import resolve
from executors.providers.driver import AgentFailure
from executors.providers.s3.location import SwiftLocation, checked_endpoint, parse_swift
from executors.providers.s3.objects import (
    ObjectHead,
    ObjectStore,
    Progress,
    Secrets,
    required,
)
from ledger.commands import ImageStoreTO
from ledger.errors import InvalidInput

MiB = 1 << 20
SEGMENT = 32 * MiB
PARALLEL = 4
_META = "x-object-meta-"
_CHUNK = 1 * MiB
_TIMEOUT = 60.0
KEYS = ("user", "key")


def open_container(store: ImageStoreTO) -> ObjectStore:
    """The container an image store's location names, with its credentials."""
    if not store.credentials:
        raise AgentFailure(f"store {store.name} names no credentials")
    return Container.reach(parse_swift(store.uri), resolve(store.credentials))


def check(location: str, credentials: Mapping[str, Any]) -> None:
    """`Provider.check`: authenticate, then HEAD the container; refused in one
    line that names no key."""
    where = parse_swift(location)
    try:
        container = Container.reach(where, credentials)
        if container.request("HEAD", "")[0] == 404:
            raise AgentFailure(f"no container {where.container} (HTTP 404)")
    except AgentFailure as exc:
        raise InvalidInput("location", location, str(exc)) from None


@dataclass
class Container:
    """One container under one prefix (`ObjectStore`)."""

    location: SwiftLocation
    storage_url: str
    token: str
    secrets: Secrets

    @classmethod
    def reach(
        cls, location: SwiftLocation, credentials: Mapping[str, Any]
    ) -> Container:
        user, key = required(credentials, KEYS)
        secrets = Secrets((key,))
        request = urllib.request.Request(  # noqa: S310 (checked http(s) URL)
            location.auth, headers={"X-Auth-User": user, "X-Auth-Key": key}
        )
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT) as answer:  # noqa: S310
                url = answer.headers.get("X-Storage-Url", "")
                token = answer.headers.get("X-Auth-Token", "")
        except urllib.error.HTTPError as exc:
            why = _words(exc)
            if exc.code in (401, 403):
                why = f"the auth endpoint refused the credentials ({why})"
            raise secrets.failure(f"swift auth at {location.auth}", why) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise secrets.failure(f"cannot reach {location.auth}", reason) from None
        if not url or not token:
            raise AgentFailure(f"swift auth at {location.auth} gave no storage URL")
        try:
            storage = checked_endpoint(url, "storage URL", path=True)
        except InvalidInput as exc:
            raise AgentFailure(str(exc)) from None
        return cls(location, storage, token, secrets)

    # ---------------------------------------------------------------- requests

    def url(self, key: str, query: str = "") -> str:
        base = f"{self.storage_url}/{urllib.parse.quote(self.location.container)}"
        path = f"{base}/{urllib.parse.quote(key)}" if key else base
        return f"{path}?{query}" if query else path

    def request(
        self,
        method: str,
        key: str,
        *,
        query: str = "",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        ok: tuple[int, ...] = (404,),
    ) -> tuple[int, Any, bytes]:
        """(status, headers, body); a status outside 2xx and `ok` is a failure."""
        request = urllib.request.Request(  # noqa: S310 (checked http(s) URL)
            self.url(key, query),
            data=body,
            method=method,
            headers={"X-Auth-Token": self.token, **(headers or {})},
        )
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT) as answer:  # noqa: S310
                return answer.status, answer.headers, answer.read()
        except urllib.error.HTTPError as exc:
            if exc.code in ok:
                return exc.code, exc.headers, b""
            raise self.secrets.failure(
                f"swift {method} {key or '/'}", _words(exc)
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if body is not None and isinstance(reason, _CUT) and key:
                reason = self._why_cut(reason)
            raise self.secrets.failure(f"swift {method} {key or '/'}", reason) from None

    def _why_cut(self, cut: OSError) -> object:
        """An upload the server cut (a broken pipe: it answered and closed before
        the body was sent, so urllib never read the answer): the container's own
        status, asked once, says why, e.g. `HTTP 404` for a container removed."""
        try:
            status, _, _ = self.request("HEAD", "", ok=(404,))
        except AgentFailure as exc:
            return f"{exc} (the upload was cut: {cut})"
        if status == 404:
            return (
                f"HTTP 404 Not Found: container {self.location.container}"
                f" does not exist (the upload was cut: {cut})"
            )
        return cut

    # ---------------------------------------------------------------- ObjectStore

    def head(self, path: str) -> ObjectHead | None:
        status, headers, _ = self.request("HEAD", self.location.key(path))
        if status == 404:
            return None
        metadata = {
            k.lower().removeprefix(_META): v
            for k, v in headers.items()
            if k.lower().startswith(_META)
        }
        return ObjectHead(int(headers.get("Content-Length", 0)), metadata)

    def upload(
        self, source: Path, path: str, metadata: Mapping[str, str], progress: Progress
    ) -> None:
        key = self.location.key(path)
        self._remove_segments(key)
        meta = {f"X-Object-Meta-{k}": v for k, v in metadata.items()}
        size = source.stat().st_size
        if size <= SEGMENT:
            body = source.read_bytes()
            etag = {"ETag": hashlib.md5(body, usedforsecurity=False).hexdigest()}
            self.request("PUT", key, body=body, headers={**meta, **etag}, ok=())
            progress(size)
            return
        try:
            manifest = self._segments(source, key, size, progress)
            self.request(
                "PUT",
                key,
                query="multipart-manifest=put",
                body=json.dumps(manifest).encode(),
                headers={**meta, "Content-Type": "application/octet-stream"},
                ok=(),
            )
        except BaseException:
            self._remove_segments(key)
            raise

    def download(self, path: str, dest: Path, progress: Progress) -> None:
        key = self.location.key(path)
        request = urllib.request.Request(  # noqa: S310 (checked http(s) URL)
            self.url(key), headers={"X-Auth-Token": self.token}
        )
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            with (
                urllib.request.urlopen(request, timeout=_TIMEOUT) as answer,  # noqa: S310
                os.fdopen(os.open(dest, flags, 0o644), "wb") as sink,
            ):
                total = int(answer.headers.get("Content-Length") or 0)
                done = 0
                while chunk := answer.read(_CHUNK):
                    sink.write(chunk)
                    done += len(chunk)
                    progress(done)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise AgentFailure(
                    f"object {key} not found in container {self.location.container}"
                ) from None
            raise self.secrets.failure(f"swift GET {key}", _words(exc)) from None
        except urllib.error.URLError as exc:
            raise self.secrets.failure(f"swift GET {key}", exc.reason) from None
        if total and done != total:
            raise AgentFailure(f"download of {key} incomplete: {done} of {total} bytes")

    def delete(self, path: str) -> None:
        key = self.location.key(path)
        status, headers, _ = self.request("HEAD", key)
        large = status != 404 and headers.get("X-Static-Large-Object") == "True"
        query = "multipart-manifest=delete" if large else ""
        self.request("DELETE", key, query=query)
        self._remove_segments(key)

    # ---------------------------------------------------------------- segments

    def _segments(
        self, source: Path, key: str, size: int, progress: Progress
    ) -> list[dict[str, Any]]:
        """Upload `source` as segments of `key`, a few at a time; SLO's manifest."""
        offsets = list(range(0, size, SEGMENT))
        done = [0]
        fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC)

        def put(index: int) -> dict[str, Any]:
            body = os.pread(fd, SEGMENT, offsets[index])
            name = f"{key}.segments/{index:08d}"
            etag = hashlib.md5(body, usedforsecurity=False).hexdigest()
            self.request("PUT", name, body=body, headers={"ETag": etag}, ok=())
            done[0] += len(body)
            progress(done[0])
            container = self.location.container
            return {
                "path": f"/{container}/{name}",
                "etag": etag,
                "size_bytes": len(body),
            }

        try:
            with concurrent.futures.ThreadPoolExecutor(PARALLEL) as pool:
                return list(pool.map(put, range(len(offsets))))
        finally:
            os.close(fd)

    def _remove_segments(self, key: str) -> None:
        """Delete the segments under `<key>.segments/` (a failed or killed upload's,
        or those a plain delete left)."""
        prefix = f"{key}.segments/"
        query = urllib.parse.urlencode({"prefix": prefix, "format": "json"})
        _, _, body = self.request("GET", "", query=query)
        for entry in json.loads(body or b"[]"):
            self.request("DELETE", str(entry["name"]))


#: how a server that answered early and closed shows to a sender still sending
_CUT = (BrokenPipeError, ConnectionResetError)


def _words(exc: urllib.error.HTTPError) -> str:
    """The backend's own words: the status, its reason, a short plain body."""
    try:
        body = exc.read(300).decode("utf-8", "replace")
    except OSError:
        body = ""
    text = " ".join(body.split()) if "<" not in body else ""
    return f"HTTP {exc.code} {exc.reason}" + (f": {text}" if text else "")
