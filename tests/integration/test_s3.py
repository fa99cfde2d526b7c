"""The `s3` provider end to end through the CLI, against the lab's Ceph RGW.

A template registered into an S3 store (multipart above the part size) reaches a
filesystem pool through the zone's staging cache; snapshot backups, a volume from
a backup, a template from a volume pass through the cache; deletes remove the
objects; the cache evicts past `storage.cache.size`; faults (a wrong key, a bucket
removed under the store) are recorded answers with S3's own words and no secret,
and the next operation once the fault is cleared succeeds. Each test works under a
prefix of its own in the shared lab bucket and removes what it made.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Lab
from tests.integration.conftest import ledger_events
from tests.integration.staged_flows import (
    refused_store_adds,
    register,
    template_key,
    whole_life,
)
from tests.integration.staged_stores import (
    S3,
    WRONG,
    Recording,
    Zone,
    add_stores,
    assert_no_secret_anywhere,
    image,
    make_zone,
    s3_client,
)

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.skipif(shutil.which("qemu-io") is None, reason="no qemu-io"),
]


@pytest.fixture
def zone(tmp_path: Path, lab_backends: Lab) -> Iterator[Zone]:
    yield from make_zone(tmp_path, lab_backends, S3)


def test_a_template_backups_and_a_derived_template_live_in_s3_via_the_cache(zone):
    whole_life(zone)


def test_a_multipart_template_is_one_object_with_its_measures(zone):
    add_stores(zone)
    tiny = register(zone, "tiny", S3.part_size + 4 * (1 << 20))
    head = zone.head(template_key(tiny))
    assert head["ETag"].strip('"').endswith("-2")  # two parts
    assert int(head["Metadata"]["virtual-size"]) == tiny["size"]
    assert len(head["Metadata"]["sha256"]) == 64
    uploads = zone.s3.list_multipart_uploads(Bucket=zone.bucket, Prefix=zone.prefix)
    assert not uploads.get("Uploads")


def test_store_add_refuses_what_s3_refuses_in_one_line(zone):
    refused_store_adds(
        zone, f"s3://{zone.bucket}/x?endpoint=http://127.0.0.1:1", "bad-s3"
    )


def failed_downloads(zone: Zone) -> list[str]:
    return [
        e.state["answer"]["details"]
        for e in ledger_events(zone.cli.db)
        if e.topic.endswith("DownloadAnswered") and not e.state["answer"]["result"]
    ]


def test_a_wrong_key_is_a_recorded_failure_then_the_fixed_key_works(zone):
    add_stores(zone)
    env = {"STORCTL_CREDENTIALS": str(zone.root / "wrong.toml")}
    wrong = Recording(zone.cli.db, env=env)
    source = image(zone.root / "img" / "t.qcow2", 1 << 20)
    failed = wrong.run("template", "register", "t1", "--zone", "z1", "--url",
                       source.as_uri(), "--format", "qcow2")  # fmt: skip
    assert failed.code != 0, failed
    [details] = failed_downloads(zone)
    assert "refused the credentials (HTTP 403 Forbidden)" in details, details
    assert WRONG not in details
    assert WRONG not in failed.err + failed.out
    assert zone.objects() == {}
    again = register(zone, "t2", 1 << 20)
    assert template_key(again) in zone.objects()
    zone.cli.seen += wrong.seen
    assert_no_secret_anywhere(zone)


@pytest.fixture
def own_bucket(tmp_path: Path, lab_backends: Lab) -> Iterator[Zone]:
    """A zone on a bucket of its own, made for the test and removed after."""
    bucket = f"storctl-t-{uuid.uuid4().hex[:12]}"
    client = s3_client(lab_backends)
    client.create_bucket(Bucket=bucket)
    try:
        yield from make_zone(tmp_path, lab_backends, S3, bucket=bucket)
    finally:
        if bucket in {b["Name"] for b in client.list_buckets()["Buckets"]}:
            client.delete_bucket(Bucket=bucket)


def test_a_bucket_removed_under_the_store_fails_the_download_cleanly(own_bucket):
    zone = own_bucket
    add_stores(zone)
    zone.s3.delete_bucket(Bucket=zone.bucket)
    source = image(zone.root / "img" / "t.qcow2", 1 << 20)
    failed = zone.cli.run("template", "register", "t1", "--zone", "z1", "--url",
                          source.as_uri(), "--format", "qcow2")  # fmt: skip
    assert failed.code != 0, failed
    [details] = failed_downloads(zone)
    assert "NoSuchBucket" in details, details
    zone.s3.create_bucket(Bucket=zone.bucket)
    assert zone.objects() == {}  # nothing half-made
    again = register(zone, "t2", 1 << 20)
    assert set(zone.objects()) == {template_key(again)}
    assert_no_secret_anywhere(zone)
