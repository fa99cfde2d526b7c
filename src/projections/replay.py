"""Time travel: the ledger as it was at a position (or a time), in a new file.

CloudStack can only show its tables as they are now; here every table is a fold of
the log, so a prefix of the log gives the tables as they were then. `replay_into`
copies the stored events of the prefix, byte for byte and in order, into a fresh
ledger, marks its followers (workflows, dispatchers) as done so no command is sent
to an agent again, and catches its projections up: the whole CLI then reads it with
`--db FILE`. A prefix is always a consistent state (every save is one transaction),
which is why a time is turned into the prefix before the first event after it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import Notification, StoredEvent, Tracking

from ledger.errors import InvalidInput
from projections.runner import catch_up

BATCH = 500

#: followers whose tracking rows a replayed ledger marks as done
FOLLOWERS = ("workflow", "dispatcher")


def parse_time(text: str, what: str = "time") -> datetime:
    """An ISO 8601 time (`2025-01-31`, `...T10:00:00Z`, `+02:00`); naive means UTC."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        raise InvalidInput(what, text, "expected an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def notifications(
    ledger: Application[Any], stop: int | None = None
) -> Iterator[Notification]:
    """Every stored event (up to notification id `stop`), in log order."""
    last = 0
    while True:
        notes = ledger.recorder.select_notifications(
            start=last, limit=BATCH, stop=stop, inclusive_of_start=False
        )
        yield from notes
        if len(notes) < BATCH:
            return
        last = notes[-1].id


def resolve_until(ledger: Application[Any], until: str) -> int:
    """`until` as a notification position: a position as given, or for a time the
    last position before the first event stamped after it (0: nothing)."""
    text = until.strip()
    if text.isdigit():
        return int(text)
    if text.startswith("-"):
        raise InvalidInput("--until", until, "a position is 0 or more")
    moment = parse_time(text, "--until")
    last = 0
    for note in notifications(ledger):
        event: Any = ledger.mapper.to_domain_event(note)
        if event.timestamp > moment:
            break
        last = note.id
    return last


def _stored(note: Notification) -> StoredEvent:
    return StoredEvent(
        originator_id=note.originator_id,
        originator_version=note.originator_version,
        topic=note.topic,
        state=note.state,
    )


def copy_events(target: Application[Any], events: Sequence[StoredEvent]) -> int:
    """Insert `events` into an empty ledger in one transaction, then mark its
    followers done at the head; returns the head position."""
    if events:
        target.recorder.insert_events(list(events))
    head: int = target.recorder.max_notification_id() or 0
    if head:
        for name in FOLLOWERS:
            target.recorder.insert_events([], tracking=Tracking(name, head))
    return head


def replay_into(source: Application[Any], target: Application[Any], stop: int) -> int:
    """Copy every event of `source` up to position `stop` into `target` (empty) and
    bring its tables up to date; returns how many events were copied."""
    if target.recorder.max_notification_id():
        raise InvalidInput("target", "ledger", "already holds events")
    events = [_stored(note) for note in notifications(source, stop)] if stop else []
    copy_events(target, events)
    catch_up(target)
    return len(events)
