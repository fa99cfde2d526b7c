"""A follower of the notification log: its position, and a batch decided as one unit.

The engine's workflow follower (and the dispatcher's reading) pull the
notifications after their position, a batch at a time (SQLite cannot push them),
and save what a batch decided in one transaction with the follower's tracking row,
so a crash never loses or doubles a state change. A batch that loses a race is
decided again one notification at a time, from fresh state.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from eventsourcing.persistence import Notification, Tracking

from ledger.app import Ledger
from ledger.store.reader import selector

BATCH = 200
#: A batch's decisions are saved at the latest this long after the first (a slow
#: host command's answer is not kept waiting for the commands after it).
FLUSH = 0.5


class Follower:
    """Pulls notifications after its position, one batch at a time."""

    def __init__(
        self, ledger: Ledger, name: str, decode: Callable[[Notification], Any]
    ) -> None:
        self.ledger = ledger
        self.name = name
        self.decode = decode
        self.select = selector(ledger)  # the log's one reader
        self.position = 0
        self.acted = 0  # notifications it saved something for, ever
        self.fallbacks = 0  # batches decided again one notification at a time
        self.last: list[Notification] = []  # the batch of its last step
        self.resync()

    def _tracked(self) -> int:
        tracked: int | None = self.ledger.recorder.max_tracking_id(  # type: ignore[attr-defined]
            self.name
        )
        return tracked or 0

    def resync(self) -> bool:
        """Catch up with our tracking row, which another process may have moved
        while it held the lease; True when it had."""
        tracked = self._tracked()
        if tracked > self.position:
            self.position = tracked
            return True
        return False

    def step(
        self,
        handle: Callable[[Notification, Any], bool],
        notes: list[Notification] | None = None,
    ) -> int:
        """One batch after our position: read, or `notes` when another follower
        just read them from the same position. Their decisions are saved together
        with our tracking row (a slow batch in parts, `FLUSH`)."""
        if notes is None:
            notes = list(self.select(self.position, BATCH, None))
        self.last = notes
        done = 0
        while done < len(notes):
            done = self._batch(handle, notes, done)
        return len(notes)

    def _batch(
        self,
        handle: Callable[[Notification, Any], bool],
        notes: list[Notification],
        first: int,
    ) -> int:
        """Decide notes[first:] in one unit of work (`Ledger.following`) and save
        it in one transaction; the index after the last note decided.

        When the save loses a race, or a decision raised or changed what it did
        not return, the batch is decided again one notification at a time from
        fresh state, each saved with its own tracking row, as before batches
        (the dispatcher then sends those commands again: agents are idempotent)."""
        began = time.monotonic()
        acted = 0
        end = first
        try:
            with self.ledger.following(
                self.position, notes[first:], self.decode
            ) as batch:
                for note in notes[first:]:
                    if handle(note, self.decode(note)):
                        acted += 1
                    end += 1
                    if time.monotonic() - began > FLUSH:
                        break
            self.ledger.save_batch(batch, Tracking(self.name, notes[end - 1].id))
        except Exception:
            self.fallbacks += 1
            for note in notes[first:]:
                if handle(note, self.decode(note)):
                    self.acted += 1
                self.position = note.id
            return len(notes)
        self.acted += acted
        self.position = notes[end - 1].id
        return end
