"""Volumes on RBD pools: CloudStack's `KVMStorageProcessor` volume methods for a
`LibvirtStoragePool` of type RBD, and `GetStorageStatsCommand` from Ceph itself.

A volume is the raw RBD image `<pool>/<volume uuid>`: made empty (`rbd create`),
or cloned copy-on-write from the template's protected base snapshot (`rbd clone`,
O(1) whatever the template's size, then grown if asked bigger), or copied whole
from another pool of either kind (`qemu-img convert`, which flattens). Deleting
one purges its snapshots first; deleting a template's image that still has clones
is refused, naming them.
"""

from __future__ import annotations

import json
from pathlib import Path

from executors.paths import contained, pool_root
from executors.providers.directory.images import image_format
from executors.providers.driver import AgentFailure
from executors.providers.rbd.ceph import BASE_SNAP, PART, Ceph
from executors.providers.rbd.location import image_name
from executors.providers.rbd.pools import Pools, between, from_file, on_rbd, to_file
from ledger.commands import (
    Answer,
    AttachAnswer,
    AttachCommand,
    CopyCmdAnswer,
    CopyCommand,
    CreateObjectAnswer,
    CreateObjectCommand,
    DeleteCommand,
    DettachAnswer,
    DettachCommand,
    GetStorageStatsAnswer,
    GetStorageStatsCommand,
    ResizeVolumeAnswer,
    ResizeVolumeCommand,
    TemplateObjectTO,
    VolumeObjectTO,
)
from ledger.errors import InvalidInput

_THICK = {"THIN": False, "SPARSE": False, "FAT": True}


def name_of(data: VolumeObjectTO | TemplateObjectTO) -> str:
    """The image a volume or a template copy is (its path, else its uuid)."""
    return image_name(data.path or data.uuid)


def create_volume(
    pools: Pools, cmd: CreateObjectCommand, volume: VolumeObjectTO
) -> Answer:
    """`createVolume`: an empty raw image (`rbd create`); a repeat finds it."""
    thick = _THICK.get(volume.provisioningType)
    if thick is None:
        raise InvalidInput("provisioning type", volume.provisioningType, "unknown")
    ceph = pools.on(volume.dataStore)
    name = image_name(volume.uuid)
    found = ceph.info(name)
    if found is not None and found.size < volume.size:
        raise AgentFailure(
            f"image {ceph.cluster.spec(name)} exists with {found.size} bytes, "
            f"not {volume.size}"
        )
    if found is None:
        ceph.create(name, volume.size, thick=thick)
        found = ceph.existing(name)
    data = volume.replace(path=name, size=found.size, format="RAW")
    return CreateObjectAnswer(commandId=cmd.commandId, result=True, data=data)


def clone_from_base_template(
    pools: Pools, cmd: CopyCommand, src: TemplateObjectTO, dest: VolumeObjectTO
) -> Answer:
    """`cloneVolumeFromBaseTemplate`: `rbd clone` of the template's protected
    base snapshot, grown to the volume's size when that is bigger."""
    ceph = pools.on(dest.dataStore)
    if pools.on(src.dataStore) is not ceph:
        raise AgentFailure("an RBD clone needs its template in the volume's pool")
    base, name = name_of(src), image_name(dest.uuid)
    expected = (ceph.cluster.pool, base, BASE_SNAP)
    found = ceph.info(name)
    if found is None:
        ceph.clone(base, BASE_SNAP, name)
        try:
            found = ceph.existing(name)
            if dest.size > found.size:
                ceph.resize(name, dest.size)
                found = ceph.existing(name)
        except BaseException:
            ceph.remove_quietly(name)
            raise
    elif found.parent != expected:
        raise AgentFailure(
            f"image {ceph.cluster.spec(name)} exists and is not a clone of "
            f"{ceph.cluster.spec(base, BASE_SNAP)}"
        )
    elif dest.size > found.size:
        ceph.resize(name, dest.size)
        found = ceph.existing(name)
    new = dest.replace(path=name, size=found.size, format="RAW")
    return CopyCmdAnswer(commandId=cmd.commandId, result=True, newData=new)


def delete(
    pools: Pools, cmd: DeleteCommand, data: VolumeObjectTO | TemplateObjectTO
) -> Answer:
    """`deleteVolume` and a template copy's deletion: snapshots purged, then the
    image; already gone is done. A template image with clones is refused."""
    ceph = pools.on(data.dataStore)
    name = name_of(data)
    if isinstance(data, TemplateObjectTO) and ceph.info(name) is not None:
        clones = ceph.children(name, BASE_SNAP) if _has_base(ceph, name) else []
        if clones:
            raise AgentFailure(
                f"template image {ceph.cluster.spec(name)} still has clones: "
                + ", ".join(clones)
            )
    ceph.remove(name)
    ceph.remove(name + PART)
    return Answer(commandId=cmd.commandId, result=True)


def _has_base(ceph: Ceph, name: str) -> bool:
    return BASE_SNAP in ceph.snapshots(name)


def check_disk(pools: Pools, cmd: AttachCommand | DettachCommand) -> Answer:
    """Attach/detach without libvirt: the image must be there (`rbd info`)."""
    volume = cmd.disk.data
    pools.on(volume.dataStore).existing(name_of(volume))
    answer = AttachAnswer if isinstance(cmd, AttachCommand) else DettachAnswer
    return answer(commandId=cmd.commandId, result=True, disk=cmd.disk)


def resize(pools: Pools, cmd: ResizeVolumeCommand) -> Answer:
    """`ResizeVolumeCommand`: `rbd resize` (`--allow-shrink` only if asked)."""
    ceph = pools.on(cmd.volume.dataStore)
    name = name_of(cmd.volume)
    if ceph.existing(name).size != cmd.newSize:
        ceph.resize(name, cmd.newSize, shrink=cmd.shrinkOk)
    size = ceph.existing(name).size
    return ResizeVolumeAnswer(commandId=cmd.commandId, result=True, newSize=size)


def copy_volume_to_primary(
    pools: Pools, cmd: CopyCommand, src: VolumeObjectTO, dest: VolumeObjectTO
) -> Answer:
    """`copyVolumeFromPrimaryToPrimary` (a migration) with RBD on either side or
    both: a whole, flattened copy named the volume's uuid."""
    name = image_name(dest.uuid)
    if on_rbd(dest):
        ceph = pools.on(dest.dataStore)
        if on_rbd(src):
            made = between(pools.on(src.dataStore), (name_of(src), None), ceph, name)
        else:
            source = _volume_file(pools, src)
            made = from_file(ceph, name, source, image_format(src.format))
        new = dest.replace(path=name, size=made.size, format="RAW")
    else:
        root = pool_root(dest.dataStore)
        final = contained(root, name)
        info = to_file(
            pools, pools.on(src.dataStore), (name_of(src), None), final, root
        )
        new = dest.replace(path=name, size=info.virtual_size, format="QCOW2")
    return CopyCmdAnswer(commandId=cmd.commandId, result=True, newData=new)


def _volume_file(pools: Pools, volume: VolumeObjectTO) -> Path:
    """A directory pool's volume file, its backing chain checked to stay inside."""
    root = pool_root(volume.dataStore)
    path = contained(root, volume.path or volume.uuid)
    pools.images.checked_source(path, root, image_format(volume.format), "volume")
    return path


def storage_stats(pools: Pools, cmd: GetStorageStatsCommand) -> Answer:
    """`GetStorageStatsCommand`: the pool's row of `ceph df` (Ceph's USED, and
    what the pool could still take, MAX AVAIL)."""
    ceph = pools.on(cmd.store)
    done = ceph.tool(ceph.cluster.ceph("df", "--format", "json"), "ceph df")
    try:
        rows = json.loads(done.stdout)["pools"]
        stats = next(r["stats"] for r in rows if r["name"] == ceph.cluster.pool)
        used, avail = int(stats["bytes_used"]), int(stats["max_avail"])
        stored = int(stats.get("stored", used))
    except StopIteration:
        raise AgentFailure(f"ceph df lists no pool {ceph.cluster.pool}") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise AgentFailure(f"ceph df: unreadable output ({exc})") from exc
    return GetStorageStatsAnswer(
        commandId=cmd.commandId,
        result=True,
        details=f"ceph df pool {ceph.cluster.pool}: stored {stored}, used {used}, "
        f"max avail {avail}",
        capacityBytes=used + avail,
        usedBytes=used,
    )
