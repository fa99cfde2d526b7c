"""`replay verify` is silent on the histories storctl writes: decisions a follower
made in one batch, and steps that return one aggregate twice, are not divergences;
an edited answer still is."""

from __future__ import annotations

import json

from cli import bootstrap
from ledger.aggregate import Ctx
from ledger.job import Job
from ledger.usecases import (
    infrastructure,
    migration,
    simulator,
    templates,
    vms,
    volumes,
)
from ledger.values import GiB, Hypervisor, ImageFormat, JobStatus, PoolType, Scope
from ledger.verify import verify


def ctx() -> Ctx:
    return Ctx.new("t")


def zone(ledger, stores: int = 1) -> None:
    for host, cluster in (("s1", "c1"), ("s2", "c2")):
        infrastructure.register_host(
            ledger, ctx(), host, "z1", cluster, Hypervisor.Simulator
        )
    for name, cluster in (("p1", "c1"), ("p2", "c2")):
        infrastructure.register_pool(
            ledger, ctx(), name=name, zone="z1", path=f"/sim/{name}",
            capacity=100 * GiB, scope=Scope.CLUSTER, pool_type=PoolType.Simulator,
            cluster=cluster,
        )  # fmt: skip
    for n in range(stores):
        infrastructure.register_store(
            ledger, ctx(), f"sec{n}", "z1", f"/sim/sec{n}", "Simulator"
        )


def settle(ledger, job: Job) -> Job:
    bootstrap.engine(ledger).run(once=True)
    return ledger.load(Job, job.id)


def test_a_staged_migration_verifies_clean(ledger):
    """Its two deletes (the staged copy, the source file) are answered together:
    the job settles on the first, and the second, decided in the same batch, sees
    it settled."""
    zone(ledger)
    created = settle(
        ledger,
        volumes.create_volume(
            ledger, ctx(), name="v", zone="z1", size=GiB, pool_ref="p1"
        ),
    )
    moved = settle(
        ledger, migration.migrate_volume(ledger, ctx(), created.object_id, "p2")
    )
    assert moved.status is JobStatus.succeeded
    report = verify(ledger)
    assert report.answers >= 5
    assert report.divergences == []


def test_a_template_downloaded_to_two_stores_verifies_clean(ledger):
    zone(ledger, stores=2)
    job = templates.register_template(
        ledger, ctx(), name="t", url="http://x.invalid/t.qcow2",
        fmt=ImageFormat.QCOW2, zone="z1",
    )  # fmt: skip
    assert settle(ledger, job).status is JobStatus.succeeded
    report = verify(ledger)
    assert report.answers == 2
    assert report.divergences == []


def test_a_failed_template_copy_verifies_clean(ledger):
    """Its step returns the pool twice (the copy's and the volume's release)."""
    zone(ledger)
    job = templates.register_template(
        ledger, ctx(), name="t", url="http://x.invalid/t.qcow2",
        fmt=ImageFormat.QCOW2, zone="z1",
    )  # fmt: skip
    settle(ledger, job)
    simulator.configure_simulator(ledger, ctx(), "s1", "CopyCommand", "fail")
    deployed = settle(
        ledger,
        vms.deploy_vm(
            ledger, ctx(), name="vm", template_ref="t", zone="z1", host_ref="s1"
        ),
    )
    assert deployed.status is JobStatus.failed
    assert verify(ledger).divergences == []


def test_an_edited_answer_is_still_reported(ledger, db_url):
    """Silence is not blindness: a recorded answer turned from success into
    failure by hand diverges from what the workflow decided after it."""
    zone(ledger)
    created = settle(
        ledger,
        volumes.create_volume(
            ledger, ctx(), name="v", zone="z1", size=GiB, pool_ref="p1"
        ),
    )
    assert created.status is JobStatus.succeeded
    note = next(
        n
        for n in ledger.recorder.select_notifications(start=None, limit=1000)
        if n.topic.endswith("Volume.CreateAnswered")
    )
    state = json.loads(note.state)
    state["answer"]["result"] = False
    state["trigger"] = "OperationFailed"
    edited = json.dumps(state).encode()
    if db_url.startswith("postgres"):
        import psycopg

        from ledger.store.database import parse_db, pg_connect_args

        db = parse_db(db_url)
        with psycopg.connect(**pg_connect_args(db), autocommit=True) as conn:
            # stored history is append-only: a hand edit must first switch the
            # guard off, as only a superuser can
            conn.execute("SET session_replication_role = replica")
            conn.execute(
                f'UPDATE "{db.schema}".storctl_events SET state = %s'
                " WHERE notification_id = %s",
                [edited, note.id],
            )
    else:
        import sqlite3

        with sqlite3.connect(db_url) as conn:
            conn.execute(
                "UPDATE stored_events SET state = ? WHERE rowid = ?", [edited, note.id]
            )
    report = verify(ledger)
    assert report.divergences
    assert {d.position for d in report.divergences} == {note.id}
