"""Replay verification: today's machines and workflows over every recorded event.

CloudStack has no twin of this; it is the audit's strongest question: "would the
code we run today have done what the log says was done?" Three checks, each
divergence reported with the notification position it concerns:

- `load`: every aggregate folds from its events (and ends at its last version).
- `transition`: every recorded step (`trigger`, `from_state`, `to_state`; a pool's
  `from_status`/`to_status`) of a kind with a table (`fsm.SPECS`: volume, snapshot,
  objectinstore, template, pool, vm, host, job) is re-asked of the table, and the
  from-state is the state the object was in. A job's settlement records no
  from-state: it is the replayed job's.
  A trigger the table has never heard of that moves no state (storctl's detach:
  `DetachRequested`, Ready -> Ready) is storctl's own bookkeeping, not a
  transition, and is skipped; an unknown trigger that moves state is a divergence.
- `workflow`: at each recorded `...Answered` event, `workflows.decide` runs again on
  an in-memory ledger holding the log as it was when the decision was saved (just
  before the first event the answer caused, or at the answer when it caused
  nothing), and the events it would produce are compared with the recorded events
  whose `causation_id` names that answer: event class, object, command kind and id.

The recorded answers stand in for the agents, so nothing runs on a host. Pure but
for reading the source ledger's event store.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import Notification, StoredEvent

from ledger.aggregate import Answered
from ledger.errors import StorctlError
from ledger.fsm import SPECS, Spec
from ledger.store.decoder import decoder
from ledger.store.reader import Note, selector

#: aggregate class name -> its table
SPEC_OF: dict[str, Spec] = {
    "Volume": SPECS["volume"],
    "Snapshot": SPECS["snapshot"],
    "DataObjectInStore": SPECS["objectinstore"],
    "Template": SPECS["template"],
    "StoragePool": SPECS["pool"],
    "VirtualMachine": SPECS["vm"],
    "Host": SPECS["host"],
    "Job": SPECS["job"],
}

BATCH = 500


@dataclass(frozen=True)
class Divergence:
    """One difference between the log and what today's code says."""

    position: int
    check: str  # load | transition | workflow
    objecttype: str
    objectid: str
    event: str
    expected: str
    recorded: str

    def as_row(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Report:
    events: int = 0
    aggregates: int = 0
    transitions: int = 0
    skipped: int = 0  # steps with a trigger the table does not know, no state move
    answers: int = 0
    divergences: list[Divergence] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.divergences

    def summary(self) -> dict[str, int]:
        return {
            "events": self.events,
            "aggregates": self.aggregates,
            "transitions": self.transitions,
            "skipped": self.skipped,
            "answers": self.answers,
            "divergences": len(self.divergences),
        }


@dataclass(frozen=True)
class Recorded:
    position: int
    note: Notification | Note
    event: Any


def kind_of(event: object) -> str:
    """The aggregate class an event belongs to (events are nested classes)."""
    return type(event).__qualname__.split(".")[0]


def event_name(event: object) -> str:
    return type(event).__qualname__.split(".")[-1]


def event_key(event: Any) -> str:
    """What a workflow decision is compared by: class, object, command."""
    obj = str(event.originator_id) if event.originator_version > 1 else "(new)"
    key = f"{type(event).__qualname__} {obj}"
    command = getattr(event, "command", None)
    if isinstance(command, dict):
        key += f" {command.get('kind')} {command.get('commandId')}"
    return key


def read_log(source: Application[Any], stop: int | None = None) -> Iterator[Recorded]:
    """Every notification (up to `stop`), decoded, in log order (the log's one
    reader and decoder, `ledger.store`)."""
    select, decode = selector(source), decoder(source)
    last = 0
    while True:
        notes = select(last, BATCH, stop)
        for note in notes:
            yield Recorded(note.id, note, decode(note))
        if len(notes) < BATCH:
            return
        last = notes[-1].id


def stored(note: Notification | Note) -> StoredEvent:
    return StoredEvent(
        originator_id=note.originator_id,
        originator_version=note.originator_version,
        topic=note.topic,
        state=note.state,
    )


def _name(value: Any) -> str:
    return value.name if isinstance(value, Enum) else str(value)


def _moved(event: Any, end: str) -> str | None:
    """The event's recorded `from`/`to` state: `from_state`, or a pool's
    `from_status` (CloudStack's column is `status`); None when it records none."""
    value = getattr(event, f"{end}_state", getattr(event, f"{end}_status", None))
    return None if value is None else _name(value)


def _state_of(aggregate: Any) -> str | None:
    """The state the aggregate's table moves: `state`, or `status` for a pool and
    a job (CloudStack's `storage_pool.status`, `async_job.job_status`)."""
    value = getattr(aggregate, "state", getattr(aggregate, "status", None))
    return None if value is None else _name(value)


class Verifier:
    """Folds the log into an in-memory ledger, checking as it goes."""

    def __init__(self, log: Sequence[Recorded]) -> None:
        from ledger.app import Ledger  # the application imports every aggregate

        self.log = log
        self.mem = Ledger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
        self.report = Report(events=len(log))
        self.caused: dict[str, list[Recorded]] = defaultdict(list)
        for rec in log:
            cause = getattr(rec.event, "causation_id", None)
            if cause:
                self.caused[str(cause)].append(rec)

    def diverge(self, rec: Recorded, check: str, expected: str, recorded: str) -> None:
        self.report.divergences.append(divergence(rec, check, expected, recorded))

    def run(self) -> Report:
        # decisions to replay just before the position of their first caused event
        deferred: dict[int, list[Recorded]] = defaultdict(list)
        # second looks: decisions about answers that caused nothing, again once
        # the effects of earlier answers of the same batch are in (see below)
        second: dict[int, list[tuple[Recorded, list[Divergence]]]] = defaultdict(list)
        horizon = 0  # the last effect of any answer seen so far
        last_version: dict[UUID, tuple[int, Recorded]] = {}
        for rec in self.log:
            for answer in deferred.pop(rec.position, []):
                self.report.divergences += self.check_workflow(answer)
            self.check_transition(rec)
            self.mem.recorder.insert_events([stored(rec.note)])
            last_version[rec.note.originator_id] = (  # type: ignore[index]
                rec.note.originator_version,
                rec,
            )
            for answer, first in second.pop(rec.position, []):
                if self.check_workflow(answer):
                    self.report.divergences += first
            if isinstance(rec.event, Answered):
                self.report.answers += 1
                effects = self.caused.get(self.cause_key(rec), [])
                if effects:
                    deferred[effects[0].position].append(rec)
                    horizon = max(horizon, effects[-1].position)
                    continue
                found = self.check_workflow(rec)
                if found and horizon > rec.position:
                    # A follower decides a batch of answers in order and saves
                    # their effects together: this answer's decision then saw
                    # the effects of the earlier ones, recorded after it. The
                    # decision stands if it is the recorded one in either view.
                    second[horizon].append((rec, found))
                else:
                    self.report.divergences += found
        for answers in deferred.values():  # pragma: no cover - effects are later
            for answer in answers:
                self.report.divergences += self.check_workflow(answer)
        self.check_loads(last_version)
        self.report.divergences.sort(key=lambda d: (d.position, d.check))
        return self.report

    @staticmethod
    def cause_key(rec: Recorded) -> str:
        return f"{rec.event.originator_id}/{rec.event.originator_version}"

    # ------------------------------------------------------------ checks

    def check_loads(self, last_version: dict[UUID, tuple[int, Recorded]]) -> None:
        self.report.aggregates = len(last_version)
        for oid, (version, rec) in last_version.items():
            try:
                agg: Any = self.mem.repository.get(oid)
            except Exception as exc:  # any failure to fold is the finding
                self.diverge(rec, "load", f"loads at version {version}", repr(exc))
                continue
            if agg.version != version:
                self.diverge(
                    rec, "load", f"version {version}", f"version {agg.version}"
                )

    def check_transition(self, rec: Recorded) -> None:
        event = rec.event
        spec = SPEC_OF.get(kind_of(event))
        trigger = getattr(event, "trigger", None)
        after = _moved(event, "to")
        if spec is None or trigger is None or after is None:
            return
        recorded_from = _moved(event, "from")
        known = any(t == trigger for _, t in spec.lookup)
        if not known and recorded_from == after:
            self.report.skipped += 1
            return
        current = self.state_before(rec)
        # a job's settlement records no from-state: the one the job was in
        before = recorded_from if recorded_from is not None else current
        if before is None:
            return  # nor does the job load: check_loads reports it
        self.report.transitions += 1
        allowed = spec.lookup.get((before, trigger))
        if allowed is None:
            self.diverge(
                rec,
                "transition",
                f"{spec.kind}: no {trigger} from {before}",
                f"{before} -{trigger}-> {after}",
            )
        elif allowed != after:
            self.diverge(
                rec,
                "transition",
                f"{before} -{trigger}-> {allowed}",
                f"{before} -{trigger}-> {after}",
            )
        if current is not None and current != before:
            self.diverge(
                rec,
                "transition",
                f"from the object's state {current}",
                f"from {before}",
            )

    def state_before(self, rec: Recorded) -> str | None:
        """The object's state just before `rec`, replayed; None for a new object
        or one that does not load (check_loads reports that)."""
        if rec.note.originator_version == 1:
            return None
        try:
            agg: Any = self.mem.repository.get(rec.event.originator_id)
        except Exception:  # reported by check_loads
            return None
        return _state_of(agg)

    def check_workflow(self, answer: Recorded) -> list[Divergence]:
        """Today's decision about `answer` against what its effects were."""
        from ledger.workflows import decide

        recorded = Counter(
            event_key(r.event) for r in self.caused.get(self.cause_key(answer), [])
        )
        try:
            decided = decide(self.mem, answer.event)
        except StorctlError as exc:
            return [divergence(answer, "workflow", "a decision", f"refused: {exc}")]
        # a step may return one aggregate twice (saving it once): count it once
        unique = {id(agg): agg for agg in decided if agg is not None}
        expected = Counter(
            event_key(e) for agg in unique.values() for e in agg.pending_events
        )
        found = [
            divergence(answer, "workflow", key, "(not recorded)")
            for key in sorted((expected - recorded).elements())
        ]
        extra = recorded - expected
        if extra:
            for r in self.caused[self.cause_key(answer)]:
                key = event_key(r.event)
                if extra[key] > 0:
                    extra[key] -= 1
                    found.append(divergence(r, "workflow", "(not decided today)", key))
        return found


def divergence(rec: Recorded, check: str, expected: str, recorded: str) -> Divergence:
    return Divergence(
        position=rec.position,
        check=check,
        objecttype=kind_of(rec.event),
        objectid=str(rec.event.originator_id),
        event=event_name(rec.event),
        expected=expected,
        recorded=recorded,
    )


def verify(source: Application[Any], stop: int | None = None) -> Report:
    """Check every event of `source` (up to notification `stop`)."""
    verifier = Verifier(list(read_log(source, stop)))
    try:
        return verifier.run()
    finally:
        verifier.mem.close()
