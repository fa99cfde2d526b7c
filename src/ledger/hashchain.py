"""The ledger's hash chain: what makes an edit of stored history visible.

Every stored event gets three SHA-256 hashes when it is appended:

- `content`: of its stored fields (object id, version, topic, state bytes), each
  length-prefixed so no two different events share the bytes hashed;
- `stream`: `sha256(previous stream hash of the same object + content)`, the
  object's first event chained to 32 zero bytes;
- `log`: `sha256(previous log hash + content)`, in notification order.

Positions are deliberately not hashed: PostgreSQL's positions have permanent gaps
and a replay into a new file renumbers them, yet the order is still sealed, because
each link names the one before it. What the chain cannot show without an outside
anchor is a forger who rewrites every hash after an edit, or who removes the newest
events together with their hashes: `ledger verify` prints the head so an operator
can keep it elsewhere and compare (`--head`).

`first_break` walks the log and the recorded hashes side by side and names the first
event that does not hold; it is pure (the store reads the rows, `where` asks where a
hash was recorded). On PostgreSQL each hash row also holds the role the server saw
append it (`db_user`), and an event's `actor` must be that role.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from uuid import UUID

GENESIS = bytes(32)


def object_key(originator_id: UUID | str) -> str:
    """The object id as hashed: 32 hex digits, whatever the store returned."""
    return (
        originator_id.hex
        if isinstance(originator_id, UUID)
        else UUID(originator_id).hex
    )


def content_hash(
    originator_id: UUID | str, version: int, topic: str, state: bytes
) -> bytes:
    digest = hashlib.sha256()
    for part in (
        object_key(originator_id).encode(),
        str(version).encode(),
        topic.encode(),
        bytes(state),
    ):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.digest()


def link(previous: bytes, content: bytes) -> bytes:
    return hashlib.sha256(bytes(previous) + content).digest()


@dataclass(frozen=True)
class Sealed:
    """One event's hashes, as recorded beside it."""

    notification_id: int
    originator_id: str  # object_key
    originator_version: int
    content: bytes
    stream: bytes
    log: bytes
    db_user: str | None = None


class Chainer:
    """Computes the hashes of events appended after a known head.

    `log_head` is the newest recorded log hash; `stream_heads` the newest recorded
    stream hash of each object the new events continue (absent: the object is new,
    its first event chains to `GENESIS`)."""

    def __init__(self, log_head: bytes, stream_heads: dict[str, bytes]) -> None:
        self.log_head = bytes(log_head)
        self.stream_heads = dict(stream_heads)

    def seal(
        self,
        notification_id: int,
        originator_id: UUID | str,
        version: int,
        topic: str,
        state: bytes,
    ) -> Sealed:
        key = object_key(originator_id)
        content = content_hash(key, version, topic, state)
        stream = link(self.stream_heads.get(key, GENESIS), content)
        log = link(self.log_head, content)
        self.stream_heads[key], self.log_head = stream, log
        return Sealed(notification_id, key, version, content, stream, log)


@dataclass(frozen=True)
class Stored:
    """One stored event as the log holds it."""

    notification_id: int
    originator_id: UUID | str
    originator_version: int
    topic: str
    state: bytes


@dataclass(frozen=True)
class Break:
    """The first event that does not hold, and what is wrong with it."""

    notification_id: int
    originator_id: str
    originator_version: int
    why: str

    def line(self) -> str:
        return (
            f"notification {self.notification_id} (object {UUID(self.originator_id)} "
            f"version {self.originator_version}): {self.why}"
        )


@dataclass(frozen=True)
class Walked:
    """A clean walk: how many events, and the head hash to keep elsewhere."""

    count: int
    head: bytes


#: (object key, version) -> the position its hash is recorded at, if anywhere
Where = Callable[[str, int], int | None]


def _paired(
    events: Iterable[Stored], sealed: Iterable[Sealed]
) -> Iterator[tuple[int, Stored | None, Sealed | None]]:
    """Both ordered streams merged by position."""
    ev, se = iter(events), iter(sealed)
    e, s = next(ev, None), next(se, None)
    while e is not None or s is not None:
        if s is None or (e is not None and e.notification_id < s.notification_id):
            assert e is not None
            yield e.notification_id, e, None
            e = next(ev, None)
        elif e is None or s.notification_id < e.notification_id:
            yield s.notification_id, None, s
            s = next(se, None)
        else:
            yield e.notification_id, e, s
            e, s = next(ev, None), next(se, None)


def _actor(state: bytes) -> str | None:
    try:
        value = json.loads(state).get("actor")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def first_break(
    events: Iterable[Stored],
    sealed: Iterable[Sealed],
    where: Where,
    *,
    check_actor: bool = False,
) -> Break | Walked:
    """Walk the log (`events`, by position) against its recorded hashes
    (`sealed`, by position) and name the first event edited, deleted, moved or
    inserted by hand, or return the count and head of a clean log."""
    log_head = GENESIS
    streams: dict[str, tuple[int, bytes]] = {}  # object -> (version, stream hash)
    count = 0
    for position, event, seal in _paired(events, sealed):
        if event is None:
            assert seal is not None
            return Break(
                position,
                seal.originator_id,
                seal.originator_version,
                "deleted: its hash is recorded but the event is gone",
            )
        key = object_key(event.originator_id)
        version = event.originator_version

        broken = partial(Break, position, key, version)

        if seal is None or (seal.originator_id, seal.originator_version) != (
            key,
            version,
        ):
            recorded = where(key, version)
            if recorded is not None and recorded != position:
                return broken(
                    f"reordered: its hash is recorded at notification {recorded}"
                )
            return broken("inserted by hand: no hash was recorded when it was appended")
        content = content_hash(key, version, event.topic, event.state)
        if content != bytes(seal.content):
            return broken("edited: its content does not match the hash recorded")
        last_version, last_stream = streams.get(key, (0, GENESIS))
        if version != last_version + 1:
            return broken(
                f"stream broken: version {version} follows version {last_version} "
                "(an event of this object was deleted or moved)"
            )
        stream = link(last_stream, content)
        if stream != bytes(seal.stream):
            return broken(
                "stream broken: its chain does not follow the object's previous event"
            )
        log = link(log_head, content)
        if log != bytes(seal.log):
            return broken(
                "log chain broken: an event before it was deleted, inserted or moved"
            )
        if check_actor and seal.db_user is not None:
            actor = _actor(event.state)
            if actor != seal.db_user:
                return broken(
                    f"actor {actor!r} is not the role that appended it"
                    f" ({seal.db_user!r})"
                )
        streams[key] = (version, stream)
        log_head = log
        count += 1
    return Walked(count, log_head)
