"""`append`: volume lifecycles through the whole pipeline, in events per second.

The pipeline: a simulator host, a simulator pool, an image store, a template and
VMs (set up first, not timed); then N lifecycles of a data volume, each operation
submitted through `Ledger` (src/ledger/usecases) and worked to its end by the
`Engine` (dispatcher with the simulator agent, workflows, projections caught up),
as `storctl volume ...` does on the embedded default:

    create --pool (allocate + create), attach, snapshot, detach, delete, expunge

(the snapshot is taken on the pool, then backed up to the image store: two commands).
The rate is every event the lifecycles wrote (requests, answers, jobs, pool
reservations, ...) over the wall time. Two shapes:

- in flight (the target figure): the lifecycles go in waves of `WAVE`, as an
  operator's script submits with `--async` and `storctl executor run` works them:
  each step is submitted for the whole wave, then the engine works until idle,
  its followers deciding many notifications per transaction;
- one at a time (for information): each operation is driven to its end before the
  next is submitted, as a CLI waits for its job; a follower's batch then holds one
  decision, so this is the latency of a command more than the pipeline's rate.

The in-flight lifecycles and their baseline run `ROUNDS` times, alternately, each on
a fresh database, and each figure is its best round (`extra.rounds` keeps them all).

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
from ledger.usecases import infrastructure, snapshots, templates, vms, volumes


class Blob(Aggregate):
    """The baseline's aggregate: a created event and updates carrying a payload."""

    def __init__(self, payload: str) -> None:
        self.payload = payload

    @event("Updated")
    def update(self, payload: str) -> None:
        self.payload = payload


class Bare(Application[Any]):
    name = "bare"


#: Lifecycles in flight together in the target shape (one VM each takes 50 data
#: disks: CloudStack's limit is 63 device ids less the root disk and the CD-ROM).
WAVE = 50
#: rounds of the target figure and its baseline, alternately, the best of each
#: kept (this machine's speed moves by tens of percent within a minute)
ROUNDS = 3
STEPS = ("create", "attach", "snapshot", "detach", "delete", "expunge")


#: the library's own recorders: the same pipeline without the hash chain, to
#: measure what sealing every append costs (`ledger.store.sealing`)
UNSEALED = {
    "sqlite": "eventsourcing.sqlite:SQLiteProcessRecorder",
    "postgres": "eventsourcing.postgres:PostgresProcessRecorder",
}


def lifecycles(
    url: str, n: int, wave: int = WAVE, *, unsealed: bool = False
) -> dict[str, Any]:
    """`n` lifecycles, `wave` at a time (1: each operation driven to its end
    before the next is submitted); `unsealed`: without the hash chain."""
    from cli.bootstrap import engine as build_engine
    from ledger.aggregate import Ctx
    from ledger.job import Job
    from ledger.store.database import parse_db
    from ledger.values import GiB, Hypervisor, ImageFormat, JobStatus, PoolType, Scope

    env = {}
    if unsealed:
        env["PROCESS_RECORDER_TOPIC"] = UNSEALED[parse_db(url).kind]
    app = open_ledger(url, **env)
    try:
        engine = build_engine(app)

        def ctx() -> Ctx:
            return Ctx.new("bench")

        def drive(job: Any) -> Any:
            done = engine.drive(job.id)
            assert done.status is JobStatus.succeeded, (done.cmd, done.error)
            return done

        infrastructure.register_host(
            app, ctx(), "sim1", "z1", "c1", Hypervisor.Simulator
        )
        infrastructure.register_pool(
            app,
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
        infrastructure.register_store(app, ctx(), "s1", "z1", "/sim/s1")
        drive(
            templates.register_template(
                app,
                ctx(),
                name="t1",
                url="http://example.invalid/t1.qcow2",
                fmt=ImageFormat.QCOW2,
                zone="z1",
            )
        )
        vm_count = (min(wave, n) + WAVE - 1) // WAVE
        for k in range(vm_count):
            drive(
                vms.deploy_vm(app, ctx(), name=f"vm{k}", template_ref="t1", zone="z1")
            )
        head = app.recorder.max_notification_id() or 0
        steps = dict.fromkeys(STEPS, 0.0)

        def work(jobs: list[Any]) -> list[Any]:
            """Drive one job, or work a wave until idle; every job succeeded."""
            if len(jobs) == 1:
                return [drive(jobs[0])]
            engine.run(once=True)
            done = [app.load(Job, j.id) for j in jobs]
            for job in done:
                assert job.status is JobStatus.succeeded, (job.cmd, job.error)
            return done

        def step(name: str, submit: Any, items: list[Any]) -> list[Any]:
            t = time.perf_counter()
            done = work([submit(i, item) for i, item in enumerate(items)])
            steps[name] += time.perf_counter() - t
            return done

        start = time.perf_counter()
        for first in range(0, n, wave):
            names = [f"v{i}" for i in range(first, min(first + wave, n))]
            created = step(
                "create",
                lambda _, name: volumes.create_volume(
                    app, ctx(), name=name, zone="z1", size=GiB, pool_ref="p1"
                ),
                names,
            )
            vids = [job.object_id for job in created]
            step(
                "attach",
                lambda i, vid: volumes.attach_volume(app, ctx(), vid, f"vm{i // WAVE}"),
                vids,
            )
            step(
                "snapshot",
                lambda _, vid: snapshots.snapshot_volume(app, ctx(), vid),
                vids,
            )
            step("detach", lambda _, vid: volumes.detach_volume(app, ctx(), vid), vids)
            step("delete", lambda _, vid: volumes.delete_volume(app, ctx(), vid), vids)
            step(
                "expunge", lambda _, vid: volumes.expunge_volume(app, ctx(), vid), vids
            )
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
            "in_flight": wave,
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
    from ledger.store.database import ddl_lock, parse_db, prepare

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
    n = 10 if opts.quick else 200
    wave = min(WAVE, n)
    figures: list[Figure] = []
    for store in opts.stores:
        rounds: list[tuple[dict[str, Any], float]] = []
        unsealed: list[float] = []
        for r in range(ROUNDS):
            with database(store, opts.workdir, f"unsealed{r}") as url:
                u = lifecycles(url, n, wave, unsealed=True)
                unsealed.append(u["events"] / u["seconds"])
            with database(store, opts.workdir, f"append{r}") as url:
                m = lifecycles(url, n, wave)
            with database(store, opts.workdir, f"bare{r}") as url:
                rounds.append((m, bare(url, m["events"], m["mean_state_bytes"], 1)))
        m = min((measured for measured, _ in rounds), key=lambda x: x["seconds"])
        one = max(rate for _, rate in rounds)
        m["rounds"] = [
            {"seconds": measured["seconds"], "bare_events_per_s": rate}
            for measured, rate in rounds
        ]
        with database(store, opts.workdir, "append-single") as url:
            single = lifecycles(url, n, 1)
        with database(store, opts.workdir, "bare100") as url:
            hundred = bare(url, m["events"], m["mean_state_bytes"], 100)
        rate = m["events"] / m["seconds"]
        plain = max(unsealed)
        single_rate = single["events"] / single["seconds"]
        baseline = "bare Application, 3-event aggregates, one save each"
        figures += [
            Figure(
                benchmark="append",
                store=store,
                name=f"{n} lifecycles, {wave} in flight, whole pipeline",
                value=rate,
                unit="events/s",
                baseline=baseline,
                baseline_value=one,
                ratio=rate / one,
                target=0.5,
                target_text=">= 0.5",
                extra={**m, "bare_batched_100_events_per_s": hundred},
            ),
            Figure(
                benchmark="append",
                store=store,
                name="  (the same without the hash chain, same run)",
                value=plain,
                unit="events/s",
                baseline=baseline,
                baseline_value=one,
                ratio=plain / one,
                extra={
                    "rounds_events_per_s": unsealed,
                    "sealed_over_unsealed": rate / plain,
                },
            ),
            Figure(
                benchmark="append",
                store=store,
                name="  (the same, one operation at a time)",
                value=single_rate,
                unit="events/s",
                baseline=baseline,
                baseline_value=one,
                ratio=single_rate / one,
                extra=single,
            ),
            Figure(
                benchmark="append",
                store=store,
                name="  (bare, batched 100 aggregates per save)",
                value=hundred,
                unit="events/s",
                baseline=baseline,
                baseline_value=one,
                ratio=hundred / one,
            ),
        ]
    return figures
