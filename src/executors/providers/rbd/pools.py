"""The RBD pools one command touches, and the moves between an RBD image and a
file on a directory store that several operations share.

A command may name two RBD pools (a migration between them, perhaps on two
clusters) or an RBD pool and a directory (an image store, a filesystem pool):
`Pools` connects each RBD pool once for the command's run, and `to_file` /
`from_file` are the two directions of `qemu-img convert` between the kinds, with
the staging rules of each side (a staged file renamed into place; an image
written as `<name>.part` and renamed).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

from executors import qemu
from executors.providers.command_run import CommandRun
from executors.providers.directory.images import Images
from executors.providers.directory.staging import parent_dirs, staged
from executors.providers.driver import AgentFailure
from executors.providers.rbd.ceph import BASE_SNAP, Ceph, Image
from executors.providers.rbd.cluster import connect
from executors.qemu import ImageInfo
from ledger.commands import DataTO, ImageStoreTO, PrimaryDataStoreTO

#: What the ledger records an RBD pool's type as (CloudStack's StoragePoolType.RBD).
POOL_TYPE = "RBD"


def is_rbd(store: PrimaryDataStoreTO | ImageStoreTO | None) -> bool:
    return isinstance(store, PrimaryDataStoreTO) and store.poolType.upper() == POOL_TYPE


def on_rbd(data: DataTO) -> bool:
    return is_rbd(data.dataStore)


@dataclass
class Pools:
    """Each RBD pool of one command connected once, for the command's run."""

    run: CommandRun
    stack: contextlib.ExitStack[bool | None]
    connected: dict[tuple[str, str | None], Ceph] = field(default_factory=dict)

    def on(self, store: PrimaryDataStoreTO | ImageStoreTO | None) -> Ceph:
        if not isinstance(store, PrimaryDataStoreTO) or not is_rbd(store):
            raise AgentFailure(f"store {store and store.name} is not an RBD pool")
        key = (store.path, store.credentials)
        if key not in self.connected:
            cluster = self.stack.enter_context(connect(store))
            self.connected[key] = Ceph(self.run, cluster)
        return self.connected[key]

    @property
    def images(self) -> Images:
        """The directory driver's steps, for the file side of a command."""
        return Images(self.run)


def to_file(
    pools: Pools,
    ceph: Ceph,
    source: tuple[str, str | None],
    final: Path,
    root: Path,
    size: int | None = None,
) -> ImageInfo:
    """`source` (image, snapshot) of `ceph` as a standalone qcow2 at `final`
    (made under a staged name, its missing folders removed again on failure);
    a finished `final` is kept. Grown to `size` if that is bigger."""
    images = pools.images
    info = images.finished(final, "qcow2")
    if info is not None:
        return info
    image, snapshot = source
    ceph.existing(image)
    with parent_dirs(final, root), staged(final) as tmp:
        ceph.convert(ceph.qemu(image, snapshot), "raw", str(tmp), "qcow2")
        info = images.info(tmp, "qcow2")
        if size is not None and size > info.virtual_size:
            pools.run.qemu(qemu.resize_argv(tmp, "qcow2", size))
            info = images.info(tmp, "qcow2")
    return info


def from_file(
    ceph: Ceph,
    image: str,
    source: Path,
    fmt: str,
    size: int | None = None,
    *,
    base_snapshot: bool = False,
    fresh: bool = False,
) -> Image:
    """The file `source` (`fmt`, its chain already checked) as the RBD image
    `image`; a finished image is kept (`fresh`: the caller just looked)."""
    found = None if fresh else finished(ceph, image, base_snapshot=base_snapshot)
    if found is not None:
        return found
    return ceph.write_image(
        image,
        lambda target: ceph.convert(str(source), fmt, target, "raw"),
        size=size,
        base_snapshot=base_snapshot,
    )


def between(
    source: Ceph,
    src: tuple[str, str | None],
    dest: Ceph,
    image: str,
    size: int | None = None,
) -> Image:
    """An RBD image or snapshot copied whole (flattened) as image `image` of
    `dest`, which may be another pool or another cluster."""
    if dest.cluster.spec(image) == source.cluster.spec(src[0]) and (
        dest.cluster.location.mon_host == source.cluster.location.mon_host
    ):
        raise AgentFailure(
            f"source and destination are the same image {dest.cluster.spec(image)}"
        )
    origin_image = source.existing(src[0])
    found = finished(dest, image)
    if found is not None:
        if found.id == origin_image.id and dest.cluster.pool == source.cluster.pool:
            raise AgentFailure(
                f"source and destination are the same image {dest.cluster.spec(image)}"
            )
        return found
    origin = source.qemu(*src)
    dest.shown.update(source.shown)
    return dest.write_image(
        image, lambda target: dest.convert(origin, "raw", target, "raw"), size=size
    )


def finished(ceph: Ceph, image: str, *, base_snapshot: bool = False) -> Image | None:
    """The image if an earlier run finished it (a template's with its protected
    base snapshot); None if it was never made."""
    found = ceph.info(image)
    if found is None or not base_snapshot:
        return found
    if ceph.snapshots(image).get(BASE_SNAP) is not True:
        raise AgentFailure(
            f"image {ceph.cluster.spec(image)} exists without its protected "
            f"snapshot {BASE_SNAP}"
        )
    return found
