"""Property: for any sequence of allocations, releases and pool state changes, no
pool's reservations pass its threshold, and every refusal names every candidate."""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from ledger.aggregate import Ctx
from ledger.allocation.views import Request
from ledger.app import Ledger
from ledger.pool import StoragePool
from ledger.usecases import infrastructure, placement
from ledger.values import GiB, Hypervisor, PoolStatus, PoolType, Scope, VolumeType
from ledger.volume import Volume

THRESHOLD = 0.85
POOLS = {  # name: (scope, cluster, capacity GiB, factor, tags)
    "a": (Scope.CLUSTER, "c1", 10, 1.0, ["ssd"]),
    "b": (Scope.CLUSTER, "c1", 6, 2.0, []),
    "c": (Scope.CLUSTER, "c2", 20, 1.0, ["ssd"]),
    "z": (Scope.ZONE, None, 8, 1.0, []),
}


def ctx() -> Ctx:
    return Ctx.new("prop")


class Allocation(RuleBasedStateMachine):
    volumes = Bundle("volumes")

    def __init__(self) -> None:
        super().__init__()
        self.ledger = Ledger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
        infrastructure.register_host(
            self.ledger, ctx(), "h1", "z1", "c1", Hypervisor.Simulator
        )
        infrastructure.register_host(
            self.ledger, ctx(), "h2", "z1", "c2", Hypervisor.Simulator
        )
        self.pool_ids = {}
        for name, (scope, cluster, cap, factor, tags) in POOLS.items():
            p = infrastructure.register_pool(
                self.ledger,
                ctx(),
                name=name,
                zone="z1",
                path=f"/{name}",
                capacity=cap * GiB,
                scope=scope,
                pool_type=PoolType.Simulator,
                cluster=cluster,
                tags=tags,
                overprovision=factor,
            )
            self.pool_ids[name] = p.id
        self.held: dict[str, int] = {}  # volume id -> size, for volumes placed

    @rule(
        target=volumes,
        size=st.integers(min_value=1, max_value=8).map(lambda g: g * GiB // 2),
        cluster=st.sampled_from(["c1", "c2", None]),
        tags=st.sampled_from([(), ("ssd",), ("nvme",)]),
        pinned=st.sampled_from([None, "a", "b", "c", "z"]),
    )
    def allocate(self, size, cluster, tags, pinned):
        c = ctx()
        volume = Volume.allocate(
            c,
            name="v",
            volume_type=VolumeType.DATADISK,
            size=size,
            zone_id="z1",
            tags=list(tags),
        )
        request = Request(
            size=size,
            zone_id="z1",
            cluster_id=cluster,
            tags=tags,
            pool_id=str(self.pool_ids[pinned]) if pinned else None,
        )
        decision, pool, _ = placement.place(self.ledger, c, volume, request)
        self.ledger.save(volume, pool)
        # Every pool of the zone is named, exactly once, taken or refused.
        assert sorted(v.pool for v in decision.verdicts) == sorted(POOLS)
        assert all(v.reason for v in decision.verdicts)
        taken = [v for v in decision.verdicts if v.taken]
        if pool is None:
            assert taken == []
            assert decision.chosen is None
        else:
            assert [v.pool_id for v in taken] == [str(pool.id)]
            self.held[str(volume.id)] = size
        return str(volume.id)

    @rule(volume_id=volumes)
    def release(self, volume_id):
        if volume_id not in self.held:
            return
        volume = self.ledger.load(Volume, __import__("uuid").UUID(volume_id))
        pool = self.ledger.load(StoragePool, volume.pool_id)
        pool.release(ctx(), volume)
        self.ledger.save(pool, volume)
        del self.held[volume_id]

    @rule(
        name=st.sampled_from(sorted(POOLS)),
        trigger=st.sampled_from(["Disable", "Enable", "maintenance", "cancel"]),
    )
    def change_state(self, name, trigger):
        from ledger.errors import IllegalTransition

        try:
            if trigger == "maintenance":
                infrastructure.pool_maintenance(self.ledger, ctx(), name, enable=True)
            elif trigger == "cancel":
                infrastructure.pool_maintenance(self.ledger, ctx(), name, enable=False)
            else:
                infrastructure.change_pool_status(self.ledger, ctx(), name, trigger)
        except IllegalTransition:
            pass

    @invariant()
    def no_pool_passes_its_threshold(self):
        for name, pid in self.pool_ids.items():
            pool = self.ledger.load(StoragePool, pid)
            limit = pool.capacity * pool.factor(2.0)
            assert pool.allocated <= THRESHOLD * limit + 1, name
            assert pool.allocated >= 0

    @invariant()
    def reservations_are_the_placed_volumes(self):
        total = sum(
            self.ledger.load(StoragePool, pid).allocated
            for pid in self.pool_ids.values()
        )
        assert total == sum(self.held.values())

    @invariant()
    def nothing_lands_on_a_pool_that_is_not_up(self):
        for pid in self.pool_ids.values():
            pool = self.ledger.load(StoragePool, pid)
            if pool.status is not PoolStatus.Up:
                last = [e for e in self.ledger.events.get(pid)][-1]
                assert not isinstance(last, StoragePool.CapacityReserved)


TestAllocation = Allocation.TestCase
