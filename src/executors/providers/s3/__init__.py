"""`s3`: an image store in an S3 bucket (CloudStack's S3 image store provider).

A location is `s3://BUCKET[/PREFIX]?endpoint=http(s)://HOST[:PORT][&region=R]`,
checked whole before anything connects to it (`location`), and the store needs
credentials (`--credentials NAME`: `access_key`, `secret_key`), which `check`
uses to HeadBucket before `store add` writes anything. A pool never reads S3: as
in CloudStack, a template reaches a pool through the zone's staging cache
(`needs_staging_cache`), and a snapshot's backup, a template made from a volume
and a volume restored from a backup pass through it (`CopyCommand.cacheTO`, the
KVM agent's `cache_hops`).

Modules: `location` (URLs and object keys), `objects` (what a backend offers),
`bucket` (boto3), `transfers` (the operations), `driver` (the table). boto3 is
imported only when a store is reached, so listing providers stays fast.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from executors.providers.provider import Capabilities, Provider, Role
from executors.providers.s3.driver import object_driver
from executors.providers.s3.location import parse_s3
from executors.providers.s3.objects import ObjectStore
from ledger.commands import ImageStoreTO

#: What an object store provider can do: everything passes the staging cache.
OBJECT_STORE = Capabilities(
    linked_clones=False,
    native_snapshots=False,
    needs_staging_cache=True,
    scopes=frozenset({"zone"}),
)


def _validate(location: str) -> str:
    return parse_s3(location).canonical


def _open(store: ImageStoreTO) -> ObjectStore:
    from executors.providers.s3.bucket import open_bucket

    return open_bucket(store)


def _check(location: str, credentials: Mapping[str, Any]) -> None:
    from executors.providers.s3.bucket import check

    check(location, credentials)


PROVIDER = Provider(
    name="s3",
    roles=frozenset({Role.IMAGE}),
    recorded_as="S3",
    schemes=("s3",),
    validate=_validate,
    capabilities=OBJECT_STORE,
    driver=object_driver("s3", _open),
    summary="Image store in an S3 bucket, staged through a cache store "
    "(CloudStack's S3 image store).",
    credentials=True,
    check=_check,
)
