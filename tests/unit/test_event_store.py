"""Events survive the store: every event class round-trips, old versions upcast,
and a pool with a long history loads from a snapshot."""

from __future__ import annotations

import json

import pytest
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import StoredEvent

from ledger.aggregate import Ctx
from ledger.app import Ledger
from ledger.errors import CapacityExceeded
from ledger.host import Host
from ledger.pool import StoragePool
from ledger.store.database import parse_db
from ledger.usecases import infrastructure, volumes
from ledger.values import GiB, HostState, Hypervisor, PoolType, Scope, VolumeType
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


@pytest.mark.parametrize(
    ("to_state", "trigger"),
    [
        (HostState.Disabled, "Disable"),
        (HostState.Down, "HostDown"),
        (HostState.Up, "Enable"),
    ],
)
def test_v1_host_state_changed_upcasts_to_the_trigger_of_its_state(
    ledger, to_state, trigger
):
    """v1 recorded the state asked for, not a trigger: the upcaster names the one
    trigger of the host table that leads there."""
    host = Host.register(ctx(), "h", "z", "c", Hypervisor.KVM)
    if to_state is HostState.Up:
        host.set_state(ctx(), HostState.Down)
    host.set_state(ctx(), to_state)
    events = host.collect_events()
    olds = []
    for event in events:
        stored = ledger.mapper.to_stored_event(event)
        state = json.loads(stored.state)
        if event.originator_version > 1:
            assert state.pop("class_version") == 2
            del state["trigger"]  # as a v1 event was written
        olds.append(
            StoredEvent(
                originator_id=stored.originator_id,
                originator_version=stored.originator_version,
                topic=stored.topic,
                state=json.dumps(state).encode(),
            )
        )
    ledger.recorder.insert_events(olds)
    read = list(ledger.events.get(host.id))
    assert read[-1].trigger == trigger
    assert [e.__dict__ for e in read] == [e.__dict__ for e in events]
    assert ledger.repository.get(host.id).state is to_state


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
        volume = Volume.allocate(
            ctx(), name=f"v{i}", volume_type=VolumeType.DATADISK, size=1, zone_id="z"
        )
        pool.reserve(ctx(), volume, GiB // 4, 0.85, 1.0)
        ledger.save(pool, volume)
    snapshots = list(ledger.snapshots.get(pool.id, desc=True, limit=1))
    assert snapshots, "no snapshot was taken"
    assert snapshots[0].originator_version >= 200
    loaded = ledger.repository.get(pool.id)
    assert loaded.allocated == 250 * (GiB // 4)
    assert loaded.objects == pool.objects == 250
    # Loading reads the snapshot plus at most one interval of events.
    after = list(ledger.events.get(pool.id, gt=snapshots[0].originator_version))
    assert len(after) < 100


def test_every_saved_event_class_round_trips(ledger):
    """Every event the operations below produce decodes to an equal event."""
    from ledger.values import Hypervisor

    infrastructure.register_host(ledger, ctx(), "h", "z1", "c1", Hypervisor.Simulator)
    infrastructure.register_pool(
        ledger,
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
    infrastructure.register_store(ledger, ctx(), "s", "z1", "/s")
    infrastructure.set_config(ledger, ctx(), "vm.allocation.algorithm", "firstfit")
    volumes.create_volume(ledger, ctx(), name="v", zone="z1", size=GiB, pool_ref="p")
    notes = ledger.recorder.select_notifications(start=None, limit=1000)
    assert len(notes) > 10
    for note in notes:
        event = ledger.mapper.to_domain_event(note)
        again = ledger.mapper.to_domain_event(ledger.mapper.to_stored_event(event))
        assert again == event, note.topic


def _pool() -> StoragePool:
    return StoragePool.register(
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


def _as_v1(ledger, event) -> StoredEvent:
    """The event as the code before holders kept their own record stored it."""
    stored = ledger.mapper.to_stored_event(event)
    state = json.loads(stored.state)
    state.pop("class_version", None)
    state.pop("kept_by_pool", None)
    return StoredEvent(
        originator_id=stored.originator_id,
        originator_version=stored.originator_version,
        topic=stored.topic,
        state=json.dumps(state).encode(),
    )


def _volume(name: str, **fields) -> Volume:
    return Volume.allocate(
        ctx(),
        name=name,
        volume_type=VolumeType.DATADISK,
        size=GiB,
        zone_id="z",
        **fields,
    )


def test_reservations_stored_by_the_pool_alone_are_released_after_the_upgrade(ledger):
    """A v1 log: the pool was the only record of what each volume held. Its entries
    stay in the pool (`legacy`) until released, and a retry changes nothing."""
    pool = _pool()
    held = [_volume(f"v{i}") for i in range(3)]
    for volume in held:
        pool.reserve(ctx(), volume, GiB, 0.85, 1.0)
    ledger.recorder.insert_events([_as_v1(ledger, e) for e in pool.collect_events()])
    # the same held as v1 code saved them: no record of what they hold
    v0, v1, v2 = (_volume(v.name, id=v.id) for v in held)
    assert v0.holds == {}
    loaded = ledger.repository.get(pool.id)
    assert (loaded.allocated, loaded.objects) == (3 * GiB, 3)
    assert loaded.legacy == {str(v.id): GiB for v in held}
    loaded.reserve(ctx(), v0, GiB, 0.85, 1.0)  # a retried reserve: nothing new
    with pytest.raises(CapacityExceeded, match="already holds"):
        loaded.reserve(ctx(), v0, 2 * GiB, 0.85, 1.0)
    assert (loaded.allocated, loaded.objects) == (3 * GiB, 3)
    loaded.release(ctx(), v0)
    loaded.release(ctx(), v0)  # a retried release: nothing more
    loaded.grow(ctx(), v1, 2 * GiB, 0.85, 1.0)  # now in the volume's own record
    assert (loaded.allocated, loaded.objects) == (3 * GiB, 2)
    assert loaded.legacy == {str(v2.id): GiB}
    assert v1.holds == {str(pool.id): 2 * GiB}
    ledger.save(loaded, v0, v1)
    again = ledger.repository.get(pool.id)
    assert (again.allocated, again.objects) == (3 * GiB, 2)
    assert again.legacy == {str(v2.id): GiB}


def test_a_v1_pool_snapshot_upcasts_its_reservations(ledger, db_url):
    pool = _pool()
    ledger.save(pool)
    volume = _volume("v")
    snapshot = Snapshot.take(pool)
    stored = ledger.snapshots.mapper.to_stored_event(snapshot)
    state = json.loads(stored.state)
    assert state["state"].pop("class_version") == 3
    # as v1 code stored a pool holding one volume: the dict of reservations, and
    # none of v3's credentials and capabilities
    del state["state"]["legacy"], state["state"]["objects"]
    del state["state"]["credentials"], state["state"]["capabilities"]
    state["state"]["reservations"] = {str(volume.id): GiB}
    state["state"]["allocated"] = GiB
    old = StoredEvent(
        originator_id=stored.originator_id,
        originator_version=stored.originator_version,
        topic=stored.topic,
        state=json.dumps(state).encode(),
    )
    ledger.snapshots.recorder.insert_events([old])
    # a process started after the upgrade (this one cached the pool as saved)
    later = Ledger(env=parse_db(db_url).env)
    try:
        loaded = later.repository.get(pool.id)
    finally:
        later.close()
    assert (loaded.allocated, loaded.objects) == (GiB, 1)
    assert loaded.legacy == {str(volume.id): GiB}
    loaded.release(ctx(), _volume("v", id=volume.id))
    assert (loaded.allocated, loaded.objects, loaded.legacy) == (0, 0, {})
