"""Volumes on iSCSI pools: CloudStack's managed storage, one target and LUN each.

A volume is a sparse raw file in the pool's folder of the LUN directory, exported
by tgtd as LUN 1 of its own target with its own CHAP account (`layout`, `targets`).
Data moves over iSCSI as an initiator would see it: `qemu-img convert` through
qemu's libiscsi driver, logged in with the volume's CHAP secret (`images`).

Every operation is idempotent and all or nothing, the way a retried agent command
must be:
- a LUN file at its final name is complete: an empty volume is made under a
  temporary name and renamed; a template or a migrated volume is written through
  a target backed by the temporary file, which is renamed only once qemu-img has
  finished (and flushed), then LUN 1 is pointed at the final name;
- a repeat finds the finished file, makes its target whole (or again, after a tgtd
  restart) and answers success;
- a failure removes the target, the account and every file the command made
  before the answer says why (`_making`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from executors.paths import contained, store_root
from executors.providers.command_run import CommandRun
from executors.providers.directory.images import Images, image_format
from executors.providers.directory.templates import Templates
from executors.providers.driver import AgentFailure
from executors.providers.iscsi import images
from executors.providers.iscsi.layout import Lun
from executors.providers.iscsi.location import Profile, portal_of, profile_of
from executors.providers.iscsi.targets import Targets, Tgt
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
    ImageStoreTO,
    PrimaryDataStoreTO,
    ResizeVolumeAnswer,
    ResizeVolumeCommand,
    TemplateObjectTO,
    VolumeObjectTO,
)
from ledger.errors import InvalidInput

#: What fills a LUN given the LUN's spec (a qemu-img convert into it).
Write = Callable[[images.LunSpec], object]
#: Called once a LUN is to be filled: the source's virtual size, and its `Write`.
Source = Callable[[], tuple[int, Write]]

RECORDED_AS = "Iscsi"  # the pool type of an iSCSI pool (`PoolType.Iscsi`)
_BLOCK = 512


@dataclass(frozen=True)
class Pool:
    """One iSCSI pool as a command names it, with its profile resolved."""

    store: PrimaryDataStoreTO
    profile: Profile
    targets: Targets

    def lun(self, volume_uuid: str) -> Lun:
        return Lun.of(self.store.uuid, volume_uuid, self.profile.lun_dir)

    def spec(self, lun: Lun) -> images.LunSpec:
        return images.LunSpec(
            portal_of(self.store.path), lun.iqn, lun.user, lun.secret_file
        )


def is_iscsi(store: object) -> bool:
    return (
        isinstance(store, PrimaryDataStoreTO)
        and store.poolType.lower() == RECORDED_AS.lower()
    )


@dataclass
class Volumes:
    """The volume operations of one command's run."""

    run: CommandRun

    def pool(self, store: PrimaryDataStoreTO | ImageStoreTO | None) -> Pool:
        if not isinstance(store, PrimaryDataStoreTO) or not is_iscsi(store):
            name = store.name if store is not None else "none"
            raise InvalidInput("data store", name, "not an iSCSI pool")
        profile = profile_of(store)
        tgt = Tgt(self.run, profile.control_port)
        self.run.watch = tgt.probe  # every qemu-img of this command, while tgtd lives
        return Pool(store, profile, Targets(tgt))

    # ---------------------------------------------------------------- create

    def create_volume(self, cmd: CreateObjectCommand, volume: VolumeObjectTO) -> Answer:
        """`createVolume`: an empty thin LUN of the requested size, its target."""
        pool = self.pool(volume.dataStore)
        lun = pool.lun(volume.uuid)
        size = _blocks(volume.size)
        if lun.file.exists():
            have = lun.file.stat().st_size
            if have < size:
                raise AgentFailure(f"{lun.file} exists with {have} bytes, not {size}")
            pool.targets.ensure(lun)
            size = have
        else:
            with _making(pool, lun):
                _sparse(lun.part, size)
                os.replace(lun.part, lun.file)
                pool.targets.ensure(lun)
        data = volume.replace(path=lun.iqn, size=size, format="RAW")
        return CreateObjectAnswer(commandId=cmd.commandId, result=True, data=data)

    def create_from_template(
        self, cmd: CopyCommand, src: TemplateObjectTO, dest: VolumeObjectTO
    ) -> Answer:
        """The template written whole into the volume's LUN (managed storage: no
        base image on the pool), from the image store or its staging cache."""
        pool = self.pool(dest.dataStore)
        lun = pool.lun(dest.uuid)
        if not lun.file.exists():
            store = cmd.cacheTO if cmd.cacheTO is not None else src.dataStore
            source = template_file(store_root(store), src.path or src.uuid)
            fmt = image_format(src.format)
            info = Templates(Images(self.run)).verify_template(source, fmt)
            size = _blocks(max(dest.size, info.virtual_size))
            argv = images.fill_argv(source, fmt, pool.spec(lun))
            self._fill(pool, lun, size, lambda _: self.run.qemu(argv, progress=True))
        else:
            pool.targets.ensure(lun)
        return self.copied(cmd, lun, dest)

    # ---------------------------------------------------------------- copy

    def copy_into(
        self, cmd: CopyCommand, dest: VolumeObjectTO, source: Source
    ) -> Answer:
        """The volume's LUN filled from `source` (called only when the LUN is not
        there yet: a repeat finds the finished file and makes its target whole)."""
        pool = self.pool(dest.dataStore)
        lun = pool.lun(dest.uuid)
        if not lun.file.exists():
            size, write = source()
            self._fill(pool, lun, _blocks(max(size, dest.size)), write)
        else:
            pool.targets.ensure(lun)
        return self.copied(cmd, lun, dest)

    def file_source(self, path: Path, root: Path, fmt: str, what: str) -> Source:
        """A local image (its backing chain checked to stay inside `root`) as
        what fills a LUN."""

        def source() -> tuple[int, Write]:
            info = Images(self.run).checked_source(path, root, fmt, what)
            return info.virtual_size, lambda lun: self.run.qemu(
                images.fill_argv(path, fmt, lun), progress=True
            )

        return source

    def _fill(self, pool: Pool, lun: Lun, size: int, write: Write) -> None:
        """`write` fills the LUN through a target on a new sparse file, which
        becomes the LUN file only once the write is complete and flushed."""
        with _making(pool, lun):
            _sparse(lun.part, size)
            made = pool.targets.ensure(lun, backing=str(lun.part))
            write(pool.spec(lun))
            os.replace(lun.part, lun.file)
            pool.targets.refresh(lun, made)

    def replace(self, pool: Pool, lun: Lun, size: int, write: Write) -> None:
        """The LUN's content replaced whole (a revert): `write` fills a new sparse
        file through the volume's target, which becomes the LUN file once flushed.
        A failure removes the new file and puts the target back on the old one,
        untouched."""
        try:
            _sparse(lun.part, _blocks(size))
            made = pool.targets.ensure(lun, backing=str(lun.part))
            write(pool.spec(lun))
            os.replace(lun.part, lun.file)
            pool.targets.refresh(lun, made)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                lun.part.unlink()
            with contextlib.suppress(Exception):
                pool.targets.ensure(lun)
            raise

    def copied(self, cmd: CopyCommand, lun: Lun, dest: VolumeObjectTO) -> Answer:
        size = lun.file.stat().st_size
        new = dest.replace(path=lun.iqn, size=size, format="RAW")
        return CopyCmdAnswer(commandId=cmd.commandId, result=True, newData=new)

    # ---------------------------------------------------------------- the rest

    def delete(
        self, cmd: DeleteCommand, data: VolumeObjectTO | TemplateObjectTO
    ) -> Answer:
        """`deleteVolume`: the target (`--force`), its account, the LUN file and
        the secret; already gone counts as done."""
        if isinstance(data, TemplateObjectTO):
            raise AgentFailure("an iSCSI pool holds no template copies")
        pool = self.pool(data.dataStore)
        lun = pool.lun(data.uuid)
        pool.targets.remove(lun)
        lun.forget()
        return Answer(commandId=cmd.commandId, result=True)

    def resize(self, cmd: ResizeVolumeCommand) -> Answer:
        """The LUN file grown (sparse), LUN 1 re-added so tgtd reads the new size;
        a failure puts the old size back."""
        pool = self.pool(cmd.volume.dataStore)
        lun = self.existing(pool, cmd.volume)
        have = lun.file.stat().st_size
        size = _blocks(cmd.newSize)
        if size < have and not cmd.shrinkOk:
            raise AgentFailure(
                f"{lun.iqn} has {have} bytes; shrinking to {size} needs shrinkOk"
            )
        if size != have:
            os.truncate(lun.file, size)
            try:
                pool.targets.refresh(lun)
            except BaseException:
                if size > have:  # nothing wrote past the old end: undone exactly
                    os.truncate(lun.file, have)
                raise
        return ResizeVolumeAnswer(commandId=cmd.commandId, result=True, newSize=size)

    def attach(self, cmd: AttachCommand | DettachCommand) -> Answer:
        """Attach/detach without libvirt: the target made whole and logged in to
        with the volume's CHAP secret (`qemu-img info` over iSCSI)."""
        pool = self.pool(cmd.disk.data.dataStore)
        lun = self.existing(pool, cmd.disk.data)
        self.run.qemu(images.info_argv(pool.spec(lun)))
        answer = AttachAnswer if isinstance(cmd, AttachCommand) else DettachAnswer
        return answer(commandId=cmd.commandId, result=True, disk=cmd.disk)

    def existing(self, pool: Pool, volume: VolumeObjectTO) -> Lun:
        """The volume's LUN, its file there and its target whole (made again if
        tgtd lost it)."""
        lun = pool.lun(volume.uuid)
        if not lun.file.is_file():
            raise AgentFailure(
                f"LUN file of volume {volume.uuid} not found in {lun.root}"
            )
        pool.targets.ensure(lun)
        return lun


def template_file(root: Path, name: str) -> Path:
    """CloudStack's rule: a template path naming a directory means its first qcow2."""
    path = contained(root, name)
    if path.is_dir():
        found = sorted(child.name for child in path.glob("*.qcow2"))
        if not found:
            raise AgentFailure(f"no .qcow2 file in template directory {path}")
        path = contained(root, name, found[0])
    if not path.is_file():
        raise AgentFailure(f"template file {path} not found")
    return path


@contextlib.contextmanager
def _making(pool: Pool, lun: Lun) -> Iterator[None]:
    """What the block makes (target, account, files) is removed if it fails."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            pool.targets.remove(lun)
        lun.forget()
        raise


def _sparse(path: Path, size: int) -> None:
    """A new sparse file of `size` bytes (a leftover of a crashed run replaced)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, 0o600)
    try:
        os.ftruncate(fd, size)
    finally:
        os.close(fd)


def _blocks(size: int) -> int:
    """`size` rounded up to whole 512-byte blocks (what a LUN can be)."""
    if size <= 0:
        raise InvalidInput("size", str(size), "a LUN needs at least one block")
    return -(-size // _BLOCK) * _BLOCK
