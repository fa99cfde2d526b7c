"""Copies between RBD pools and image stores: templates in and out, volumes made
from snapshots' backups, and the two legs of a migration staged through
secondary storage.

- `copyTemplateToPrimaryStorage`: the template file (qcow2 or raw, refused with a
  backing or data file) written once into the pool as the raw image `<template
  uuid>` by `qemu-img convert`, then `rbd snap create` + `protect` of
  `cloudstack-base-snap`, which every ROOT volume is cloned from.
- `createVolumeFromSnapshot`: the backup (or the RBD snapshot) into a new image.
- `createTemplateFromVolume` / `...FromSnapshot`: a flattened qcow2 at
  `template/tmpl/<uuid>/<uuid>.qcow2` on the image store.
- `copyVolumeFromPrimaryToSecondary` / `copyVolumeFromImageCacheToPrimary`: the
  volume parked as `volumes/<uuid>.qcow2` on the store, and back into a pool.
"""

from __future__ import annotations

from pathlib import Path

from executors.paths import contained, pool_root, store_root
from executors.providers.directory.images import image_format
from executors.providers.directory.snapshots import (
    snapshot_path,
    staged_volume_path,
    template_path,
)
from executors.providers.directory.templates import Templates
from executors.providers.driver import AgentFailure
from executors.providers.rbd.location import image_name
from executors.providers.rbd.pools import (
    Pools,
    between,
    finished,
    from_file,
    on_rbd,
    to_file,
)
from executors.providers.rbd.snapshots import rbd_snapshot
from executors.providers.rbd.volumes import name_of
from ledger.commands import (
    Answer,
    CopyCmdAnswer,
    CopyCommand,
    SnapshotObjectTO,
    TemplateObjectTO,
    VolumeObjectTO,
)


def copy_template_to_primary(
    pools: Pools, cmd: CopyCommand, src: TemplateObjectTO, dest: TemplateObjectTO
) -> Answer:
    """`copyTemplateToPrimaryStorage`: the base image every clone reads, once."""
    ceph = pools.on(dest.dataStore)
    root = store_root(src.dataStore)
    source = template_file(root, src.path or src.uuid)
    fmt = image_format(src.format)
    name = image_name(dest.uuid)
    made = finished(ceph, name, base_snapshot=True)
    if made is None:
        Templates(pools.images).verify_template(source, fmt)
        made = from_file(ceph, name, source, fmt, base_snapshot=True, fresh=True)
    new = dest.replace(
        path=name, format="RAW", size=made.size, physicalSize=ceph.du(name)
    )
    return CopyCmdAnswer(commandId=cmd.commandId, result=True, newData=new)


def template_file(root: Path, name: str) -> Path:
    """CloudStack's rule: a template path naming a directory means its first
    qcow2 file."""
    path = contained(root, name)
    if path.is_dir():
        found = sorted(child.name for child in path.glob("*.qcow2"))
        if not found:
            raise AgentFailure(f"no .qcow2 file in template directory {path}")
        path = contained(root, name, found[0])
    if not path.is_file():
        raise AgentFailure(f"template file {path} not found")
    return path


def volume_from_snapshot(
    pools: Pools, cmd: CopyCommand, src: SnapshotObjectTO, dest: VolumeObjectTO
) -> Answer:
    """`createVolumeFromSnapshot`: the snapshot's data as a new volume, grown to
    the volume's size, in an RBD pool or (from an RBD snapshot) a directory."""
    name = image_name(dest.uuid)
    if on_rbd(dest):
        ceph = pools.on(dest.dataStore)
        if on_rbd(src):
            made = between(
                pools.on(src.dataStore), rbd_snapshot(src), ceph, name, dest.size
            )
        else:
            backup = _backup_file(pools, src)
            made = from_file(ceph, name, backup, "qcow2", dest.size)
        new = dest.replace(path=name, size=made.size, format="RAW")
    else:
        root = pool_root(dest.dataStore)
        final = contained(root, name)
        source = pools.on(src.dataStore)
        info = to_file(pools, source, rbd_snapshot(src), final, root, dest.size)
        new = dest.replace(path=name, size=info.virtual_size, format="QCOW2")
    return CopyCmdAnswer(commandId=cmd.commandId, result=True, newData=new)


def _backup_file(pools: Pools, snapshot: SnapshotObjectTO) -> Path:
    root = store_root(snapshot.dataStore)
    path = contained(root, snapshot.path or snapshot_path(snapshot))
    pools.images.checked_source(path, root, "qcow2", "snapshot")
    return path


def create_template(
    pools: Pools,
    cmd: CopyCommand,
    src: VolumeObjectTO | SnapshotObjectTO,
    dest: TemplateObjectTO,
) -> Answer:
    """`createTemplateFromVolume` / `...FromSnapshot` of an RBD volume or RBD
    snapshot: a flattened qcow2 on the image store."""
    ceph = pools.on(src.dataStore)
    origin = (
        (name_of(src), None) if isinstance(src, VolumeObjectTO) else rbd_snapshot(src)
    )
    root = store_root(dest.dataStore)
    name = template_path(dest)
    final = contained(root, name)
    info = to_file(pools, ceph, origin, final, root)
    new = dest.replace(
        path=name,
        format="QCOW2",
        size=info.virtual_size,
        physicalSize=final.stat().st_size,
    )
    return CopyCmdAnswer(commandId=cmd.commandId, result=True, newData=new)


def stage_volume(
    pools: Pools, cmd: CopyCommand, src: VolumeObjectTO, dest: VolumeObjectTO
) -> Answer:
    """`copyVolumeFromPrimaryToSecondary`: park the RBD volume on the store."""
    root = store_root(dest.dataStore)
    name = staged_volume_path(dest)
    final = contained(root, name)
    info = to_file(pools, pools.on(src.dataStore), (name_of(src), None), final, root)
    new = dest.replace(path=name, size=info.virtual_size, format="QCOW2")
    return CopyCmdAnswer(commandId=cmd.commandId, result=True, newData=new)


def unstage_volume(
    pools: Pools, cmd: CopyCommand, src: VolumeObjectTO, dest: VolumeObjectTO
) -> Answer:
    """`copyVolumeFromImageCacheToPrimary`: the parked copy into the RBD pool."""
    root = store_root(src.dataStore)
    source = contained(root, src.path or staged_volume_path(src))
    fmt = image_format(src.format)
    pools.images.checked_source(source, root, fmt, "staged volume")
    name = image_name(dest.uuid)
    made = from_file(pools.on(dest.dataStore), name, source, fmt, dest.size)
    new = dest.replace(path=name, size=made.size, format="RAW")
    return CopyCmdAnswer(commandId=cmd.commandId, result=True, newData=new)
