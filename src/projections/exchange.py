"""Export and import of event logs as JSON lines, so an incident travels.

One line per stored event: `position`, `originator_id`, `originator_version`,
`topic`, `timestamp`, and `state`, the event's stored JSON (the library's
transcoding, with its `{"_type_": ..., "_data_": ...}` markers, so the bytes come
back identical), and the hashes recorded when it was appended (`content_hash`,
`stream_hash`, `log_hash`, hex; `ledger.hashchain`). CloudStack has no twin; its
nearest is a database dump.

An import recomputes every hash: each line's content, each object's stream from
its first version, and, for a whole log (its first line chained to the genesis),
every log link; a file whose chain breaks is refused like any bad line.

An import is all or nothing: every line is checked first (JSON, fields, a topic
today's code knows, a state that decodes, positions increasing, each object's
versions 1, 2, 3, ...), and the first bad line refuses the whole file, naming it.
Then every event goes in one transaction, the followers are marked done (no
command is sent again) and the projections are caught up.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import resolve_topic

from ledger.errors import InvalidInput, Refused
from ledger.hashchain import GENESIS, Sealed, content_hash, link
from ledger.store.chain_reads import sealed_rows
from projections.db import iso
from projections.projector import catch_up, decoder
from projections.replay import copy_events, notifications

FIELDS = (
    "position",
    "originator_id",
    "originator_version",
    "topic",
    "state",
    "content_hash",
    "stream_hash",
    "log_hash",
)
HASHES = ("content_hash", "stream_hash", "log_hash")


class BadLine(Refused):
    """One line of an import that refuses the whole file."""

    def __init__(self, source: str, line: int, why: str) -> None:
        super().__init__(source=source, line=line, why=why)

    def message(self) -> str:
        f = self.facts
        return f"{f['source']} line {f['line']}: {f['why']}; nothing imported"


def _encode_state(state: Any) -> bytes:
    # The library's own encoder settings, so exported state comes back byte-equal.
    return json.dumps(state, separators=(",", ":"), ensure_ascii=False).encode()


def export_lines(
    ledger: Application[Any],
    *,
    since: datetime | None = None,
    since_position: int | None = None,
    object_id: str | None = None,
    job: str | None = None,
    whole_objects: bool = False,
) -> Iterator[str]:
    """The selected events as JSON lines, in log order. `whole_objects` adds every
    earlier event of each object selected, so a filtered file still imports."""
    selected: list[tuple[Any, Any]] = []
    picked: dict[str, int] = {}  # object -> last selected version
    everything = []
    decode = decoder(ledger)
    for note in notifications(ledger):
        event = decode(note)
        everything.append((note, event))
        if since is not None and event.timestamp < since:
            continue
        if since_position is not None and note.id < since_position:
            continue
        if object_id is not None and str(note.originator_id) != object_id:
            continue
        if job is not None and getattr(event, "job_id", None) != job:
            continue
        selected.append((note, event))
        picked[str(note.originator_id)] = note.originator_version
    if whole_objects:
        selected = [
            (note, event)
            for note, event in everything
            if note.originator_version <= picked.get(str(note.originator_id), 0)
        ]
    recorded = _recorded(ledger)
    for note, event in selected:
        seal = recorded(note.id)
        yield json.dumps(
            {
                "position": note.id,
                "originator_id": str(note.originator_id),
                "originator_version": note.originator_version,
                "topic": note.topic,
                "timestamp": iso(event.timestamp),
                "state": json.loads(note.state),
                "content_hash": seal.content.hex() if seal else None,
                "stream_hash": seal.stream.hex() if seal else None,
                "log_hash": seal.log.hex() if seal else None,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )


def _recorded(ledger: Application[Any]) -> Callable[[int], Sealed | None]:
    """The recorded hashes by position, for positions asked in increasing order
    (one pass over the hash table)."""
    rows = (
        sealed_rows(ledger.recorder)
        if hasattr(ledger.recorder, "hashes_table_name")
        else iter(())
    )
    current: list[Sealed | None] = [next(rows, None)]

    def at(position: int) -> Sealed | None:
        while current[0] is not None and current[0].notification_id < position:
            current[0] = next(rows, None)
        seal = current[0]
        return seal if seal is not None and seal.notification_id == position else None

    return at


class _ChainCheck:
    """The file's hashes recomputed line by line (see the module's docstring)."""

    def __init__(self) -> None:
        self.streams: dict[str, bytes] = {}
        self.log: bytes | None = None
        self.whole: bool | None = None

    def why_not(
        self, oid: UUID, version: int, topic: str, state: bytes, record: dict[str, Any]
    ) -> str | None:
        try:
            given = {k: bytes.fromhex(str(record[k])) for k in HASHES}
        except ValueError:
            return "a hash is not hex"
        content = content_hash(oid, version, topic, state)
        if content != given["content_hash"]:
            return "hash chain breaks: content_hash does not match the event"
        key = oid.hex
        if link(self.streams.get(key, GENESIS), content) != given["stream_hash"]:
            return (
                "hash chain breaks: stream_hash does not follow the object's"
                " previous event"
            )
        self.streams[key] = given["stream_hash"]
        if self.whole is None:
            self.whole = link(GENESIS, content) == given["log_hash"]
        elif (
            self.whole
            and self.log is not None
            and link(self.log, content) != given["log_hash"]
        ):
            return "hash chain breaks: log_hash does not follow the previous line"
        self.log = given["log_hash"]
        return None


def parse_lines(
    ledger: Application[Any], lines: Iterable[str], source: str = "import"
) -> list[StoredEvent]:
    """Every line checked; the stored events to insert, or `BadLine`."""
    events: list[StoredEvent] = []
    last_position = 0
    versions: dict[UUID, int] = {}
    chain = _ChainCheck()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue

        def bad(why: str, number: int = number) -> BadLine:
            return BadLine(source, number, why)

        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise bad(f"not JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise bad("not a JSON object")
        missing = [f for f in FIELDS if f not in record]
        if missing:
            raise bad(f"missing {', '.join(missing)}")
        position, version = record["position"], record["originator_version"]
        if not isinstance(position, int) or isinstance(position, bool):
            raise bad("position is not an integer")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise bad("originator_version is not a positive integer")
        if not isinstance(record["state"], dict):
            raise bad("state is not a JSON object")
        try:
            oid = UUID(str(record["originator_id"]))
        except ValueError:
            raise bad(f"originator_id {record['originator_id']!r} is no uuid") from None
        topic = record["topic"]
        try:
            if not isinstance(topic, str):
                raise TypeError(topic)
            resolve_topic(topic)
        except Exception:
            raise bad(f"unknown topic {topic!r}") from None
        if position <= last_position:
            raise bad(f"position {position} does not follow {last_position}")
        expected = versions.get(oid, 0) + 1
        if version != expected:
            raise bad(f"object {oid} version {version}, expected {expected}")
        event = StoredEvent(oid, version, topic, _encode_state(record["state"]))
        broken = chain.why_not(oid, version, topic, event.state, record)
        if broken is not None:
            raise bad(broken)
        try:
            decoded: Any = ledger.mapper.to_domain_event(event)
            iso(decoded.timestamp)
        except Exception as exc:
            raise bad(f"state does not decode: {exc}") from None
        last_position, versions[oid] = position, version
        events.append(event)
    return events


def import_lines(
    ledger: Application[Any], lines: Iterable[str], source: str = "import"
) -> int:
    """Import into an empty ledger, all or nothing; returns how many events."""
    if ledger.recorder.max_notification_id():
        raise InvalidInput(
            "--db", "target", "already holds events: import needs one empty"
        )
    events = parse_lines(ledger, lines, source)
    copy_events(ledger, events)
    catch_up(ledger)
    return len(events)
