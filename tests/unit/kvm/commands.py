"""The commands the KVM agent's tests send, with the ids they name.

Template side: a template downloaded to an image store at `INSTALL` and copied to a
pool as `TMPL`, volumes `VOL`. Snapshot side: the volume `VOL` (a linked clone of
`BASE`), snapshots `S1`..`S3` at `snapshots/<VOL>/<uuid>.qcow2`, copies as `NEW`.
"""

from __future__ import annotations

import urllib.parse
from pathlib import PurePosixPath

from ledger.commands import (
    CopyCommand,
    CreateObjectCommand,
    DownloadCommand,
    ImageStoreTO,
    RevertSnapshotCommand,
    SnapshotObjectTO,
    TemplateObjectTO,
    VolumeObjectTO,
)
from tests.unit.kvm.helpers import MiB

TMPL = "5c6a1d7e-0b7e-4f8e-9d0a-2f3c4b5a6d7e"
VOL = "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"
INSTALL = f"template/tmpl/2/{TMPL}/{TMPL}.qcow2"
BASE = "0b5e1d7e-0b7e-4f8e-9d0a-2f3c4b5a6d7e"
S1 = "51515151-aaaa-4bbb-8ccc-000000000001"
S2 = "52525252-aaaa-4bbb-8ccc-000000000002"
S3 = "53535353-aaaa-4bbb-8ccc-000000000003"
NEW = "4e4e4e4e-1111-4222-8333-555555555555"


def download(source_url: str, store: ImageStoreTO, **kw) -> DownloadCommand:
    """The download an operator's policy allows: a file's own directory as the
    allowed root, the test's own HTTP server (on 127.0.0.1) as an allowed site."""
    parsed = urllib.parse.urlsplit(source_url)
    fields = {"format": "QCOW2", "name": "tmpl", "resourceType": "TEMPLATE"}
    if parsed.scheme == "file":
        fields["allowedRoots"] = [str(PurePosixPath(parsed.path).parent)]
    else:
        fields["allowedInternalSites"] = ["127.0.0.1"]
    fields |= {"installPath": INSTALL, "store": store} | kw
    return DownloadCommand(commandId="c-dl", url=source_url, **fields)


def template_on(store, path: str | None = INSTALL) -> TemplateObjectTO:
    return TemplateObjectTO(TMPL, "tmpl", "QCOW2", store, path=path)


def volume_on(
    store, size: int = 64 * MiB, uuid: str = VOL, path=None
) -> VolumeObjectTO:
    return VolumeObjectTO(uuid, "vol", "DATADISK", size, store, path=path)


def volume_to(pool, uuid: str = VOL, path: str | None = VOL, size: int = 16 * MiB):
    return VolumeObjectTO(uuid, "vol", "ROOT", size, pool, path=path)


def snap_to(uuid, store, volume, path=None, parent=None) -> SnapshotObjectTO:
    return SnapshotObjectTO(
        uuid, uuid[:2], volume, store, path=path, parentSnapshotPath=parent
    )


def rel(uuid: str) -> str:
    return f"snapshots/{VOL}/{uuid}.qcow2"


def create(pool, uuid: str) -> CreateObjectCommand:
    return CreateObjectCommand(f"c-{uuid}", snap_to(uuid, pool, volume_to(pool)))


def backup(pool, store, uuid, parent=None, *, remove="true", full="false"):
    return CopyCommand(
        f"b-{uuid}",
        snap_to(uuid, pool, volume_to(pool), path=rel(uuid)),
        snap_to(uuid, store, volume_to(pool), parent=parent),
        options={"removeAfterCopy": remove, "full": full},
    )


def revert(pool, store, uuid: str) -> RevertSnapshotCommand:
    return RevertSnapshotCommand(
        f"r-{uuid}", snap_to(uuid, store, volume_to(pool), path=rel(uuid))
    )


def snapshot_and_backup(agent, pool, store, uuid, parent=None, **kw):
    created = agent.handle(create(pool, uuid))
    assert created.result, created.details
    copied = agent.handle(backup(pool, store, uuid, parent, **kw))
    assert copied.result, copied.details
    return copied
