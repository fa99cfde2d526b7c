"""`load`: loading a pool aggregate that holds N reservations, with and without an
aggregate snapshot.

A pool's history is generated with `StoragePool.reserve` (one `CapacityReserved`
per volume; each volume is a `Holder` stand-in, since only the pool is timed) by a
`Ledger` with snapshotting off, saved 5,000 events at a time (1,000
on PostgreSQL); then one snapshot is taken at the head (`take_snapshot`, what the
Ledger's `snapshotting_intervals` of 100 does every 100 versions, so a real load
replays at most 99 events after it). Two histories per N:

- live: N reservations held (N volumes on the pool): the pool's state is its totals
  (each volume keeps its own record), so the snapshot is the same size for any N;
- churn: N reservations each released again (N volumes created and expunged): the
  history is 2N events, the state is empty.

Timed: `ledger.load(StoragePool, id)`, by a Ledger that uses the snapshot (median
of 21 after one untimed load) and by one with snapshots off (replays every event,
median of 3). The target: with
snapshots, loading at the largest N within 2x of loading at 1,000.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from bench.common import Figure, Options, database, median, open_ledger
from ledger.usecases import infrastructure


class Holder:
    """A stand-in for the volume that reserves (`ledger.pool.CapacityHolder`): its
    record stays in memory, since the benchmark times loading the pool, not saving
    100,000 volumes. The pool's events are those a real volume causes."""

    def __init__(self) -> None:
        self.id = uuid.uuid4()
        self.holds: dict[str, int] = {}

    def held_on(self, pool_id: uuid.UUID) -> int | None:
        return self.holds.get(str(pool_id))

    def record_hold(self, ctx: Any, pool_id: uuid.UUID, size: int) -> None:
        self.holds[str(pool_id)] = size

    def record_release(self, ctx: Any, pool_id: uuid.UUID) -> None:
        self.holds.pop(str(pool_id), None)


def build(app: Any, n: int, *, churn: bool, per_save: int) -> uuid.UUID:
    from ledger.aggregate import Ctx
    from ledger.pool import StoragePool
    from ledger.values import Hypervisor, PoolType, Scope

    ctx = Ctx.new("bench")
    infrastructure.register_host(app, ctx, "sim1", "z1", "c1", Hypervisor.Simulator)
    pool = infrastructure.register_pool(
        app,
        ctx,
        name="p1",
        zone="z1",
        path="/sim/p1",
        capacity=1 << 60,
        scope=Scope.CLUSTER,
        pool_type=PoolType.Simulator,
        cluster="c1",
        overprovision=1.0,
    )
    pool = app.load(StoragePool, pool.id)
    pending = 0
    for _ in range(n):
        holder = Holder()
        pool.reserve(ctx, holder, 1 << 30, 0.99, 1.0)
        pending += 1
        if churn:
            pool.release(ctx, holder)
            pending += 1
        if pending >= per_save:
            app.save(pool)
            pending = 0
    app.save(pool)
    return pool.id


def timed_loads(
    app: Any, pool_id: uuid.UUID, repeats: int = 21, warmup: int = 1
) -> float:
    """The median load time. Untimed `warmup` loads first: the first reads after a
    bulk insert pay for the store settling (PostgreSQL's autovacuum and hint bits on
    the fresh rows, 1-8 ms on this machine), not for the pool."""
    from ledger.pool import StoragePool

    for _ in range(warmup):
        app.load(StoragePool, pool_id)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        app.load(StoragePool, pool_id)
        times.append(time.perf_counter() - start)
    return median(times)


def measure(url: str, n: int, *, churn: bool, per_save: int) -> dict[str, float]:
    from ledger.app import Ledger

    class NoSnapshots(Ledger):
        name = Ledger.name  # the same tables on PostgreSQL
        snapshotting_intervals = {}

    # The aggregate cache off: every timed load reads the store, as a CLI's first.
    plain = open_ledger(
        url, NoSnapshots, IS_SNAPSHOTTING_ENABLED="n", AGGREGATE_CACHE_MAXSIZE="0"
    )
    try:
        pool_id = build(plain, n, churn=churn, per_save=per_save)
        without = timed_loads(plain, pool_id, 3, warmup=0)  # seconds each at 100k
    finally:
        plain.close()
    app = open_ledger(url, AGGREGATE_CACHE_MAXSIZE="0")
    try:
        app.take_snapshot(pool_id)
        with_snapshot = timed_loads(app, pool_id)
    finally:
        app.close()
    return {"with_snapshot": with_snapshot, "without": without}


def run(opts: Options) -> list[Figure]:
    sizes = [1000, 5000] if opts.quick else [1000, 10_000, 100_000]
    figures: list[Figure] = []
    for store in opts.stores:
        per_save = 5000 if store == "sqlite" else 1000
        for churn in (False, True):
            kind = "churn" if churn else "live"
            results = {}
            for n in sizes:
                with database(store, opts.workdir, "load") as url:
                    results[n] = measure(url, n, churn=churn, per_save=per_save)
            first = results[sizes[0]]
            for n in sizes:
                m = results[n]
                events = n * (2 if churn else 1)
                last = n == sizes[-1]
                figures.append(
                    Figure(
                        benchmark="load",
                        store=store,
                        name=f"{kind}: {n:,} reservations ({events:,} events)",
                        value=m["with_snapshot"] * 1000,
                        unit="ms",
                        baseline=f"with snapshot at {sizes[0]:,} reservations",
                        baseline_value=first["with_snapshot"] * 1000,
                        ratio=m["with_snapshot"] / first["with_snapshot"],
                        target=2.0 if last else None,
                        direction="lower",
                        target_text="<= 2x" if last else "",
                        extra={"without_snapshot_ms": m["without"] * 1000},
                    )
                )
                figures.append(
                    Figure(
                        benchmark="load",
                        store=store,
                        name=f"  {kind}: {n:,}, no snapshot (replay all)",
                        value=m["without"] * 1000,
                        unit="ms",
                        baseline=f"no snapshot at {sizes[0]:,} reservations",
                        baseline_value=first["without"] * 1000,
                        ratio=m["without"] / first["without"],
                        direction="lower",
                    )
                )
    return figures
