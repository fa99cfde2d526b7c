"""`replay`: rebuilding every projection from a log of 1,000,000 events.

The log is generated cheaply but through the ledger's own aggregates: one simulator
host and 50 simulator pools registered with `Ledger`, then `StoragePool.reserve` and
`release` of made-up objects, alternately, saved 20,000 events per save on SQLite,
1,000 on PostgreSQL (one transaction each), by a `Ledger` subclass with aggregate
snapshotting off (the log is the same; only the snapshot store is left empty).
Reservation events are among the most frequent of a real log (every create, delete,
template copy), and the projection adds each to its pool's `allocated_bytes` (summed
per batch) and writes an `event_journal` row.

Figures:
- rebuild: `projections.projector.rebuild` (drop the tables, apply every event, batches
  of 5,000 with one tracking row each, secondary indexes built at the end), in
  events per second (on SQLite, a second process journals the log's tail meanwhile,
  as `storctl projection rebuild` does: `projections.journal_stage`);
- replay --until the middle: `projections.replay.replay_to_file` of the first half
  into a new ledger, as `storctl replay --until N --into FILE` does, opening and
  closing it included (the stored events copied by chunks and projected as they go
  in, one transaction; the two ledgers share a store, so each chunk is copied by
  `INSERT ... SELECT` in the database; on SQLite, with the new file closed to the
  library, on a connection of its own in rollback-journal mode);
baseline for both: reading the same notifications (`select_notifications`, batches of
500) and decoding each into its domain event (`mapper.to_domain_event`), nothing else.
Every measurement runs `ROUNDS` times, alternately, and each figure (baselines too)
is its best round: on a shared machine the slowest round says more about the
neighbours than about the code. `extra.rounds` keeps every round.
"""

from __future__ import annotations

import contextlib
import time
from functools import partial
from typing import Any

from bench.common import Figure, Options, database, open_ledger, timed
from bench.load import Holder
from ledger.usecases import infrastructure

POOLS = 50
#: events per save: one big transaction on SQLite; on PostgreSQL a save of 20,000
#: events hung (psycopg's pipeline in eventsourcing's insert_events), so 1,000.
PER_SAVE = {"sqlite": 20_000, "postgres": 1_000}
BATCH = 500
FULL = {"sqlite": 1_000_000, "postgres": 1_000_000}
#: rounds of every measurement, the best kept: this machine's speed moves by tens
#: of percent within a minute (the same Python loop, run again: 0.5 to 0.9 s)
ROUNDS = 2


def generate(app: Any, events: int, per_save: int) -> int:
    from ledger.aggregate import Ctx
    from ledger.pool import StoragePool
    from ledger.values import Hypervisor, PoolType, Scope

    ctx = Ctx.new("bench")
    infrastructure.register_host(app, ctx, "sim1", "z1", "c1", Hypervisor.Simulator)
    pools = [
        infrastructure.register_pool(
            app,
            ctx,
            name=f"p{i}",
            zone="z1",
            path=f"/sim/p{i}",
            capacity=1 << 60,
            scope=Scope.CLUSTER,
            pool_type=PoolType.Simulator,
            cluster="c1",
            overprovision=1.0,
        )
        for i in range(POOLS)
    ]
    pools = [app.load(StoragePool, p.id) for p in pools]
    written = app.recorder.max_notification_id() or 0
    while written < events:
        ctx = Ctx.new("bench")
        pending = 0
        while pending < min(per_save, events - written):
            pool = pools[pending // 2 % POOLS]
            holder = Holder()
            pool.reserve(ctx, holder, 1 << 30, 0.99, 1.0)
            pool.release(ctx, holder)
            pending += 2
        app.save(*pools)
        written += pending
    return app.recorder.max_notification_id() or 0


def read_and_decode(app: Any, stop: int | None = None) -> tuple[float, int]:
    start = time.perf_counter()
    last, count = 0, 0
    to_domain_event = app.mapper.to_domain_event
    while True:
        notes = app.recorder.select_notifications(
            start=last, limit=BATCH, stop=stop, inclusive_of_start=False
        )
        for note in notes:
            to_domain_event(note)
        count += len(notes)
        if len(notes) < BATCH:
            break
        last = notes[-1].id
    return time.perf_counter() - start, count


def measure(
    url: str, target_urls: list[str], events: int, per_save: int
) -> dict[str, Any]:
    """Generate the log once, then per target URL a round: read and decode, rebuild,
    read and decode up to the middle, replay --until the middle into that target.
    Each figure is the best of the rounds (baselines included: the fastest read of
    a round is the one the projection is held against)."""
    from ledger.app import Ledger
    from projections.projector import rebuild
    from projections.replay import replay_to_file

    class Generator(Ledger):
        name = Ledger.name  # the same tables on PostgreSQL
        snapshotting_intervals = {}

    gen = open_ledger(url, Generator, IS_SNAPSHOTTING_ENABLED="n")
    try:
        generated, head = timed(lambda: generate(gen, events, per_save))
    finally:
        gen.close()
    middle = head // 2
    rounds: list[dict[str, float]] = []
    app = open_ledger(url)
    try:
        for target_url in target_urls:
            decode_s, count = read_and_decode(app)
            rebuild_s, applied = timed(partial(rebuild, app))
            decode_mid_s, mid_count = read_and_decode(app, middle)
            until_s, copied = timed(
                partial(replay_to_file, app, partial(open_ledger, target_url), middle)
            )
            rounds.append(
                {
                    "decode_s": decode_s,
                    "rebuild_s": rebuild_s,
                    "decode_mid_s": decode_mid_s,
                    "until_s": until_s,
                }
            )
    finally:
        app.close()
    best = {key: min(r[key] for r in rounds) for key in rounds[0]}
    return {
        "events": count,
        "generate_s": generated,
        **best,
        "rebuilt": applied,
        "middle": middle,
        "mid_events": mid_count,
        "copied": copied,
        "rounds": rounds,
    }


def run(opts: Options) -> list[Figure]:
    figures: list[Figure] = []
    for store in opts.stores:
        events = 10_000 if opts.quick else FULL[store]
        with contextlib.ExitStack() as stack:
            url = stack.enter_context(database(store, opts.workdir, "replay"))
            targets = [
                stack.enter_context(database(store, opts.workdir, f"until{n}"))
                for n in range(ROUNDS)
            ]
            m = measure(url, targets, events, PER_SAVE[store])
        decode_rate = m["events"] / m["decode_s"]
        rebuild_rate = m["rebuilt"] / m["rebuild_s"]
        figures.append(
            Figure(
                benchmark="replay",
                store=store,
                name=f"rebuild {m['events']:,} events",
                value=rebuild_rate,
                unit="events/s",
                baseline="read + decode the same log",
                baseline_value=decode_rate,
                ratio=rebuild_rate / decode_rate,
                target=0.5,
                target_text=">= 0.5",
                extra=m,
            )
        )
        figures.append(
            Figure(
                benchmark="replay",
                store=store,
                name=f"  rebuild time ({m['events']:,} events)",
                value=m["rebuild_s"],
                unit="s",
                direction="lower",
                target=20.0 if m["events"] >= 1_000_000 else None,
                target_text="< 20 s" if m["events"] >= 1_000_000 else "",
            )
        )
        mid_decode = m["mid_events"] / m["decode_mid_s"]
        until_rate = m["copied"] / m["until_s"]
        figures.append(
            Figure(
                benchmark="replay",
                store=store,
                name=f"replay --until {m['middle']:,} (copy + project)",
                value=until_rate,
                unit="events/s",
                baseline="read + decode up to the middle",
                baseline_value=mid_decode,
                ratio=until_rate / mid_decode,
                target=0.5,
                target_text=">= 0.5",
            )
        )
    return figures
