"""Events survive the store: every event class round-trips, old versions upcast,
and a pool with a long history loads from a snapshot."""

from __future__ import annotations

import json

from eventsourcing.persistence import StoredEvent

from ledger.base import Ctx
from ledger.pool import StoragePool
from ledger.values import GiB, PoolType, Scope, VolumeType
from ledger.volume import Volume


def ctx():
    return Ctx.new("t")


def test_v1_volume_allocated_event_upcasts_to_thin(ledger):
    volume = Volume.allocate(
        ctx(), name="old", volume_type=VolumeType.DATADISK, size=GiB, zone_id="z1"
    )
    created = volume.collect_events()[0]
    stored = ledger.mapper.to_stored_event(created)
    state = json.loads(stored.state)
    assert state.pop("class_version") == 2
    del state["provisioning_type"]  # as a v1 event was written
    old = StoredEvent(
        originator_id=stored.originator_id,
        originator_version=stored.originator_version,
        topic=stored.topic,
        state=json.dumps(state).encode(),
    )
    ledger.recorder.insert_events([old])
    loaded = ledger.repository.get(volume.id)
    assert loaded.provisioning_type == "THIN"
    assert loaded.name == "old"


def test_a_pool_with_a_long_history_loads_from_a_snapshot(ledger):
    pool = StoragePool.register(
        ctx(),
        name="p",
        zone_id="z",
        cluster_id="c",
        host_id=None,
        scope=Scope.CLUSTER,
        pool_type=PoolType.Filesystem,
        path="/p",
        capacity=1000 * GiB,
        overprovision=1.0,
        tags=[],
    )
    ledger.save(pool)
    for i in range(250):
        pool.reserve(ctx(), f"v{i}", GiB // 4, 0.85, 1.0)
        ledger.save(pool)
    snapshots = list(ledger.snapshots.get(pool.id, desc=True, limit=1))
    assert snapshots, "no snapshot was taken"
    assert snapshots[0].originator_version >= 200
    loaded = ledger.repository.get(pool.id)
    assert loaded.allocated == 250 * (GiB // 4)
    assert loaded.reservations == pool.reservations
    # Loading reads the snapshot plus at most one interval of events.
    after = list(ledger.events.get(pool.id, gt=snapshots[0].originator_version))
    assert len(after) < 100


def test_every_saved_event_class_round_trips(ledger):
    """Every event the operations below produce decodes to an equal event."""
    from ledger.values import Hypervisor

    ledger.register_host(ctx(), "h", "z1", "c1", Hypervisor.Simulator)
    ledger.register_pool(
        ctx(),
        name="p",
        zone="z1",
        path="/p",
        capacity=10 * GiB,
        scope=Scope.CLUSTER,
        pool_type=PoolType.Simulator,
        cluster="c1",
        tags=["ssd"],
        overprovision=1.5,
    )
    ledger.register_store(ctx(), "s", "z1", "/s")
    ledger.set_config(ctx(), "vm.allocation.algorithm", "firstfit")
    ledger.create_volume(ctx(), name="v", zone="z1", size=GiB, pool_ref="p")
    notes = ledger.recorder.select_notifications(start=None, limit=1000)
    assert len(notes) > 10
    for note in notes:
        event = ledger.mapper.to_domain_event(note)
        again = ledger.mapper.to_domain_event(ledger.mapper.to_stored_event(event))
        assert again == event, note.topic
