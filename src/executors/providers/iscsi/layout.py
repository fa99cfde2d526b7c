"""Where a volume of an iSCSI pool lives: its LUN file, its target, its CHAP account.

CloudStack's managed storage gives every volume its own target (SolidFire: a volume
and an IQN per CloudStack volume). Here everything about one volume is derived from
the pool's uuid and the volume's, both parsed as UUIDs (a name that is not one is
refused, whatever it contains), so a command carries no path or IQN that the driver
trusts:

- the LUN file `<lun_dir>/<pool uuid>/<volume uuid>.lun`, a sparse raw file, kept
  inside the LUN directory (`paths.contained`);
- the target `iqn.2010-01.org.apache.cloudstack.storctl:<pool uuid>.<volume uuid>`,
  at a tid derived from that IQN (the next free one if another target holds it);
- the CHAP user `storctl-<volume uuid>-<pool uuid prefix>` and its password, made
  at random when the volume is made and kept in `<volume uuid>.chap` (0600) next
  to the LUN file: outside the ledger, where qemu-img reads it (`--object
  secret,file=`) and where a target re-created after a tgtd restart finds it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import string
import uuid
from dataclasses import dataclass
from pathlib import Path

from executors.paths import contained
from ledger.errors import InvalidInput

IQN_PREFIX = "iqn.2010-01.org.apache.cloudstack.storctl"
#: tids below this are left to whoever else uses the same tgtd by hand
TID_FLOOR = 10_000
_TID_SPAN = 2**31 - 1 - 2 * TID_FLOOR
_ALPHABET = string.ascii_letters + string.digits
_PASSWORD_LENGTH = 24  # tgtd and libiscsi take it; CHAP's RFC asks for >= 12


def canonical_uuid(value: str, what: str) -> str:
    """`value` as a canonical UUID, or refused: it names files and targets."""
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError):
        shown = value if len(str(value)) <= 80 else str(value)[:77] + "..."
        raise InvalidInput(what, str(shown), "not a uuid") from None


@dataclass(frozen=True)
class Lun:
    """One volume's LUN on one pool (both uuids canonical)."""

    pool: str
    volume: str
    lun_dir: Path

    @classmethod
    def of(cls, pool: str, volume: str, lun_dir: Path) -> Lun:
        return cls(
            canonical_uuid(pool, "pool uuid"),
            canonical_uuid(volume, "volume uuid"),
            lun_dir,
        )

    @property
    def iqn(self) -> str:
        return f"{IQN_PREFIX}:{self.pool}.{self.volume}"

    @property
    def user(self) -> str:
        return f"storctl-{self.volume}-{self.pool[:8]}"

    @property
    def first_tid(self) -> int:
        """Where the search for a free tid starts: the same one every time."""
        digest = hashlib.sha256(self.iqn.encode()).digest()
        return TID_FLOOR + int.from_bytes(digest[:4], "big") % _TID_SPAN

    @property
    def root(self) -> Path:
        """The pool's own folder of the LUN directory."""
        return contained(self.lun_dir, self.pool)

    @property
    def file(self) -> Path:
        return contained(self.lun_dir, self.pool, f"{self.volume}.lun")

    @property
    def part(self) -> Path:
        """Where a LUN is filled before it is complete (a template, a copy)."""
        return contained(self.lun_dir, self.pool, f".{self.volume}.lun.part")

    @property
    def secret_file(self) -> Path:
        return contained(self.lun_dir, self.pool, f"{self.volume}.chap")

    def password(self, *, create: bool) -> str:
        """The volume's CHAP password; made (0600, never overwritten) if `create`."""
        path = self.secret_file
        try:
            return _read_secret(path)
        except FileNotFoundError:
            if not create:
                raise
        password = "".join(secrets.choice(_ALPHABET) for _ in range(_PASSWORD_LENGTH))
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(path, flags, 0o600)
        except FileExistsError:  # made by a concurrent run: theirs holds
            return _read_secret(path)
        with os.fdopen(fd, "w") as out:
            out.write(password)  # no newline: qemu's secret object reads it all
        return password

    def forget(self) -> None:
        """Remove the LUN file, a half-filled one and the secret; gone is fine."""
        for path in (self.part, self.file, self.secret_file):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def _read_secret(path: Path) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd) as source:
        password = source.read()
    if not password or any(c not in _ALPHABET for c in password):
        # never the content: it is a secret, even when damaged
        raise InvalidInput("CHAP secret file", str(path), "damaged")
    return password
