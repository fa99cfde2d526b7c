"""`append`: volume lifecycles through the whole pipeline, in events per second.

The pipeline: a simulator host, a simulator pool, an image store, a template and a
VM (set up first, not timed); then N lifecycles of a data volume, each operation
submitted through `Ledger` (src/ledger/operations.py) and driven to its end by the
`Engine` (workflows, dispatcher with the simulator agent, projections caught up after
every round), as `storctl volume ...` does on the embedded default:

    create --pool (allocate + create), attach, snapshot, detach, delete, expunge

(the snapshot is taken on the pool, then backed up to the image store: two commands).
The rate is every event the lifecycles wrote (requests, answers, jobs, pool
reservations, ...) over the wall time.

Baseline: the bare eventsourcing Application on a fresh database of the same store,
saving the same number of events with the same mean stored size, as aggregates of 3
events with one save per aggregate (the issue's reference shape); the rate batched
100 aggregates per save is recorded as well, for information.
"""

from __future__ import annotations

import time
from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from bench.common import Figure, Options, database, open_ledger


class Blob(Aggregate):
    """The baseline's aggregate: a created event and updates carrying a payload."""

    def __init__(self, payload: str) -> None:
        self.payload = payload

    @event("Updated")
    def update(self, payload: str) -> None:
        self.payload = payload


class Bare(Application[Any]):
    name = "bare"


def lifecycles(url: str, n: int) -> dict[str, Any]:
    from executors.engine import Engine
    from ledger.base import Ctx
    from ledger.store import parse_db
    from ledger.values import GiB, Hypervisor, ImageFormat, JobStatus, PoolType, Scope
    from projections.runner import catch_up

    app = open_ledger(url)
    try:
        engine = Engine(app, parse_db(url), project=catch_up)

        def ctx() -> Ctx:
            return Ctx.new("bench")

        def drive(job: Any) -> Any:
            done = engine.drive(job.id)
            assert done.status is JobStatus.succeeded, (done.cmd, done.error)
            return done

        app.register_host(ctx(), "sim1", "z1", "c1", Hypervisor.Simulator)
        app.register_pool(
            ctx(),
            name="p1",
            zone="z1",
            path="/sim/p1",
            capacity=1 << 60,
            scope=Scope.CLUSTER,
            pool_type=PoolType.Simulator,
            cluster="c1",
            overprovision=1.0,
        )
        app.register_store(ctx(), "s1", "z1", "/sim/s1")
        drive(
            app.register_template(
                ctx(),
                name="t1",
                url="http://example.invalid/t1.qcow2",
                fmt=ImageFormat.QCOW2,
                zone="z1",
            )
        )
        drive(app.deploy_vm(ctx(), name="vm1", template_ref="t1", zone="z1"))
        head = app.recorder.max_notification_id() or 0
        names = ("create", "attach", "snapshot", "detach", "delete", "expunge")
        steps = {k: 0.0 for k in names}

        def step(name: str, submit: Any) -> Any:
            t = time.perf_counter()
            job = drive(submit())
            steps[name] += time.perf_counter() - t
            return job

        start = time.perf_counter()
        for i in range(n):
            created = step(
                "create",
                lambda i=i: app.create_volume(
                    ctx(), name=f"v{i}", zone="z1", size=GiB, pool_ref="p1"
                ),
            )
            vid = created.object_id
            step("attach", lambda vid=vid: app.attach_volume(ctx(), vid, "vm1"))
            step("snapshot", lambda vid=vid: app.snapshot_volume(ctx(), vid))
            step("detach", lambda vid=vid: app.detach_volume(ctx(), vid))
            step("delete", lambda vid=vid: app.delete_volume(ctx(), vid))
            step("expunge", lambda vid=vid: app.expunge_volume(ctx(), vid))
        elapsed = time.perf_counter() - start
        notes = []
        last = head
        while True:
            batch = app.recorder.select_notifications(
                start=last, limit=1000, inclusive_of_start=False
            )
            notes += batch
            if len(batch) < 1000:
                break
            last = batch[-1].id
        sizes = [len(n.state) for n in notes]
        return {
            "lifecycles": n,
            "events": len(notes),
            "seconds": elapsed,
            "mean_state_bytes": sum(sizes) / len(sizes),
            "per_step_ms": {k: v / n * 1000 for k, v in steps.items()},
        }
    finally:
        app.close()


def bare(url: str, events: int, state_bytes: float, per_save: int) -> float:
    """Events per second of the bare library saving `events` events of about
    `state_bytes` stored bytes each, as 3-event aggregates, `per_save` per save."""
    from ledger.store import ddl_lock, parse_db, prepare

    db = parse_db(url)
    prepare(db)
    with ddl_lock(db):
        app = Bare(env=db.env)
    try:
        probe = Blob("")
        empty = len(app.mapper.to_stored_event(probe.collect_events()[0]).state)
        payload = "x" * max(int(state_bytes) - empty, 0)
        aggregates = max(events // 3, 1)
        start = time.perf_counter()
        pending: list[Blob] = []
        for _ in range(aggregates):
            blob = Blob(payload)
            blob.update(payload)
            blob.update(payload)
            pending.append(blob)
            if len(pending) >= per_save:
                app.save(*pending)
                pending = []
        if pending:
            app.save(*pending)
        return aggregates * 3 / (time.perf_counter() - start)
    finally:
        app.close()


def run(opts: Options) -> list[Figure]:
    n = 5 if opts.quick else 200
    figures: list[Figure] = []
    for store in opts.stores:
        with database(store, opts.workdir, "append") as url:
            m = lifecycles(url, n)
        rate = m["events"] / m["seconds"]
        with database(store, opts.workdir, "bare1") as url:
            one = bare(url, m["events"], m["mean_state_bytes"], 1)
        with database(store, opts.workdir, "bare100") as url:
            hundred = bare(url, m["events"], m["mean_state_bytes"], 100)
        figures.append(
            Figure(
                benchmark="append",
                store=store,
                name=f"{n} lifecycles, whole pipeline",
                value=rate,
                unit="events/s",
                baseline="bare Application, 3-event aggregates, one save each",
                baseline_value=one,
                ratio=rate / one,
                target=0.5,
                target_text=">= 0.5",
                extra={**m, "bare_batched_100_events_per_s": hundred},
            )
        )
        figures.append(
            Figure(
                benchmark="append",
                store=store,
                name="  (bare, batched 100 aggregates per save)",
                value=hundred,
                unit="events/s",
                baseline="bare Application, 3-event aggregates, one save each",
                baseline_value=one,
                ratio=hundred / one,
            )
        )
    return figures
