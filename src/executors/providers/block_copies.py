"""Migrations between an RBD pool and an iSCSI pool: one `qemu-img convert`
from one backend straight into the other.

Neither end is a file on the host, so neither driver can read the other's
volume with its own means. qemu-img can: its rbd driver reads and writes RBD
images (`rbd:POOL/IMAGE:conf=..:keyring=..`) and its libiscsi driver reads and
writes LUNs (`--image-opts` with the CHAP secret read from its 0600 file), in
one process (tried with qemu-img 7.2 on the lab: rbd -> LUN with `-n
--target-image-opts`, LUN -> rbd with `--image-opts` and qemu creating the
image). So no scratch copy on the host is needed: nothing to clean up, no
host disk to fill, the data crosses the host once.

Each direction keeps the destination's rules: into a LUN through a target on a
new sparse `.part` file renamed once flushed (`Volumes.copy_into`); into RBD as
`<volume>.part`, renamed once complete (`Ceph.write_image`). The agent gives a
command between two non-directory drivers to the destination's driver, so the
iSCSI driver calls `rbd_to_iscsi` and the rbd driver calls `iscsi_to_rbd`.
"""

from __future__ import annotations

import contextlib

from executors.providers.command_run import CommandRun
from executors.providers.iscsi import images
from executors.providers.iscsi.volumes import Volumes, Write
from executors.providers.rbd.location import image_name
from executors.providers.rbd.pools import Pools, finished
from executors.providers.rbd.volumes import name_of
from ledger.commands import Answer, CopyCmdAnswer, CopyCommand, VolumeObjectTO

_WHAT = "qemu-img convert"


def rbd_to_iscsi(
    run: CommandRun, cmd: CopyCommand, src: VolumeObjectTO, dest: VolumeObjectTO
) -> Answer:
    """The RBD volume written whole into the volume's new LUN."""
    with contextlib.ExitStack() as stack:
        ceph = Pools(run, stack).on(src.dataStore)
        image = name_of(src)

        def source() -> tuple[int, Write]:
            size = ceph.existing(image).size
            origin = ceph.qemu(image)  # errors will name it rbd:POOL/IMAGE
            return size, lambda lun: ceph.tool(
                images.fill_from_argv(origin, "raw", lun), _WHAT, progress=True
            )

        return Volumes(run).copy_into(cmd, dest, source)


def iscsi_to_rbd(
    pools: Pools, cmd: CopyCommand, src: VolumeObjectTO, dest: VolumeObjectTO
) -> Answer:
    """The LUN written whole into a new RBD image named the volume's uuid."""
    ceph = pools.on(dest.dataStore)
    name = image_name(dest.uuid)
    made = finished(ceph, name)
    if made is None:
        luns = Volumes(pools.run)
        pool = luns.pool(src.dataStore)
        spec = pool.spec(luns.existing(pool, src))

        def fill(target: str) -> None:
            ceph.tool(images.drain_to_argv(spec, target, "raw"), _WHAT, progress=True)

        made = ceph.write_image(name, fill)
    new = dest.replace(path=name, size=made.size, format="RAW")
    return CopyCmdAnswer(commandId=cmd.commandId, result=True, newData=new)
