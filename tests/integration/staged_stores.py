"""What `test_s3` and `test_swift` share: a zone whose image store is an object
store in the lab (a unique prefix of the lab's bucket, removed afterwards), its
staging cache, the lab's S3 view of the bucket, and the secret checks.

RGW's Swift containers are the same user's S3 buckets, so one boto3 client lists
and checks what either provider wrote.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from executors.providers.s3.bucket import TRANSFER
from executors.providers.swift.container import SEGMENT
from tests.conftest import Lab
from tests.integration.conftest import Result, Storctl, ledger_events

MiB = 1 << 20


def s3_client(lab: Lab) -> Any:
    import boto3
    from botocore.config import Config

    s3 = lab["lab-s3"]
    return boto3.client(
        "s3",
        endpoint_url=s3["endpoint"],
        aws_access_key_id=s3["access_key"],
        aws_secret_access_key=s3["secret_key"],
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}),
    )


def secrets(lab: Lab) -> list[str]:
    return [
        lab["lab-s3"]["access_key"],
        lab["lab-s3"]["secret_key"],
        lab["lab-swift"]["key"],
    ]


@dataclass(frozen=True)
class Backend:
    """One object store provider, as `store add` names it against the lab."""

    provider: str
    credentials: str
    part_size: int  # what makes an upload multipart (S3) or segmented (Swift)

    def url(self, lab: Lab, bucket: str, prefix: str) -> str:
        if self.provider == "s3":
            return f"s3://{bucket}/{prefix}?endpoint={lab['lab-s3']['endpoint']}"
        return f"swift://{bucket}/{prefix}?auth={lab['lab-swift']['auth_url']}"


S3 = Backend("s3", "lab-s3", TRANSFER.multipart_chunksize)
SWIFT = Backend("swift", "lab-swift", SEGMENT)


@dataclass
class Recording(Storctl):
    """`Storctl` that keeps every stdout and stderr, for the secret checks."""

    seen: list[str] = field(default_factory=list)

    def run(self, *args: str, **kw: Any) -> Result:
        result = super().run(*args, **kw)
        self.seen += [result.out, result.err]
        return result


@dataclass
class Zone:
    cli: Recording
    root: Path
    lab: Lab
    backend: Backend
    bucket: str
    prefix: str
    s3: Any

    def objects(self) -> dict[str, dict[str, Any]]:
        """The objects under this zone's prefix, by key below it."""
        out: dict[str, dict[str, Any]] = {}
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{self.prefix}/"
        )
        for page in pages:
            for obj in page.get("Contents", []):
                out[obj["Key"].removeprefix(f"{self.prefix}/")] = obj
        return out

    def images(self) -> dict[str, dict[str, Any]]:
        """`objects` but a Swift large object's segments."""
        return {k: v for k, v in self.objects().items() if ".segments/" not in k}

    def size(self, key: str) -> int:
        """The object's size as its own API says (a Swift SLO's listing shows
        its manifest)."""
        if self.backend.provider == "swift":
            return int(self.swift_head(key)["Content-Length"])
        return int(self.head(key)["ContentLength"])

    def head(self, key: str) -> dict[str, Any]:
        return dict(self.s3.head_object(Bucket=self.bucket, Key=f"{self.prefix}/{key}"))

    def swift_head(self, key: str) -> dict[str, str]:
        swift = self.lab["lab-swift"]
        auth = urllib.request.Request(  # noqa: S310 (the lab's http URL)
            swift["auth_url"],
            headers={"X-Auth-User": swift["user"], "X-Auth-Key": swift["key"]},
        )
        with urllib.request.urlopen(auth, timeout=30) as answer:  # noqa: S310
            url, token = answer.headers["X-Storage-Url"], answer.headers["X-Auth-Token"]
        head = urllib.request.Request(  # noqa: S310 (the lab's http URL)
            f"{url}/{self.bucket}/{self.prefix}/{key}",
            method="HEAD",
            headers={"X-Auth-Token": token},
        )
        with urllib.request.urlopen(head, timeout=30) as answer:  # noqa: S310
            return dict(answer.headers)

    def cache_files(self) -> set[str]:
        stage = self.root / "stage"
        return {str(p.relative_to(stage)) for p in stage.rglob("*") if p.is_file()}

    def rows(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        return self.cli.db_rows(sql, list(params))


def make_zone(
    tmp_path: Path, lab: Lab, backend: Backend, bucket: str | None = None
) -> Iterator[Zone]:
    """Host kvm-1, filesystem pool p1, the object store `os1` under a fresh
    prefix and the cache `stage`; every object under the prefix removed after."""
    for d in ("p1", "stage", "img"):
        (tmp_path / d).mkdir()
    profiles = profile_files(tmp_path, lab)
    env = {"STORCTL_CREDENTIALS": str(profiles["good"])}
    cli = Recording(str(tmp_path / "ledger.db"), env=env)
    bucket = bucket or lab["lab-s3"]["bucket"]
    prefix = f"test-{backend.provider}-{uuid.uuid4().hex[:12]}"
    zone = Zone(cli, tmp_path, lab, backend, bucket, prefix, s3_client(lab))
    cli.ok("host", "add", "kvm-1", "--zone", "z1", "--cluster", "c1")
    cli.ok("pool", "add", "p1", "--zone", "z1", "--cluster", "c1", "--path",
           str(tmp_path / "p1"), "--capacity", "10G")  # fmt: skip
    cli.ok("config", "set", "template.url.allowed.roots", str(tmp_path / "img"))
    try:
        yield zone
    finally:
        remove_prefix(zone)


WRONG = "wrong-" + uuid.uuid4().hex


def profile_files(tmp_path: Path, lab: Lab) -> dict[str, Path]:
    """`good`: the lab's profile plus `bad-s3` and `bad-swift` (wrong keys);
    `wrong`: the lab's profile names with wrong keys (a key changed under a store)."""
    text = lab.credentials.read_text()
    s3, swift = lab["lab-s3"], lab["lab-swift"]

    def table(name: str, profile: dict[str, Any], **wrong: str) -> str:
        values = {**profile, **wrong}
        body = "\n".join(f"{k} = {json.dumps(v)}" for k, v in values.items())
        return f"\n[{name}]\n{body}\n"

    bad = table("bad-s3", s3, secret_key=WRONG) + table("bad-swift", swift, key=WRONG)
    wrong = table("lab-s3", s3, secret_key=WRONG) + table("lab-swift", swift, key=WRONG)
    out = {"good": tmp_path / "good.toml", "wrong": tmp_path / "wrong.toml"}
    out["good"].write_text(text + bad)
    out["wrong"].write_text(wrong)
    for path in out.values():
        path.chmod(0o600)
    return out


def add_stores(zone: Zone) -> dict[str, Any]:
    backend = zone.backend
    store = zone.cli.ok(
        "store", "add", "os1", "--zone", "z1", "--provider", backend.provider,
        "--url", backend.url(zone.lab, zone.bucket, zone.prefix),
        "--credentials", backend.credentials,
    )  # fmt: skip
    zone.cli.ok("store", "add", "stage", "--zone", "z1", "--role", "cache",
                "--path", str(zone.root / "stage"))  # fmt: skip
    return dict(store)


def remove_prefix(zone: Zone) -> None:
    s3 = zone.s3
    try:
        for key in zone.objects():
            s3.delete_object(Bucket=zone.bucket, Key=f"{zone.prefix}/{key}")
        uploads = s3.list_multipart_uploads(Bucket=zone.bucket, Prefix=zone.prefix)
        for up in uploads.get("Uploads", []):
            s3.abort_multipart_upload(
                Bucket=zone.bucket, Key=up["Key"], UploadId=up["UploadId"]
            )
    except s3.exceptions.NoSuchBucket:
        pass


def image(path: Path, data: int, pattern: int = 0x5A, size: str = "64M") -> Path:
    """A qcow2 of virtual `size` whose first `data` bytes are written."""
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), size],
                   check=True)  # fmt: skip
    if data:
        qemu_io(path, f"write -P {pattern} 0 {data}")
    return path


def qemu_io(path: Path, command: str, *, read_only: bool = False) -> str:
    argv = ["qemu-io", *(["-r"] if read_only else []), "-f", "qcow2", "-c", command,
            str(path)]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    return proc.stdout + proc.stderr


def reads(path: Path, pattern: int) -> bool:
    out = qemu_io(path, f"read -P {pattern} 0 64k", read_only=True)
    return "read 65536/65536" in out and "Pattern verification failed" not in out


def write(path: Path, pattern: int) -> None:
    assert "wrote 65536/65536" in qemu_io(path, f"write -P {pattern} 0 64k")


def volume_file(zone: Zone, ref: str) -> Path:
    return zone.root / "p1" / zone.cli.volume(ref)["path"]


def assert_no_secret_anywhere(zone: Zone) -> None:
    """No key in any stored event, any projected table, any CLI output."""
    secret_values = secrets(zone.lab)
    events = json.dumps([e.state for e in ledger_events(zone.cli.db)])
    tables = [
        r["name"]
        for r in zone.rows("select name from sqlite_master where type = 'table'")
    ]
    rows = json.dumps(
        {t: zone.rows(f'select * from "{t}"') for t in tables}, default=str
    )
    seen = "\n".join(zone.cli.seen)
    assert events
    assert rows
    assert seen
    for value in secret_values:
        assert value not in events, "a secret is in a stored event"
        assert value not in rows, "a secret is in a projected table"
        assert value not in seen, "a secret is in the CLI's output"
