"""The `swift` provider end to end through the CLI, against the lab's RGW Swift
API (auth v1).

The same life as `test_s3` (template into the container as a Static Large Object
above the segment size, deploy through the staging cache, backups, a restore, a
revert, a template from a volume, deletes, eviction), and the same faults: refused
`store add`s, a wrong key and a container removed under the store are recorded
answers with Swift's words and no secret, and the next operation works once the
fault is cleared. RGW's containers are the user's S3 buckets: the checks list the
objects through S3.
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
    SWIFT,
    WRONG,
    Recording,
    Zone,
    add_stores,
    assert_no_secret_anywhere,
    image,
    make_zone,
    s3_client,
)

MiB = 1 << 20
pytestmark = [
    pytest.mark.qemu,
    pytest.mark.skipif(shutil.which("qemu-io") is None, reason="no qemu-io"),
]


@pytest.fixture
def zone(tmp_path: Path, lab_backends: Lab) -> Iterator[Zone]:
    yield from make_zone(tmp_path, lab_backends, SWIFT)


def test_a_template_backups_and_a_derived_template_live_in_swift_via_the_cache(
    zone,
):
    whole_life(zone)


def test_a_large_template_is_a_static_large_object_whose_delete_takes_its_segments(
    zone,
):
    add_stores(zone)
    big = register(zone, "big", SWIFT.part_size + 4 * MiB)
    key = template_key(big)
    head = zone.swift_head(key)
    assert head["X-Static-Large-Object"] == "True"
    assert int(head["X-Object-Meta-Virtual-Size"]) == big["size"]
    assert int(head["Content-Length"]) == big["physicalsize"]
    segments = {k for k in zone.objects() if k.startswith(f"{key}.segments/")}
    assert len(segments) == 2
    zone.cli.ok("template", "delete", "big")
    assert zone.objects() == {}


def test_store_add_refuses_what_swift_refuses_in_one_line(zone):
    refused_store_adds(
        zone, f"swift://{zone.bucket}/x?auth=http://127.0.0.1:1/auth/1.0", "bad-swift"
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
    source = image(zone.root / "img" / "t.qcow2", MiB)
    failed = wrong.run("template", "register", "t1", "--zone", "z1", "--url",
                       source.as_uri(), "--format", "qcow2")  # fmt: skip
    assert failed.code != 0, failed
    [details] = failed_downloads(zone)
    assert "refused the credentials (HTTP 401" in details, details
    assert WRONG not in details
    assert WRONG not in failed.err + failed.out
    assert zone.objects() == {}
    again = register(zone, "t2", MiB)
    assert template_key(again) in zone.objects()
    zone.cli.seen += wrong.seen
    assert_no_secret_anywhere(zone)


@pytest.fixture
def own_container(tmp_path: Path, lab_backends: Lab) -> Iterator[Zone]:
    """A zone on a container of its own, made for the test and removed after."""
    bucket = f"storctl-t-{uuid.uuid4().hex[:12]}"
    client = s3_client(lab_backends)
    client.create_bucket(Bucket=bucket)
    try:
        yield from make_zone(tmp_path, lab_backends, SWIFT, bucket=bucket)
    finally:
        if bucket in {b["Name"] for b in client.list_buckets()["Buckets"]}:
            client.delete_bucket(Bucket=bucket)


def test_a_container_removed_under_the_store_fails_the_download_cleanly(
    own_container,
):
    zone = own_container
    add_stores(zone)
    zone.s3.delete_bucket(Bucket=zone.bucket)
    source = image(zone.root / "img" / "t.qcow2", MiB)
    failed = zone.cli.run("template", "register", "t1", "--zone", "z1", "--url",
                          source.as_uri(), "--format", "qcow2")  # fmt: skip
    assert failed.code != 0, failed
    [details] = failed_downloads(zone)
    assert "HTTP 404" in details, details
    zone.s3.create_bucket(Bucket=zone.bucket)
    assert zone.objects() == {}  # nothing half-made
    again = register(zone, "t2", MiB)
    assert set(zone.objects()) == {template_key(again)}
    assert_no_secret_anywhere(zone)
