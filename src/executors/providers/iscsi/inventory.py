"""An iSCSI pool's inventory: its LUN files and tgtd's targets, one entry a volume.

A volume of an iSCSI pool is three things named from the pool's uuid and its own
(`layout`): the LUN file `<lun_dir>/<pool>/<volume>.lun`, its CHAP secret file
next to it, and the target `iqn...storctl:<pool>.<volume>` in tgtd, whose LUN 1 is
the file. The ledger records the volume's path as that IQN, so the inventory is
keyed by IQN (a claim that names a volume's uuid, one still being made, is keyed
the same way) and each volume is one entry, whatever is left of it:

- the LUN file there: the volume is there; a target that is missing or not on
  the file, or a missing secret, are parts it `lacks` (after a tgtd restart
  every volume lacks its target until `storctl pool targets` makes them again);
- no LUN file but its target or its secret still there: a `remnant`, so a
  claimed volume is reported `missing` once (not also an orphan target);
- `.<volume>.lun.part`: a fill in progress or a crashed one's leftover;
- any other file in the pool's folder: listed by its file name.

Targets under other pools' IQNs, or no storctl IQN at all, are not this pool's
and are not listed. The listing reads file names and sizes and `tgtadm --op show`
(an argv list through the injected `Runner`); it never opens a secret file, so no
CHAP password can reach a finding.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from executors.providers.inventory import Found, Inventory
from executors.providers.iscsi import tgtadm
from executors.providers.iscsi.layout import IQN_PREFIX, Lun, canonical_uuid
from executors.providers.iscsi.location import parse_profile, portal_of
from executors.providers.iscsi.tgtadm import Target
from executors.runner import CommandTimedOut, Runner
from ledger.commands import PrimaryDataStoreTO
from ledger.errors import InvalidInput

SHOW_WAIT = 30.0  # seconds for `tgtadm --op show` (tgtd answers in ms, or is stuck)
LUN_SUFFIX = ".lun"
CHAP_SUFFIX = ".chap"
PART_SUFFIX = ".lun.part"


@dataclass
class IscsiInventory(Inventory):
    """One pool's volumes (by IQN) and stray files (by file name)."""

    pool: str = ""
    lun_dir: Path = field(default_factory=lambda: Path("/"))

    def key(self, path: str) -> str:
        """A volume's uuid (a claim not yet given its IQN) as its IQN."""
        try:
            return Lun.of(self.pool, path, self.lun_dir).iqn
        except InvalidInput:
            return path


@dataclass
class _Volume:
    size: int | None = None  # the LUN file's, when there is one
    secret: bool = False
    target: Target | None = None


def _volume_uuid(name: str, suffix: str = "") -> str | None:
    """The volume uuid `name` is made of (canonical, before `suffix`), else None."""
    if not name.endswith(suffix):
        return None
    stem = name[: len(name) - len(suffix)]
    try:
        return stem if str(uuid.UUID(stem)) == stem else None
    except ValueError:
        return None


def build(
    pool: str, lun_dir: Path, files: Mapping[str, int], targets: Mapping[str, Target]
) -> IscsiInventory:
    """The inventory from the pool folder's files (name -> size) and tgtd's
    targets (pure: the listing is `list_pool`'s)."""
    pool = canonical_uuid(pool, "pool uuid")
    inventory = IscsiInventory(noun="LUN", pool=pool, lun_dir=lun_dir)
    volumes: dict[str, _Volume] = {}
    for name, size in sorted(files.items()):
        if (vol := _volume_uuid(name, LUN_SUFFIX)) is not None:
            volumes.setdefault(vol, _Volume()).size = size
        elif (vol := _volume_uuid(name, CHAP_SUFFIX)) is not None:
            volumes.setdefault(vol, _Volume()).secret = True
        elif name.startswith(".") and (vol := _volume_uuid(name[1:], PART_SUFFIX)):
            iqn = Lun.of(pool, vol, lun_dir).iqn
            inventory.add(
                Found(name, "file", size=size, temp_of=iqn, description=f"{size} bytes")
            )
        else:
            inventory.add(Found(name, "file", size=size, description=f"{size} bytes"))
    ours = f"{IQN_PREFIX}:{pool}."
    for iqn, target in targets.items():
        if iqn.startswith(ours) and (vol := _volume_uuid(iqn[len(ours) :])):
            volumes.setdefault(vol, _Volume()).target = target
    for vol, parts in sorted(volumes.items()):
        inventory.add(_entry(Lun.of(pool, vol, lun_dir), parts))
    return inventory


def _entry(lun: Lun, parts: _Volume) -> Found:
    target = parts.target
    if parts.size is None:  # no LUN file: what is left of a volume
        left = []
        if target is not None:
            left.append(f"its target (tid {target.tid})")
        if parts.secret:
            left.append("its CHAP secret file")
        return Found(
            lun.iqn,
            "target" if target is not None else "file",
            remnant=True,
            description=f"no LUN file; {' and '.join(left)} still there",
        )
    lacks = []
    if target is None:
        lacks.append("its target in tgtd (storctl pool targets makes it)")
    elif target.luns.get(tgtadm.LUN) != str(lun.file):
        lacks.append(f"its target's LUN {tgtadm.LUN} on {lun.file.name}")
    if not parts.secret:
        lacks.append("its CHAP secret file")
    served = f", target tid {target.tid}" if target is not None else ", no target"
    return Found(
        lun.iqn,
        "lun",
        size=parts.size,
        lacks=tuple(lacks),
        description=f"LUN file of {parts.size} bytes{served}",
    )


def list_pool(
    store: PrimaryDataStoreTO, credentials: Mapping[str, Any], runner: Runner
) -> IscsiInventory:
    """`Provider.inventory` of `iscsi`: the pool's folder of the LUN directory and
    tgtd's targets, on the host that runs tgtd (as every iSCSI command)."""
    name = store.credentials or "credentials"
    profile = parse_profile(credentials, name)
    if profile.portal != portal_of(store.path):
        raise InvalidInput(
            "credentials",
            name,
            f"its portal {profile.portal} is not the pool's {portal_of(store.path)}",
        )
    if not profile.lun_dir.is_dir():
        raise InvalidInput("credentials", name, f"lun_dir {profile.lun_dir} is missing")
    pool = canonical_uuid(store.uuid, "pool uuid")
    root = Lun.of(pool, pool, profile.lun_dir).root
    files: dict[str, int] = {}
    if root.is_dir():
        for entry in root.iterdir():
            st = entry.lstat()
            files[entry.name] = st.st_size
    argv = tgtadm.show_argv(profile.control_port)
    try:
        done = runner.run(argv, timeout=SHOW_WAIT)
    except CommandTimedOut:
        raise InvalidInput(
            "pool", store.name, f"tgtd did not answer in {SHOW_WAIT:g} s"
        ) from None
    except OSError as exc:
        raise InvalidInput(
            "pool", store.name, f"cannot run tgtadm: {exc.strerror or exc}"
        ) from None
    if done.returncode != 0:
        why = tgtadm.failure_line(argv, done.returncode, done.stderr, done.stdout)
        raise InvalidInput("pool", store.name, f"cannot list its targets: {why}")
    return build(pool, profile.lun_dir, files, tgtadm.parse_targets(done.stdout))
