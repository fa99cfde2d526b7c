"""The ledger's core: one eventsourcing Application, loading, resolving and saving.

Every storctl aggregate lives in this one application, so the whole storage history
is one notification log, and followers (workflows, dispatcher, projections) keep their
tracking rows beside the events (SQLite has no per-application table names). Saves
that lost a race are decided again from fresh state (`atomic`), so callers never see
a version conflict as an error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import (
    AggregateNotFoundError,
    Application,
    ProcessingEvent,
)
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, JSONTranscoder, Tracking

from ledger.base import Ctx
from ledger.config import CONFIG_ID, Config, Settings
from ledger.copies import DataObjectInStore
from ledger.errors import (
    Conflict,
    Duplicate,
    InvalidInput,
    NotFound,
)
from ledger.host import Host
from ledger.image_store import ImageStore
from ledger.job import Job
from ledger.names import NameClaim, claim_id
from ledger.pool import StoragePool
from ledger.simulator import SimulatorPlan
from ledger.snapshot import Snapshot
from ledger.template import Template
from ledger.values import (
    transcodings,
)
from ledger.vm import VirtualMachine
from ledger.volume import Volume
from ledger.zone import Zone, zone_id_for

A = TypeVar("A", bound=Aggregate)

#: How many times a save that lost a race is decided again before giving up.
RETRIES = 20

KIND_NAMES: dict[type[Aggregate], str] = {
    Host: "host",
    StoragePool: "pool",
    ImageStore: "store",
    Template: "template",
    VirtualMachine: "vm",
    Volume: "volume",
    Snapshot: "snapshot",
    Job: "job",
    DataObjectInStore: "copy",
    Zone: "zone",
    Config: "config",
    SimulatorPlan: "simulator plan",
}


class LedgerCore(Application[UUID]):
    """The write side's plumbing. Snapshots keep long-lived aggregates quick to load."""

    name = "storctl"
    snapshotting_intervals = {
        StoragePool: 100,
        Zone: 100,
        Config: 50,
        Volume: 100,
        DataObjectInStore: 100,
        Template: 100,
        VirtualMachine: 100,
        Host: 100,
        Snapshot: 100,
    }

    #: Where allocators read candidate pools; None reads the aggregates. The CLI sets
    #: it to the projected table, so the ledger never imports the read side.
    pool_source: Callable[[Any, str, UUID | None], list[Any]] | None = None
    #: Where allocators find the suitable pools without judging each in Python
    #: (`projections.placement.find_suitable`); None judges every pool.
    suitable_source: Callable[..., tuple[list[Any], list[Any]]] | None = None
    #: Where storage cleanup finds template copies on the zone's pools that no volume
    #: uses, as {pool id: [copy id]}; None finds none. Each is confirmed on its
    #: aggregate before it is destroyed.
    copy_source: Callable[[Any, str, UUID | None], dict[str, list[UUID]]] | None = None

    def construct_recorder(self) -> Any:
        # A process recorder: followers write their tracking row in the same
        # transaction as the events they produce (exactly-once state changes).
        return self.factory.process_recorder()

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        for transcoding in transcodings():
            transcoder.register(transcoding)

    # ------------------------------------------------------------ loading

    def load(self, cls: type[A], obj_id: UUID) -> A:
        try:
            obj: Aggregate = self.repository.get(obj_id)
        except AggregateNotFoundError:
            raise NotFound(KIND_NAMES.get(cls, cls.__name__), str(obj_id)) from None
        if not isinstance(obj, cls):
            raise NotFound(KIND_NAMES.get(cls, cls.__name__), str(obj_id))
        return obj

    def find(self, cls: type[A], obj_id: UUID) -> A | None:
        try:
            return self.load(cls, obj_id)
        except NotFound:
            return None

    def settings(self) -> Config | Settings:
        return self.find(Config, CONFIG_ID) or Settings()

    def zone(self, name: str) -> Zone | None:
        return self.find(Zone, zone_id_for(name))

    def resolve(self, cls: type[A], ref: str | UUID) -> A:
        """An object by id, or by its unique name for the kinds that claim names."""
        kind = KIND_NAMES.get(cls, cls.__name__)
        if isinstance(ref, UUID):
            return self.load(cls, ref)
        try:
            return self.load(cls, UUID(ref))
        except ValueError:
            pass
        claim = self.find(NameClaim, claim_id(kind, ref))
        if claim is None or claim.released:
            raise NotFound(kind, ref)
        return self.load(cls, claim.object_id)

    # ------------------------------------------------------------ saving

    def atomic(
        self,
        decide: Callable[[], Sequence[Aggregate | None]],
        tracking: Tracking | None = None,
        what: str = "save",
    ) -> list[Aggregate]:
        """Run `decide` (which loads and changes aggregates) and save what it
        returns in one transaction, deciding again after a lost race."""
        for _ in range(RETRIES):
            aggregates = [a for a in decide() if a is not None]
            if not any(a.pending_events for a in aggregates):
                return []  # nothing decided: nothing to save, not even tracking
            try:
                self.save_tracked(aggregates, tracking)
            except IntegrityError:
                if tracking is not None and self.recorder.has_tracking_id(  # type: ignore[attr-defined]
                    tracking.application_name, tracking.notification_id
                ):
                    return []  # another follower already processed this position
                continue
            return aggregates
        raise Conflict(what)

    def save_tracked(
        self, aggregates: Sequence[Aggregate], tracking: Tracking | None
    ) -> None:
        """Save with a follower's tracking row in the same transaction."""
        if tracking is None:
            self.save(*aggregates)
            return
        processing = ProcessingEvent[UUID](tracking)
        processing.collect_events(*aggregates)
        recordings = self._record(processing)
        self._take_snapshots(processing)
        self._notify(recordings)

    # ------------------------------------------------------------ registration

    def _claim(self, ctx: Ctx, kind: str, name: str, obj_id: UUID) -> NameClaim:
        if (
            not name
            or name != name.strip()
            or len(name) > 255
            or any(c in name for c in "\0\n\r")
        ):
            raise InvalidInput(f"{kind} name", name, "1-255 printable characters")
        existing = self.find(NameClaim, claim_id(kind, name))
        if existing is None:
            return NameClaim.claim(ctx, kind, name, obj_id)
        if not existing.released:
            raise Duplicate(kind, name)
        existing.reclaim(ctx, obj_id)  # the name of a deleted object is free again
        return existing

    def _zone_for_update(self, ctx: Ctx, name: str) -> Zone:
        if not name or any(c in name for c in "\0\n\r/"):
            raise InvalidInput("zone", name, "a plain name")
        return self.zone(name) or Zone.open(ctx, name)

    def _save_new(
        self, ctx: Ctx, kind: str, name: str, obj: Aggregate, *others: Aggregate
    ) -> None:
        claim = self._claim(ctx, kind, name, obj.id)
        try:
            self.save(obj, claim, *others)
        except IntegrityError:
            # The name claim or the zone moved under us: decide again from fresh state.
            raise Duplicate(kind, name) from None
