"""`ObjectStore` on S3 (boto3): a bucket under a prefix, at an endpoint.

Path-style addressing (RGW, MinIO and SeaweedFS all take it, and a bucket name
with dots still works), SigV4, any region. Uploads go through boto3's managed
transfer (`upload_file`: multipart above the part size, parts in parallel, the
multipart upload aborted when it fails); downloads through `download_file`
(ranged GETs in parallel). A multipart upload left by a killed agent is aborted
before the same key is written again, so nothing half-made stays behind.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from boto3.exceptions import S3TransferFailedError, S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from executors.credentials import resolve
from executors.providers.driver import AgentFailure
from executors.providers.s3.location import S3Location, parse_s3
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
#: Parts of 32 MiB, 8 at a time: on the lab's loopback RGW 512 MiB goes up in
#: ~1.6 s against ~1.9 s with boto3's defaults (8 MiB parts, 10 threads), at a
#: quarter of the requests (bench/s3.py measures the whole download against them).
TRANSFER = TransferConfig(
    multipart_threshold=32 * MiB,
    multipart_chunksize=32 * MiB,
    max_concurrency=8,
    use_threads=True,
)
KEYS = ("access_key", "secret_key")
_MISSING = ("404", "NoSuchKey", "NotFound")
_REFUSED = ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch")


def open_bucket(store: ImageStoreTO) -> ObjectStore:
    """The bucket an image store's location names, with its credentials."""
    if not store.credentials:
        raise AgentFailure(f"store {store.name} names no credentials")
    location = parse_s3(store.uri)
    return Bucket.reach(location, resolve(store.credentials))


def check(location: str, credentials: Mapping[str, Any]) -> None:
    """`Provider.check`: HeadBucket with the credentials named, before `store add`
    writes anything; an unreachable endpoint, refused keys or a missing bucket are
    refused in one line that names no key."""
    where = parse_s3(location)
    bucket = Bucket.reach(where, credentials, attempts=1)
    try:
        bucket.client.head_bucket(Bucket=where.bucket)
    except ClientError as exc:
        code = _code(exc)
        if code in (
            "403",
            "AccessDenied",
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
        ):
            why = f"the endpoint refused the credentials ({_said(exc)})"
        elif code in ("404", "NoSuchBucket", "NotFound"):
            why = f"no bucket {where.bucket} at {where.endpoint} ({_said(exc)})"
        else:
            why = f"HeadBucket {where.bucket} failed: {_said(exc)}"
        raise InvalidInput("location", location, bucket.secrets.scrub(why)) from None
    except BotoCoreError as exc:
        why = bucket.secrets.scrub(f"cannot reach {where.endpoint}: {exc}")
        raise InvalidInput("location", location, why) from None


@dataclass
class Bucket:
    """One bucket under one prefix (`ObjectStore`)."""

    location: S3Location
    client: Any
    secrets: Secrets

    @classmethod
    def reach(
        cls, location: S3Location, credentials: Mapping[str, Any], attempts: int = 3
    ) -> Bucket:
        access, secret = required(credentials, KEYS)
        client = _client(
            location.endpoint, location.region or "us-east-1", access, secret, attempts
        )
        return cls(location, client, Secrets((access, secret)))

    def head(self, path: str) -> ObjectHead | None:
        key = self.location.key(path)
        try:
            found = self.client.head_object(Bucket=self.location.bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return None
            raise self._failure(f"HeadObject {key}", exc) from None
        except BotoCoreError as exc:
            raise self._failure(f"HeadObject {key}", exc) from None
        return ObjectHead(int(found["ContentLength"]), dict(found.get("Metadata", {})))

    def upload(
        self, source: Path, path: str, metadata: Mapping[str, str], progress: Progress
    ) -> None:
        key = self.location.key(path)
        self._abort_uploads(key)
        try:
            self.client.upload_file(
                str(source),
                self.location.bucket,
                key,
                ExtraArgs={"Metadata": dict(metadata)},
                Config=TRANSFER,
                Callback=_counter(progress),
            )
        except (S3UploadFailedError, ClientError, BotoCoreError) as exc:
            raise self._failure(f"upload of {key}", _cause(exc)) from None

    def download(self, path: str, dest: Path, progress: Progress) -> None:
        key = self.location.key(path)
        try:
            self.client.download_file(
                self.location.bucket,
                key,
                str(dest),
                Config=TRANSFER,
                Callback=_counter(progress),
            )
        except ClientError as exc:
            if _code(exc) in _MISSING:
                raise AgentFailure(
                    f"object {key} not found in bucket {self.location.bucket}"
                ) from None
            raise self._failure(f"download of {key}", exc) from None
        except (S3TransferFailedError, BotoCoreError) as exc:
            raise self._failure(f"download of {key}", _cause(exc)) from None

    def delete(self, path: str) -> None:
        key = self.location.key(path)
        self._abort_uploads(key)
        try:
            self.client.delete_object(Bucket=self.location.bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise self._failure(f"DeleteObject {key}", exc) from None

    def _abort_uploads(self, key: str) -> None:
        """Abort the multipart uploads a killed run left on `key`."""
        try:
            found = self.client.list_multipart_uploads(
                Bucket=self.location.bucket, Prefix=key
            )
            for upload in found.get("Uploads", []):
                if upload["Key"] == key:
                    self.client.abort_multipart_upload(
                        Bucket=self.location.bucket,
                        Key=key,
                        UploadId=upload["UploadId"],
                    )
        except (ClientError, BotoCoreError) as exc:
            raise self._failure(f"ListMultipartUploads {key}", exc) from None

    def _failure(self, what: str, exc: object) -> AgentFailure:
        why: object = exc
        if isinstance(exc, ClientError):
            why = _said(exc)
            if _code(exc) in _REFUSED:
                why = f"the endpoint refused the credentials ({why})"
        return self.secrets.failure(f"s3://{self.location.bucket}: {what}", why)


@functools.lru_cache(maxsize=16)
def _client(endpoint: str, region: str, access: str, secret: str, attempts: int) -> Any:
    """One client per endpoint and keys (building one costs ~50 ms; clients are
    thread-safe). A changed key in the profile makes a new one."""
    config = Config(
        s3={"addressing_style": "path"},
        signature_version="s3v4",
        retries={"max_attempts": attempts, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
        max_pool_connections=TRANSFER.max_request_concurrency,
    )
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        config=config,
    )


def _counter(progress: Progress) -> Any:
    """boto3's callback (bytes per call, from worker threads) as a running total."""
    lock = threading.Lock()
    done = [0]

    def count(amount: int) -> None:
        with lock:
            done[0] += amount
            total = done[0]
        progress(total)

    return count


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _said(exc: object) -> str:
    """The backend's own words: its error code and message (HTTP status for HEAD)."""
    if not isinstance(exc, ClientError):
        return str(exc)
    error = exc.response.get("Error", {})
    code, message = str(error.get("Code", "")), str(error.get("Message", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code.isdigit() or not code:
        return f"HTTP {status or code} {message}".strip()
    return f"{code}: {message}" if message else code


def _cause(exc: BaseException) -> object:
    """The ClientError a boto3 transfer error wraps, when it wraps one."""
    inner = exc.__cause__ or exc.__context__
    return inner if isinstance(inner, ClientError) else exc
