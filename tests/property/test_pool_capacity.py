"""Property: no sequence of reserve and release calls takes a pool past its
threshold or below zero, a retried reserve or release changes nothing, and the pool
and its holders rebuilt from their events are the live ones.

The pool keeps only totals; what each volume holds is the volume's own record,
saved with the pool, so the model here is checked against both."""

from __future__ import annotations

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from ledger.aggregate import Ctx
from ledger.app import Ledger
from ledger.errors import CapacityExceeded
from ledger.pool import StoragePool
from ledger.values import GiB, PoolType, Scope, VolumeType
from ledger.volume import Volume

CTX = Ctx.new("prop")


def new_pool(name: str = "p") -> StoragePool:
    return StoragePool.register(
        CTX,
        name=name,
        zone_id="z",
        cluster_id="c",
        host_id=None,
        scope=Scope.CLUSTER,
        pool_type=PoolType.Filesystem,
        path=f"/{name}",
        capacity=10 * GiB,
        overprovision=None,
        tags=[],
    )


class PoolCapacity(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.ledger = Ledger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
        self.pool = new_pool()
        self.volumes: dict[str, Volume] = {}  # every volume ever made, by name
        self.model: dict[str, int] = {}  # name -> size held on the pool
        self.threshold = 0.85
        self.factor = 1.0
        self.bound = 0.0  # the loosest limit any accepted reservation was checked under

    def _volume(self, size: int) -> Volume:
        volume = Volume.allocate(
            CTX,
            name=f"v{len(self.volumes)}",
            volume_type=VolumeType.DATADISK,
            size=size,
            zone_id="z",
        )
        self.volumes[volume.name] = volume
        return volume

    @rule(size=st.integers(min_value=0, max_value=12 * GiB))
    def reserve(self, size: int) -> None:
        volume = self._volume(size)
        limit = 10 * GiB * self.factor
        fits = (sum(self.model.values()) + size) / limit <= self.threshold
        try:
            self.pool.reserve(CTX, volume, size, self.threshold, self.factor)
        except CapacityExceeded:
            assert not fits, "a reservation within the threshold was refused"
        else:
            assert fits, "a reservation past the threshold was accepted"
            self.model[volume.name] = size
            self.bound = max(self.bound, self.threshold * limit)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def retried_reserve_changes_nothing(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.model)))
        before = (self.pool.allocated, self.pool.objects, self.pool.version)
        # a retry may come after the threshold dropped: it still changes nothing
        self.pool.reserve(CTX, self.volumes[name], self.model[name], 0.0, 1.0)
        assert (self.pool.allocated, self.pool.objects, self.pool.version) == before

    @precondition(lambda self: self.model)
    @rule(data=st.data(), other=st.integers(min_value=1, max_value=GiB))
    def reserving_another_size_for_a_holder_is_refused(
        self, data: st.DataObject, other: int
    ) -> None:
        name = data.draw(st.sampled_from(sorted(self.model)))
        before = self.pool.version
        with pytest.raises(CapacityExceeded, match="already holds"):
            self.pool.reserve(
                CTX, self.volumes[name], self.model[name] + other, 1.0, 100.0
            )
        assert self.pool.version == before

    @precondition(lambda self: self.model)
    @rule(data=st.data(), twice=st.booleans())
    def release(self, data: st.DataObject, twice: bool) -> None:
        name = data.draw(st.sampled_from(sorted(self.model)))
        volume = self.volumes[name]
        self.pool.release(CTX, volume)
        del self.model[name]
        if twice:  # a retried release finds nothing held: no event, no change
            before = (self.pool.allocated, self.pool.objects, self.pool.version)
            self.pool.release(CTX, volume)
            assert (self.pool.allocated, self.pool.objects, self.pool.version) == before

    @rule()
    def release_unknown_is_a_no_op(self) -> None:
        before = (self.pool.allocated, self.pool.objects, self.pool.version)
        self.pool.release(CTX, self._volume(GiB))
        assert (self.pool.allocated, self.pool.objects, self.pool.version) == before

    @rule(
        threshold=st.sampled_from([0.5, 0.85, 1.0]), factor=st.sampled_from([1.0, 2.0])
    )
    def change_config(self, threshold: float, factor: float) -> None:
        # A lower threshold never forces a release: it only refuses new reservations.
        self.threshold, self.factor = threshold, factor

    @rule()
    def save_and_reload(self) -> None:
        # the holders are saved with the pool, as every operation does
        self.ledger.save(self.pool, *self.volumes.values())
        reloaded = self.ledger.repository.get(self.pool.id)
        assert reloaded.allocated == self.pool.allocated
        assert reloaded.objects == self.pool.objects
        for volume in self.volumes.values():
            again = self.ledger.repository.get(volume.id)
            assert again.holds == volume.holds

    @invariant()
    def never_below_zero_and_matches_model(self) -> None:
        assert self.pool.allocated >= 0
        assert self.pool.allocated == sum(self.model.values())
        assert self.pool.objects == len(self.model)
        held = {
            name: v.held_on(self.pool.id)
            for name, v in self.volumes.items()
            if v.held_on(self.pool.id) is not None
        }
        assert held == self.model

    @invariant()
    def never_past_the_threshold_it_was_reserved_under(self) -> None:
        # A lowered threshold refuses new reservations but evicts nothing, so the
        # bound is the loosest limit under which a reservation was accepted.
        assert self.pool.allocated <= self.bound


TestPoolCapacity = PoolCapacity.TestCase


def test_a_volume_holds_on_two_pools_while_it_migrates() -> None:
    source, target = new_pool("a"), new_pool("b")
    volume = Volume.allocate(
        CTX, name="m", volume_type=VolumeType.DATADISK, size=GiB, zone_id="z"
    )
    source.reserve(CTX, volume, GiB, 0.85, 1.0)
    target.reserve(CTX, volume, GiB, 0.85, 1.0)
    assert volume.holds == {str(source.id): GiB, str(target.id): GiB}
    source.release(CTX, volume)
    assert volume.holds == {str(target.id): GiB}
    assert (source.allocated, source.objects) == (0, 0)
    assert (target.allocated, target.objects) == (GiB, 1)


def test_grow_and_shrink_keep_one_reservation() -> None:
    pool = new_pool()
    volume = Volume.allocate(
        CTX, name="r", volume_type=VolumeType.DATADISK, size=GiB, zone_id="z"
    )
    pool.reserve(CTX, volume, GiB, 0.85, 1.0)
    pool.grow(CTX, volume, 3 * GiB, 0.85, 1.0)
    pool.grow(CTX, volume, 3 * GiB, 0.85, 1.0)  # a retry: nothing more
    assert (pool.allocated, pool.objects, volume.held_on(pool.id)) == (
        3 * GiB,
        1,
        3 * GiB,
    )
    pool.shrink(CTX, volume, GiB)
    pool.shrink(CTX, volume, GiB)
    assert (pool.allocated, pool.objects, volume.held_on(pool.id)) == (GiB, 1, GiB)
    with pytest.raises(CapacityExceeded):
        pool.grow(CTX, volume, 20 * GiB, 0.85, 1.0)
    assert (pool.allocated, volume.held_on(pool.id)) == (GiB, GiB)
