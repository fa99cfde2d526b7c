"""How many commands a host runs at once: CloudStack's per-host thresholds.

CloudStack bounds the snapshots a host takes at once
(`concurrent.snapshots.threshold.perhost`: the excess snapshot jobs wait in the
host's sync queue) and an agent runs a few commands at a time (its `workers`).
Here both are limits on the commands in flight per host, held in the database
as slots (`executors.host_slots`) so that every dispatcher of every process
counts the same ones. This module is the rule, pure: which slots are stale,
whether a command may start, and what a queued one waits behind. A command that
may not start is not sent: it queues, in the order of its request, and starts
when a slot it needs is given back (its command answered, or its wait over).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

SNAPSHOTS = "concurrent.snapshots.threshold.perhost"
COMMANDS = "concurrent.commands.threshold.perhost"

RUNNING, QUEUED = "running", "queued"


class SettingsLike(Protocol):
    def get(self, key: str) -> Any: ...


@dataclass(frozen=True)
class Limits:
    """The thresholds in force; 0 is unlimited (CloudStack's NULL)."""

    commands: int
    snapshots: int

    @classmethod
    def of(cls, settings: SettingsLike) -> Limits:
        return cls(int(settings.get(COMMANDS)), int(settings.get(SNAPSHOTS)))


def is_snapshot(command: Any) -> bool:
    """Whether a command counts against the snapshot threshold: taking a
    snapshot (`CreateObjectCommand` of a `SnapshotObjectTO`) and backing one up
    (`CopyCommand` from a snapshot to a snapshot), the two CloudStack throttles."""
    kind = getattr(command, "kind", "")
    if kind == "CreateObjectCommand":
        return _is_snapshot_to(getattr(command, "data", None))
    if kind == "CopyCommand":
        return _is_snapshot_to(getattr(command, "srcTO", None)) and _is_snapshot_to(
            getattr(command, "destTO", None)
        )
    return False


def _is_snapshot_to(to: Any) -> bool:
    return getattr(to, "objectType", None) == "SNAPSHOT"


Holder = tuple[str, int, str]  # (machine, pid, the dispatcher's token)


@dataclass(frozen=True)
class Slot:
    """One command's place on its host: running (counted) or queued (waiting).

    `holder` is the dispatcher that sent or queued it (host, pid, token); the
    slot lasts until `expires` (epoch seconds): a running one until its
    command's wait ends, a queued one until its dispatcher stops asking."""

    request: int  # the request's position in the log: the queue's order
    host: str
    snapshot: bool
    state: str
    job_id: str
    command: str
    holder: Holder
    expires: float


def stale(slot: Slot, now: float, alive: Callable[[Holder], bool]) -> bool:
    """A slot nobody holds any more: its wait is over, or its holder is gone (a
    killed worker answers nothing; its request is sent again by the next one)."""
    return slot.expires <= now or not alive(slot.holder)


def refusal(running: Iterable[Slot], candidate: Slot, limits: Limits) -> str | None:
    """The threshold `candidate` would pass if it started beside `running` (the
    key's name), or None when it fits."""
    busy = list(running)
    if limits.commands and len(busy) >= limits.commands:
        return COMMANDS
    if (
        candidate.snapshot
        and limits.snapshots
        and sum(1 for s in busy if s.snapshot) >= limits.snapshots
    ):
        return SNAPSHOTS
    return None


@dataclass(frozen=True)
class Verdict:
    """What a claim decided: `start`, or queue behind `behind` (the running
    slots holding the threshold `key`); `elsewhere` when the same request runs
    under another live holder already (nothing to send twice)."""

    start: bool
    key: str | None = None
    behind: tuple[Slot, ...] = ()
    elsewhere: bool = False


def decide(slots: Sequence[Slot], candidate: Slot, limits: Limits) -> Verdict:
    """May `candidate` start now, given the host's live `slots` (stale ones
    already gone)? Earlier requests queued on the host go first: the candidate
    starts only if it still fits once every earlier queued one that fits has
    started (a later command never takes the slot an earlier one waits for;
    one the snapshot threshold holds back does not hold back a volume create).
    Counting is monotone, so a start never passes a threshold whatever the
    earlier ones then do."""
    mine = next((s for s in slots if s.request == candidate.request), None)
    if mine is not None and mine.state == RUNNING:
        if mine.holder == candidate.holder:
            return Verdict(start=True)  # already ours (a claim asked twice)
        return Verdict(start=False, elsewhere=True)
    others = [s for s in slots if s.request != candidate.request]
    running = [s for s in others if s.state == RUNNING]
    ahead = sorted(
        (s for s in others if s.state == QUEUED and s.request < candidate.request),
        key=lambda s: s.request,
    )
    would_run = list(running)
    for earlier in ahead:
        if refusal(would_run, earlier, limits) is None:
            would_run.append(earlier)
    key = refusal(would_run, candidate, limits)
    if key is None:
        return Verdict(start=True)
    return Verdict(start=False, key=key, behind=holding(running, candidate, key))


def holding(running: Iterable[Slot], queued: Slot, key: str) -> tuple[Slot, ...]:
    """The running slots a queued command waits behind under threshold `key`:
    the host's snapshots for the snapshot threshold, every command else."""
    return tuple(
        sorted(
            (s for s in running if key != SNAPSHOTS or s.snapshot),
            key=lambda s: s.request,
        )
    )


def waiting(slots: Sequence[Slot], limits: Limits) -> dict[int, Verdict]:
    """For every queued slot of one host's live `slots`: what it waits behind
    now (what `job list` shows)."""
    out: dict[int, Verdict] = {}
    for slot in slots:
        if slot.state == QUEUED:
            verdict = decide(slots, slot, limits)
            if verdict.start:
                # room has just come free: it starts at its dispatcher's next round
                verdict = Verdict(start=False, key=None, behind=())
            out[slot.request] = verdict
    return out
