"""`allocate`: choosing a pool among 10,000, median and p99 of `placement.place`.

The zone holds 10,000 cluster-scope pools (one host, one cluster), registered the
way `usecases.infrastructure.register_pool` does (pool, name claim, zone entry) but
saved 500 at a time, then projected. Each timed call is what a deploy or an attach
does to choose: the candidates brought up to the log (`refresh`, at the use case's
entry), then `place()` on a fresh, unsaved volume: settings, the suitable pools
found in the projected `storage_pool` table (`projections.placement`), the
allocator chain over the others, then loading the chosen pool's aggregate to
confirm and reserve. Nothing is saved, so every call sees the
same state. The informative baseline is the allocator chain alone on the same
`PoolView`s (no database).
"""

from __future__ import annotations

import uuid

from bench.common import (
    Figure,
    Options,
    database,
    median,
    new_volume,
    open_ledger,
    percentile,
)
from ledger.usecases import infrastructure, placement

BATCH = 500


def populate(app: object, pools: int) -> object:
    from ledger.aggregate import Ctx
    from ledger.names import NameClaim
    from ledger.pool import StoragePool
    from ledger.values import GiB, Hypervisor, PoolType, Scope

    ledger = app
    ctx = Ctx.new("bench")
    host = infrastructure.register_host(
        ledger, ctx, "sim1", "z1", "c1", Hypervisor.Simulator
    )  # type: ignore[attr-defined]
    done = 0
    while done < pools:
        zone = ledger.zone("z1")  # type: ignore[attr-defined]
        batch = []
        for i in range(done, min(done + BATCH, pools)):
            pool = StoragePool.register(
                ctx,
                name=f"pool-{i:05d}",
                zone_id="z1",
                cluster_id="c1",
                host_id=None,
                scope=Scope.CLUSTER,
                pool_type=PoolType.Simulator,
                path=f"/sim/pool-{i:05d}",
                capacity=(1 + i % 7) * 1024 * GiB,
                overprovision=1.0,
                tags=["ssd"] if i % 3 == 0 else [],
            )
            zone.add_pool(ctx, pool.id)
            batch += [pool, NameClaim.claim(ctx, "pool", pool.name, pool.id)]
        ledger.save(zone, *batch)  # type: ignore[attr-defined]
        done += BATCH
    return host


def measure(url: str, pools: int, calls: int) -> dict[str, float]:
    import time

    from ledger.aggregate import Ctx
    from ledger.allocation.chain import allocate
    from ledger.allocation.views import Request
    from ledger.values import GiB
    from projections.projector import catch_up

    app = open_ledger(url)
    try:
        host = populate(app, pools)
        catch_up(app)
        request = Request(
            size=GiB,
            zone_id="z1",
            cluster_id="c1",
            host_id=str(host.id),  # type: ignore[attr-defined]
            tags=(),
        )
        times: list[float] = []
        chosen: set[str] = set()
        for _ in range(calls + 2):
            ctx = Ctx.new("bench")
            volume = new_volume(ctx, uuid.uuid4(), GiB)
            start = time.perf_counter()
            placement.candidates_of(app).refresh()
            decision, pool, _ = placement.place(app, ctx, volume, request)
            times.append(time.perf_counter() - start)
            assert pool is not None, decision.summary()
            chosen.add(pool.name)
        times = times[2:]  # the first calls warm the caches
        views = app.candidates.pools("z1", None)
        bare: list[float] = []
        for i in range(calls):
            start = time.perf_counter()
            allocate(request, views, 0.85, "firstfit", seed=i)
            bare.append(time.perf_counter() - start)
        return {
            "median": median(times),
            "p99": percentile(times, 99),
            "bare_median": median(bare),
            "candidates": len(views),
            "distinct_chosen": len(chosen),
        }
    finally:
        app.close()


def run(opts: Options) -> list[Figure]:
    pools = 1000 if opts.quick else 10_000
    calls = 20 if opts.quick else 100
    figures: list[Figure] = []
    for store in opts.stores:
        with database(store, opts.workdir, "allocate") as url:
            m = measure(url, pools, calls)
        common = {
            "benchmark": "allocate",
            "store": store,
            "unit": "ms",
            "baseline": "allocator chain alone (median, no database)",
            "baseline_value": m["bare_median"] * 1000,
            "direction": "lower",
            "extra": {"pools": pools, "calls": calls, **m},
        }
        figures.append(
            Figure(
                name=f"place() among {pools:,} pools, median",
                value=m["median"] * 1000,
                target=20.0,
                target_text="< 20 ms",
                **common,  # type: ignore[arg-type]
            )
        )
        figures.append(
            Figure(
                name=f"place() among {pools:,} pools, p99",
                value=m["p99"] * 1000,
                **common,  # type: ignore[arg-type]
            )
        )
    return figures
