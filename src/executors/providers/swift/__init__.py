"""`swift`: an image store in an OpenStack Swift container (CloudStack's Swift
image store provider), reached through Swift's auth v1.

A location is `swift://CONTAINER[/PREFIX]?auth=http(s)://HOST[:PORT]/auth/1.0`,
checked whole before anything connects to it; the store needs credentials
(`--credentials NAME`: `user`, `key`), which `check` uses to authenticate and
HEAD the container before `store add` writes anything. Everything else is the
`s3` provider's: the same operations over `ObjectStore` (`container` here), the
same staging cache between the store and the pools.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from executors.providers.provider import Provider, Role
from executors.providers.s3 import OBJECT_STORE
from executors.providers.s3.driver import object_driver
from executors.providers.s3.location import parse_swift
from executors.providers.s3.objects import ObjectStore
from ledger.commands import ImageStoreTO


def _validate(location: str) -> str:
    return parse_swift(location).canonical


def _open(store: ImageStoreTO) -> ObjectStore:
    from executors.providers.swift.container import open_container

    return open_container(store)


def _check(location: str, credentials: Mapping[str, Any]) -> None:
    from executors.providers.swift.container import check

    check(location, credentials)


PROVIDER = Provider(
    name="swift",
    roles=frozenset({Role.IMAGE}),
    recorded_as="Swift",
    schemes=("swift",),
    validate=_validate,
    capabilities=OBJECT_STORE,
    driver=object_driver("swift", _open),
    summary="Image store in a Swift container (auth v1), staged through a cache "
    "store (CloudStack's Swift image store).",
    credentials=True,
    check=_check,
)
