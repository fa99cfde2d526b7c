"""The StoragePool aggregate, given its events, when a command, then the new events.

A reservation is two halves saved together: `CapacityReserved` on the pool (which
only counts: `allocated`, `objects`) and `CapacityHeld` on the holder (a real
Volume, which keeps what it holds). Each test rebuilds the pool and its holders from
their events (`given`), calls one command, and asserts on the new events of both and
on the totals; a refusal leaves no event on either. Status moves follow `fsm.POOL`.
No store, no mocks.
"""

from __future__ import annotations

from typing import Any, TypeVar

import hypothesis
import pytest
from hypothesis import strategies as st

from ledger import fsm
from ledger.aggregate import Ctx, StorctlAggregate
from ledger.errors import CapacityExceeded, IllegalTransition, InvalidInput
from ledger.pool import StoragePool
from ledger.values import GiB, PoolStatus, PoolType, Scope, VolumeType
from ledger.volume import Volume

CTX = Ctx(actor="alice", job_id="job-1", causation_id="req-1")
CAPACITY = 100 * GiB
THRESHOLD = 0.85  # pool.storage.allocated.capacity.disablethreshold's default
FACTOR = 1.0

A = TypeVar("A", bound=StorctlAggregate)


# ----------------------------------------------------------------- given


def given(aggregate: A) -> A:
    """The aggregate rebuilt from the events that made it, none of them pending."""
    events = aggregate.collect_events()
    assert events, "given an aggregate with no events"
    assert isinstance(events[0], StorctlAggregate.Created), (
        "given() rebuilds from the whole history, creation first: call it once"
    )
    rebuilt: Any = None
    for event in events:
        rebuilt = event.mutate(rebuilt)
    return rebuilt


def registered(
    capacity: int = CAPACITY,
    overprovision: float | None = None,
    pool_type: PoolType = PoolType.NetworkFilesystem,
) -> StoragePool:
    """A pool just registered, its events pending."""
    return StoragePool.register(
        CTX,
        name="primary",
        zone_id="z1",
        cluster_id="c1",
        host_id=None,
        scope=Scope.CLUSTER,
        pool_type=pool_type,
        path="/export/primary",
        capacity=capacity,
        overprovision=overprovision,
        tags=[],
    )


def volume(name: str = "data1", size: int = GiB) -> Volume:
    """A volume just allocated, its events pending."""
    return Volume.allocate(
        CTX, name=name, volume_type=VolumeType.DATADISK, size=size, zone_id="z1"
    )


def given_holding(
    *sizes: int, threshold: float = THRESHOLD, factor: float = FACTOR
) -> tuple[StoragePool, list[Volume]]:
    """A pool and one volume per size, each holding its size there."""
    pool = registered()
    holders = [volume(f"v{i}", size) for i, size in enumerate(sizes)]
    for holder, size in zip(holders, sizes, strict=True):
        pool.reserve(CTX, holder, size, threshold, factor)
    return given(pool), [given(h) for h in holders]


def kinds(events: Any) -> list[type]:
    return [type(e) for e in events]


def assert_nothing_changed(pool: StoragePool, *holders: Volume, before: tuple):
    assert pool.collect_events() == []
    for holder in holders:
        assert holder.collect_events() == []
    assert snapshot(pool, *holders) == before


def snapshot(pool: StoragePool, *holders: Volume) -> tuple:
    """What a refusal must leave as it was."""
    return (
        pool.version,
        pool.allocated,
        pool.objects,
        dict(pool.legacy),
        [(h.version, dict(h.holds)) for h in holders],
    )


# ----------------------------------------------------------------- reserve


class TestReserve:
    def test_reserve_records_reserved_on_the_pool_and_held_on_the_holder(self):
        pool, holder = given(registered()), given(volume())

        pool.reserve(CTX, holder, 10 * GiB, THRESHOLD, FACTOR)

        (reserved,) = pool.collect_events()
        assert type(reserved) is StoragePool.CapacityReserved
        assert (reserved.object_id, reserved.size) == (str(holder.id), 10 * GiB)
        assert reserved.kept_by_pool is False
        assert reserved.job_id == "job-1"
        (held,) = holder.collect_events()
        assert type(held) is Volume.CapacityHeld
        assert (held.pool_id, held.size) == (pool.id, 10 * GiB)
        assert (pool.allocated, pool.objects) == (10 * GiB, 1)
        assert pool.legacy == {}  # the holder keeps its own record
        assert holder.holds == {str(pool.id): 10 * GiB}
        assert pool.held_by(holder) == 10 * GiB

    def test_reserves_of_several_holders_add_up(self):
        pool, holders = given_holding(10 * GiB, 20 * GiB)

        pool.reserve(CTX, given(volume("v3")), 30 * GiB, THRESHOLD, FACTOR)

        assert kinds(pool.collect_events()) == [StoragePool.CapacityReserved]
        assert (pool.allocated, pool.objects) == (60 * GiB, 3)
        assert [h.held_on(pool.id) for h in holders] == [10 * GiB, 20 * GiB]

    def test_reserve_reaching_exactly_the_threshold_is_accepted(self):
        pool, _ = given_holding(50 * GiB)
        holder = given(volume("v2"))

        pool.reserve(CTX, holder, 35 * GiB, THRESHOLD, FACTOR)  # 85% exactly

        assert kinds(pool.collect_events()) == [StoragePool.CapacityReserved]
        assert kinds(holder.collect_events()) == [Volume.CapacityHeld]
        assert pool.allocated == 85 * GiB

    def test_reserve_one_byte_past_the_threshold_is_refused_and_records_nothing(
        self,
    ):
        pool, (first,) = given_holding(50 * GiB)
        holder = given(volume("v2"))
        before = snapshot(pool, first, holder)

        with pytest.raises(CapacityExceeded, match="over the 85% threshold") as no:
            pool.reserve(CTX, holder, 35 * GiB + 1, THRESHOLD, FACTOR)

        assert no.value.pool == "primary"
        assert_nothing_changed(pool, first, holder, before=before)

    def test_reserve_past_capacity_times_factor_is_refused_whatever_the_threshold(
        self,
    ):
        # settings keep thresholds within (0, 1]; the pool's own bound holds anyway
        pool, holder = given(registered()), given(volume())
        before = snapshot(pool, holder)

        with pytest.raises(CapacityExceeded):
            pool.reserve(CTX, holder, CAPACITY + 1, 1.5, FACTOR)

        assert_nothing_changed(pool, holder, before=before)

    def test_overprovisioning_factor_raises_the_limit_to_capacity_times_factor(self):
        pool, (first,) = given_holding(2 * CAPACITY, threshold=1.0, factor=2.0)
        assert pool.allocated == 2 * CAPACITY
        holder = given(volume("v2"))
        before = snapshot(pool, first, holder)

        with pytest.raises(CapacityExceeded):
            pool.reserve(CTX, holder, 1, 1.0, 2.0)

        assert_nothing_changed(pool, first, holder, before=before)

    def test_pools_own_overprovisioning_wins_over_the_default_factor(self):
        pool, holder = given(registered(overprovision=1.0)), given(volume())
        before = snapshot(pool, holder)

        with pytest.raises(CapacityExceeded):
            pool.reserve(CTX, holder, CAPACITY + 1, 1.0, 2.0)

        assert_nothing_changed(pool, holder, before=before)
        assert pool.factor(2.0) == 1.0

    def test_retried_reserve_of_the_same_size_changes_nothing(self):
        pool, (holder,) = given_holding(10 * GiB)
        before = snapshot(pool, holder)

        pool.reserve(CTX, holder, 10 * GiB, THRESHOLD, FACTOR)

        assert_nothing_changed(pool, holder, before=before)

    def test_reserve_of_another_size_for_a_holder_that_holds_is_refused(self):
        pool, (holder,) = given_holding(10 * GiB)
        before = snapshot(pool, holder)

        with pytest.raises(CapacityExceeded, match="already holds a reservation"):
            pool.reserve(CTX, holder, 20 * GiB, THRESHOLD, FACTOR)

        assert_nothing_changed(pool, holder, before=before)

    def test_negative_reserve_is_refused(self):
        pool, holder = given(registered()), given(volume())
        before = snapshot(pool, holder)

        with pytest.raises(CapacityExceeded, match="negative size"):
            pool.reserve(CTX, holder, -1, THRESHOLD, FACTOR)

        assert_nothing_changed(pool, holder, before=before)


# ----------------------------------------------------------------- release


class TestRelease:
    def test_release_gives_back_exactly_what_the_holder_holds(self):
        pool, (small, big) = given_holding(10 * GiB, 20 * GiB)

        pool.release(CTX, small)

        (released,) = pool.collect_events()
        assert type(released) is StoragePool.CapacityReleased
        assert (released.object_id, released.size) == (str(small.id), 10 * GiB)
        (given_back,) = small.collect_events()
        assert type(given_back) is Volume.CapacityGivenBack
        assert given_back.pool_id == pool.id
        assert big.collect_events() == []
        assert (pool.allocated, pool.objects) == (20 * GiB, 1)
        assert small.holds == {}
        assert big.holds == {str(pool.id): 20 * GiB}

    def test_releasing_a_holder_that_holds_nothing_is_a_no_op(self):
        pool, (holder,) = given_holding(10 * GiB)
        stranger = given(volume("v2"))
        before = snapshot(pool, holder, stranger)

        pool.release(CTX, stranger)

        assert_nothing_changed(pool, holder, stranger, before=before)

    def test_retried_release_changes_nothing(self):
        pool, (holder,) = given_holding(10 * GiB)
        pool.release(CTX, holder)
        pool.collect_events()
        holder.collect_events()
        before = snapshot(pool, holder)

        pool.release(CTX, holder)

        assert_nothing_changed(pool, holder, before=before)
        assert (pool.allocated, pool.objects) == (0, 0)

    def test_reservation_kept_by_the_pool_before_v2_is_released_by_the_pool(self):
        pool, holder = registered(), given(volume())
        # a v1 `CapacityReserved`, upcast: the pool kept the holder's record
        pool.emit(
            StoragePool.CapacityReserved,
            CTX,
            object_id=str(holder.id),
            size=10 * GiB,
            kept_by_pool=True,
        )
        pool = given(pool)
        assert pool.legacy == {str(holder.id): 10 * GiB}
        assert pool.held_by(holder) == 10 * GiB

        pool.release(CTX, holder)

        (released,) = pool.collect_events()
        assert type(released) is StoragePool.CapacityReleased
        assert released.size == 10 * GiB
        assert holder.collect_events() == []  # it never held a record of its own
        assert (pool.allocated, pool.objects, pool.legacy) == (0, 0, {})


# ----------------------------------------------------------------- grow, shrink


class TestResize:
    def test_grow_checks_only_the_difference(self):
        pool, (holder,) = given_holding(50 * GiB)

        # 85 GiB + the 50 held would be 135%; the 35 more reach exactly 85%
        pool.grow(CTX, holder, 85 * GiB, THRESHOLD, FACTOR)

        released, reserved = events = pool.collect_events()
        assert kinds(events) == [
            StoragePool.CapacityReleased,
            StoragePool.CapacityReserved,
        ]
        assert (released.size, reserved.size) == (50 * GiB, 85 * GiB)
        assert kinds(holder.collect_events()) == [
            Volume.CapacityGivenBack,
            Volume.CapacityHeld,
        ]
        assert (pool.allocated, pool.objects) == (85 * GiB, 1)
        assert holder.holds == {str(pool.id): 85 * GiB}

    def test_grow_past_the_threshold_is_refused_and_records_nothing(self):
        pool, (holder,) = given_holding(50 * GiB)
        before = snapshot(pool, holder)

        with pytest.raises(CapacityExceeded, match="over the 85% threshold"):
            pool.grow(CTX, holder, 85 * GiB + 1, THRESHOLD, FACTOR)

        assert_nothing_changed(pool, holder, before=before)

    def test_grow_to_no_more_than_is_held_changes_nothing(self):
        pool, (holder,) = given_holding(50 * GiB)
        before = snapshot(pool, holder)

        pool.grow(CTX, holder, 50 * GiB, THRESHOLD, FACTOR)
        pool.grow(CTX, holder, 40 * GiB, THRESHOLD, FACTOR)

        assert_nothing_changed(pool, holder, before=before)

    def test_shrink_never_checks_even_on_a_pool_past_its_threshold(self):
        pool, (holder,) = given_holding(95 * GiB, threshold=1.0)  # over 85% now

        pool.shrink(CTX, holder, 90 * GiB)

        released, reserved = events = pool.collect_events()
        assert kinds(events) == [
            StoragePool.CapacityReleased,
            StoragePool.CapacityReserved,
        ]
        assert (released.size, reserved.size) == (95 * GiB, 90 * GiB)
        assert kinds(holder.collect_events()) == [
            Volume.CapacityGivenBack,
            Volume.CapacityHeld,
        ]
        assert (pool.allocated, pool.objects) == (90 * GiB, 1)
        assert holder.holds == {str(pool.id): 90 * GiB}

    def test_shrink_to_no_less_than_is_held_changes_nothing(self):
        pool, (holder,) = given_holding(50 * GiB)
        stranger = given(volume("v2"))
        before = snapshot(pool, holder, stranger)

        pool.shrink(CTX, holder, 50 * GiB)
        pool.shrink(CTX, holder, 60 * GiB)
        pool.shrink(CTX, stranger, 0)  # holds nothing here

        assert_nothing_changed(pool, holder, stranger, before=before)


# ----------------------------------------------------------------- status


#: the triggers that take a new pool (Up) to each status storctl moves it through
PATH_TO = {
    PoolStatus.Up: [],
    PoolStatus.Disabled: ["Disable"],
    PoolStatus.PrepareForMaintenance: ["PrepareForMaintenance"],
    PoolStatus.ErrorInMaintenance: ["PrepareForMaintenance", "MaintenanceFailed"],
    PoolStatus.Maintenance: ["PrepareForMaintenance", "MaintenanceReached"],
    PoolStatus.Removed: ["PrepareForMaintenance", "MaintenanceReached", "Remove"],
}
TRIGGERS = sorted({trigger for _, trigger, _ in fsm.POOL_TABLE})


def given_in(status: PoolStatus) -> StoragePool:
    pool = registered()
    for trigger in PATH_TO[status]:
        pool.change_status(CTX, trigger)
    pool = given(pool)
    assert pool.status is status
    return pool


class TestStatus:
    @pytest.mark.parametrize(
        ("source", "trigger", "dest"),
        fsm.POOL_TABLE,
        ids=[f"{s}-{t}" for s, t, _ in fsm.POOL_TABLE],
    )
    def test_each_row_of_the_pool_table_moves_the_status(self, source, trigger, dest):
        pool = given_in(PoolStatus[source])

        pool.change_status(CTX, trigger)

        (event,) = pool.collect_events()
        assert type(event) is StoragePool.StatusChanged
        assert event.trigger == trigger
        assert (event.from_status, event.to_status) == (
            PoolStatus[source],
            PoolStatus[dest],
        )
        assert pool.status is PoolStatus[dest]

    @pytest.mark.parametrize(
        "status",
        [s for s in PATH_TO if s not in (PoolStatus.Maintenance, PoolStatus.Removed)],
        ids=lambda s: s.name,
    )
    def test_remove_is_refused_from_anywhere_but_maintenance(self, status):
        pool = given_in(status)
        version = pool.version

        with pytest.raises(IllegalTransition) as refused:
            pool.change_status(CTX, "Remove")

        assert str(refused.value) == (
            f"pool {pool.name} is {status.name}: Remove is not allowed"
        )
        assert pool.collect_events() == []
        assert (pool.version, pool.status) == (version, status)

    @pytest.mark.parametrize("trigger", TRIGGERS)
    def test_removed_pool_moves_no_more(self, trigger):
        pool = given_in(PoolStatus.Removed)

        with pytest.raises(IllegalTransition, match=f"is Removed: {trigger} is not"):
            pool.change_status(CTX, trigger)

        assert pool.collect_events() == []
        assert pool.status is PoolStatus.Removed

    def test_pool_is_not_moved_to_the_status_it_is_in(self):
        pool = given_in(PoolStatus.Disabled)

        with pytest.raises(IllegalTransition, match="is Disabled: Disable"):
            pool.change_status(CTX, "Disable")

        assert pool.collect_events() == []


class TestStats:
    def test_reported_use_is_recorded(self):
        pool = given(registered())

        pool.report_stats(CTX, 30 * GiB, "kvm1")

        (event,) = pool.collect_events()
        assert type(event) is StoragePool.StatsReported
        assert (event.used, event.host) == (30 * GiB, "kvm1")
        assert pool.used == 30 * GiB

    def test_negative_use_is_refused(self):
        pool = given(registered())

        with pytest.raises(InvalidInput, match="used bytes"):
            pool.report_stats(CTX, -1, "kvm1")

        assert pool.collect_events() == []
        assert pool.used == 0


# ----------------------------------------------------------------- invariant

HOLDERS = 4
HOLDER = st.integers(0, HOLDERS - 1)
#: whole GiB, so sums cross the bounds often, or any byte count up to twice capacity
SIZE = st.integers(0, 20).map(lambda n: n * GiB) | st.integers(0, 20 * GiB)
STEP = st.one_of(
    st.tuples(st.just("reserve"), HOLDER, SIZE),
    st.tuples(st.just("retry"), HOLDER, st.just(0)),  # the size it holds, again
    st.tuples(st.just("release"), HOLDER, st.just(0)),
)


# Thresholds above 1 (which settings refuse) leave capacity x factor as the only bound,
# so the pool's own check of it is exercised too.
@hypothesis.given(
    steps=st.lists(STEP, max_size=40),
    threshold=st.sampled_from([0.85, 1.0, 1.5, 2.0]),
    factor=st.sampled_from([1.0, 1.5, 2.0]),
)
def test_allocated_is_what_the_holders_hold_and_never_passes_capacity_times_factor(
    steps, threshold, factor
):
    pool = given(registered(capacity=10 * GiB))
    holders = [given(volume(f"v{i}")) for i in range(HOLDERS)]
    limit = pool.capacity * pool.factor(factor)

    for action, index, size in steps:
        holder = holders[index]
        before = snapshot(pool, *holders)
        if action == "reserve":
            try:
                pool.reserve(CTX, holder, size, threshold, factor)
            except CapacityExceeded:
                assert_nothing_changed(pool, *holders, before=before)
        elif action == "retry" and holder.held_on(pool.id) is not None:
            pool.reserve(CTX, holder, holder.held_on(pool.id), threshold, factor)
            assert_nothing_changed(pool, *holders, before=before)
        else:
            pool.release(CTX, holder)
        held = [h.held_on(pool.id) for h in holders]
        assert pool.allocated == sum(size for size in held if size is not None)
        assert pool.objects == sum(size is not None for size in held)
        assert 0 <= pool.allocated <= limit
        for aggregate in (pool, *holders):
            aggregate.collect_events()  # saved: the next step starts from here
