"""Driving the projections: pull from the Ledger's notification log, apply, track.

SQLite's recorder cannot subscribe, so the follower always pulls:
`select_notifications` after the tracked position, a batch at a time, each batch
applied with its one tracking row in one transaction (batching is what makes a
rebuild fast). PostgreSQL ids may have gaps: the position is the last id seen, never
"the previous one plus one". Writes every table of `schema.py`.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError

from projections.view import APPLICATION_NAME, apply_batch, view_for


def position(ledger: Application[Any]) -> int:
    """The last notification id the tables reflect (0: none)."""
    return view_for(ledger).max_tracking_id(APPLICATION_NAME) or 0


def catch_up(
    ledger: Application[Any], batch: int = 500, stop: int | None = None
) -> int:
    """Apply every notification after the tracked position (up to `stop`, if
    given); returns how many this call applied."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    view = view_for(ledger)
    decode = ledger.mapper.to_domain_event
    applied = 0
    while True:
        last = view.max_tracking_id(APPLICATION_NAME) or 0
        if stop is not None and last >= stop:
            return applied
        notifications = ledger.recorder.select_notifications(
            start=last, limit=batch, stop=stop, inclusive_of_start=False
        )
        if not notifications:
            return applied
        # Decoded one at a time as applied: a batch of decoded events held at once
        # costs the garbage collector more than the decoding itself.
        items = ((n.id, decode(n)) for n in notifications)
        try:
            apply_batch(view, items, notifications[-1].id)
        except IntegrityError:
            # Another follower applied (part of) this batch first: go on from
            # where it got to; a failure with the position unmoved is real.
            if (view.max_tracking_id(APPLICATION_NAME) or 0) > last:
                continue
            raise
        applied += len(notifications)
        if len(notifications) < batch:
            return applied


def status(ledger: Application[Any]) -> dict[str, int]:
    """`position` (tracked), `head` (newest notification id) and `lag` (their gap
    in ids; PostgreSQL's rolled-back ids can make it overstate, never understate)."""
    at = position(ledger)
    head = ledger.recorder.max_notification_id() or 0
    return {"position": at, "head": head, "lag": max(head - at, 0)}


def rebuild(ledger: Application[Any], batch: int = 5000) -> int:
    """Drop the tables and this follower's tracking row, then apply every event.

    Batches are ten times `catch_up`'s: nobody waits on a rebuild's next batch, and
    each batch pays a commit and a tracking read. The secondary indexes are built
    once at the end, cheaper than kept up row by row (a rebuild that stops midway
    still builds them, or the next process start does)."""
    view = view_for(ledger)
    view.reset(indexes=False)
    try:
        return catch_up(ledger, batch=batch)
    finally:
        view.create_indexes()
