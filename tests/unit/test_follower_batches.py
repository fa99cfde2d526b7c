"""The engine's followers decide a batch of notifications as one unit of work and
save it in one transaction; a batch that loses a race is decided again one
notification at a time, from fresh state. Either way the outcome is the same as
deciding each notification alone, on both stores."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from cli import bootstrap
from executors.engine import Engine
from ledger.aggregate import Ctx
from ledger.app import Ledger
from ledger.job import Job
from ledger.pool import StoragePool
from ledger.usecases import infrastructure, volumes
from ledger.values import (
    GiB,
    Hypervisor,
    JobStatus,
    PoolType,
    Scope,
    VolumeState,
)
from ledger.volume import Volume

N = 6


def ctx() -> Ctx:
    return Ctx.new("t")


@pytest.fixture
def world(ledger: Ledger, db_url: str) -> tuple[Ledger, Engine, UUID]:
    infrastructure.register_host(
        ledger, ctx(), "sim1", "z1", "c1", Hypervisor.Simulator
    )
    pool = infrastructure.register_pool(
        ledger,
        ctx(),
        name="p1",
        zone="z1",
        path="/sim/p1",
        capacity=100 * GiB,
        scope=Scope.CLUSTER,
        pool_type=PoolType.Simulator,
        cluster="c1",
        overprovision=1.0,
    )
    return ledger, bootstrap.engine(ledger, project=False), pool.id


def count_saves(ledger: Ledger) -> dict[str, int]:
    """How many saves each follower makes from now on (by its tracking row)."""
    saves: dict[str, int] = {}
    original = ledger.save_tracked

    def save_tracked(aggregates: Any, tracking: Any) -> None:
        if tracking is not None:
            name = tracking.application_name
            saves[name] = saves.get(name, 0) + 1
        original(aggregates, tracking)

    ledger.save_tracked = save_tracked  # type: ignore[method-assign]
    return saves


def submit_creates(ledger: Ledger) -> list[Job]:
    return [
        volumes.create_volume(
            ledger, ctx(), name=f"v{i}", zone="z1", size=GiB, pool_ref="p1"
        )
        for i in range(N)
    ]


def work(engine: Engine) -> None:
    engine.run(once=True)


def settled(ledger: Ledger, jobs: list[Job]) -> list[Job]:
    return [ledger.load(Job, j.id) for j in jobs]


def test_jobs_submitted_together_are_answered_and_decided_in_one_save_each(
    world: tuple[Ledger, Engine, UUID],
) -> None:
    ledger, engine, _ = world
    jobs = submit_creates(ledger)
    saves = count_saves(ledger)
    engine.step()
    assert saves == {"dispatcher": 1, "workflow": 1}
    done = settled(ledger, jobs)
    assert [j.status for j in done] == [JobStatus.succeeded] * N
    for job in done:
        assert ledger.load(Volume, job.object_id).state is VolumeState.Ready
    assert all(f.fallbacks == 0 for f in engine._followers.values())


def test_a_batch_that_loses_a_race_is_decided_again_from_fresh_state(
    world: tuple[Ledger, Engine, UUID], db_url: str
) -> None:
    """Another process's engine works the same notifications (as when a lease
    expired during a stall) and saves its answers between our dispatcher's
    decisions and its save. Our save fails; deciding one notification at a time
    from fresh state finds every command answered, so each request has exactly one
    answer and each job settles once."""
    ledger, engine, _ = world
    jobs = submit_creates(ledger)
    other = bootstrap.open_ledger(db_url)
    try:
        rival = bootstrap.engine(other, project=False)
        original = ledger.save_batch
        raced: list[bool] = []

        def save_batch(batch: Any, tracking: Any) -> list[Any]:
            if not raced and batch.decided:
                raced.append(True)
                rival.step()
            return original(batch, tracking)

        ledger.save_batch = save_batch  # type: ignore[method-assign]
        work(engine)
    finally:
        other.close()
    assert raced
    assert engine._followers["dispatcher"].fallbacks == 1
    assert [j.status for j in settled(ledger, jobs)] == [JobStatus.succeeded] * N
    for job in jobs:
        answers = [
            e
            for e in ledger.events.get(job.object_id)
            if isinstance(e, Volume.CreateAnswered)
        ]
        assert len(answers) == 1
        settles = [e for e in ledger.events.get(job.id) if isinstance(e, Job.Succeeded)]
        assert len(settles) == 1


def test_a_decision_that_changes_what_it_does_not_return_undoes_the_batch(
    world: tuple[Ledger, Engine, UUID],
) -> None:
    """Deciding one notification at a time would not save such a change, so the
    batch is not saved either, and the cached aggregate it changed is read again."""
    ledger, engine, pool_id = world
    jobs = submit_creates(ledger)
    decide = engine.decide
    strayed: list[bool] = []

    def decide_and_stray(app: Any, event: Any) -> Any:
        out = decide(app, event)
        if not strayed and out:
            strayed.append(True)
            pool = ledger.load(StoragePool, pool_id)
            pool.report_stats(ctx(), 999, "sim1")  # changed, never returned
        return out

    engine.decide = decide_and_stray
    work(engine)
    assert engine._followers["workflow"].fallbacks == 1
    assert [j.status for j in settled(ledger, jobs)] == [JobStatus.succeeded] * N
    assert ledger.load(StoragePool, pool_id).used != 999
    assert ledger.peek(StoragePool, pool_id).used != 999
