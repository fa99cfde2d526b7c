"""Property: no sequence of reserve and release calls takes a pool past its
threshold or below zero, and the pool rebuilt from its events is the live pool."""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from ledger.base import Ctx
from ledger.errors import CapacityExceeded
from ledger.pool import StoragePool
from ledger.service import Ledger
from ledger.values import GiB, PoolType, Scope

CTX = Ctx.new("prop")


class PoolCapacity(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.ledger = Ledger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
        self.pool = StoragePool.register(
            CTX,
            name="p",
            zone_id="z",
            cluster_id="c",
            host_id=None,
            scope=Scope.CLUSTER,
            pool_type=PoolType.Filesystem,
            path="/p",
            capacity=10 * GiB,
            overprovision=None,
            tags=[],
        )
        self.model: dict[str, int] = {}
        self.threshold = 0.85
        self.factor = 1.0
        self.n = 0
        self.bound = 0.0  # the loosest limit any accepted reservation was checked under

    @rule(size=st.integers(min_value=0, max_value=12 * GiB))
    def reserve(self, size: int) -> None:
        self.n += 1
        key = f"v{self.n}"
        limit = 10 * GiB * self.factor
        fits = (sum(self.model.values()) + size) / limit <= self.threshold
        try:
            self.pool.reserve(CTX, key, size, self.threshold, self.factor)
        except CapacityExceeded:
            assert not fits, "a reservation within the threshold was refused"
        else:
            assert fits, "a reservation past the threshold was accepted"
            self.model[key] = size
            self.bound = max(self.bound, self.threshold * limit)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.model)))
        self.pool.release(CTX, key)
        del self.model[key]

    @rule()
    def release_unknown_is_a_no_op(self) -> None:
        before = self.pool.allocated
        self.pool.release(CTX, "never-reserved")
        assert self.pool.allocated == before

    @rule(
        threshold=st.sampled_from([0.5, 0.85, 1.0]), factor=st.sampled_from([1.0, 2.0])
    )
    def change_config(self, threshold: float, factor: float) -> None:
        # A lower threshold never forces a release: it only refuses new reservations.
        self.threshold, self.factor = threshold, factor

    @rule()
    def save_and_reload(self) -> None:
        self.ledger.save(self.pool)
        reloaded = self.ledger.repository.get(self.pool.id)
        assert reloaded.reservations == self.pool.reservations
        assert reloaded.allocated == self.pool.allocated

    @invariant()
    def never_below_zero_and_matches_model(self) -> None:
        assert self.pool.allocated >= 0
        assert self.pool.allocated == sum(self.model.values())
        assert self.pool.reservations == self.model

    @invariant()
    def never_past_the_threshold_it_was_reserved_under(self) -> None:
        # A lowered threshold refuses new reservations but evicts nothing, so the
        # bound is the loosest limit under which a reservation was accepted.
        assert self.pool.allocated <= self.bound


TestPoolCapacity = PoolCapacity.TestCase
