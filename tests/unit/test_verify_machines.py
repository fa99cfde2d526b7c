"""`replay verify` re-asks the pool, VM, host and job tables too: a session that
moves each of them verifies clean with their steps counted, and a step no table
allows, planted in a stored log, is reported where it was planted."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent

from ledger import verify as verify_module
from ledger.aggregate import Ctx
from ledger.app import Ledger
from ledger.host import Host
from ledger.job import Job
from ledger.pool import StoragePool
from ledger.store.database import parse_db
from ledger.values import HostState, PoolStatus, VmState
from ledger.verify import kind_of, read_log, verify
from ledger.vm import VirtualMachine

from .test_audit import run, simulator_session
from .test_replay import _copy

NEW_KINDS = ("StoragePool", "VirtualMachine", "Host", "Job")


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> tuple[str, dict[str, str]]:
    """The audit session, then every new kind moved: the pool disabled, enabled,
    through maintenance and back; the host disabled and enabled; the VM stopped,
    started and destroyed; a job that fails (no pool takes 1 TB)."""
    tmp = tmp_path_factory.mktemp("verify")
    db = simulator_session(str(tmp / "ledger.db"), tmp)
    for args in (
        ("pool", "disable", "p1"),
        ("pool", "enable", "p1"),
        ("pool", "maintenance", "enable", "p1"),
        ("pool", "maintenance", "cancel", "p1"),
        ("host", "disable", "sim1"),
        ("host", "enable", "sim1"),
        ("vm", "stop", "vm1"),
        ("vm", "start", "vm1"),
    ):
        run(db, *args)
    run(db, "volume", "create", "huge", "--zone", "z1", "--size", "1T",
        "--pool", "p1", code=3)  # fmt: skip
    jobs = {j["cmd"]: j["jobid"] for j in run(db, "job", "list")}
    ids = {
        "StoragePool": run(db, "pool", "show", "p1")["id"],
        "Host": run(db, "host", "show", "sim1")["id"],
        "VirtualMachine": run(db, "vm", "show", "vm1")["id"],
        "Job": jobs["vm.deploy"],
    }
    run(db, "vm", "destroy", "vm1")
    return db, ids


def open_app(db: str) -> Ledger:
    return Ledger(env=parse_db(db).env)


def steps_by_kind(db: str) -> Counter[str]:
    """Events of the new kinds that record a move (settlements included)."""
    app = open_app(db)
    try:
        return Counter(
            kind_of(rec.event)
            for rec in read_log(app)
            if kind_of(rec.event) in NEW_KINDS and hasattr(rec.event, "trigger")
        )
    finally:
        app.close()


def test_a_clean_log_counts_every_kinds_steps(session, monkeypatch):
    db, _ = session
    steps = steps_by_kind(db)
    assert all(steps[kind] for kind in NEW_KINDS), steps
    app = open_app(db)
    try:
        report = verify(app)
        assert report.clean, report.divergences
        old = {k: v for k, v in verify_module.SPEC_OF.items() if k not in NEW_KINDS}
        monkeypatch.setattr(verify_module, "SPEC_OF", old)
        before = verify(app)
    finally:
        app.close()
    assert report.transitions - before.transitions == sum(steps.values())
    assert (report.skipped, report.events) == (before.skipped, before.events)


def test_the_cli_verifies_the_session_clean(session):
    db, _ = session
    result = run(db, "replay", "verify", output="csv")
    assert result.stdout.splitlines()[1:] == []
    assert ": 0 divergences" in result.stderr


def _plant(app: Ledger, aggregate: Any, event_class: type, **fields: Any) -> int:
    aggregate.trigger_event(event_class, **Ctx.new("mallory").fields(), **fields)
    app.save(aggregate)
    return app.recorder.max_notification_id() or 0


def pool_removed_from_up(app: Ledger, oid: uuid.UUID) -> int:
    pool = app.load(StoragePool, oid)
    assert pool.status is PoolStatus.Up
    return _plant(
        app,
        pool,
        StoragePool.StatusChanged,
        trigger="Remove",
        from_status=PoolStatus.Up,
        to_status=PoolStatus.Removed,
    )


def pool_enabled_from_a_state_it_was_not_in(app: Ledger, oid: uuid.UUID) -> int:
    return _plant(
        app,
        app.load(StoragePool, oid),
        StoragePool.StatusChanged,
        trigger="Enable",
        from_status=PoolStatus.Disabled,
        to_status=PoolStatus.Up,
    )


def vm_started_once_destroyed(app: Ledger, oid: uuid.UUID) -> int:
    vm = app.load(VirtualMachine, oid)
    assert vm.state is VmState.Destroyed
    return _plant(
        app,
        vm,
        VirtualMachine.StateChanged,
        trigger="StartRequested",
        from_state=VmState.Destroyed,
        to_state=VmState.Running,
    )


def host_disabled_into_down(app: Ledger, oid: uuid.UUID) -> int:
    host = app.load(Host, oid)
    assert host.state is HostState.Up
    return _plant(
        app,
        host,
        Host.StateChanged,
        trigger="Disable",
        from_state=HostState.Up,
        to_state=HostState.Down,
    )


def job_settled_twice(app: Ledger, oid: uuid.UUID) -> int:
    job = app.load(Job, oid)
    assert job.settled
    return _plant(app, job, Job.Succeeded, result={})


#: (kind, how it is planted, verify's expected, verify's recorded)
PLANTS = [
    (
        "StoragePool",
        pool_removed_from_up,
        "StoragePool: no Remove from Up",
        "Up -Remove-> Removed",
    ),
    (
        "StoragePool",
        pool_enabled_from_a_state_it_was_not_in,
        "from the object's state Up",
        "from Disabled",
    ),
    (
        "VirtualMachine",
        vm_started_once_destroyed,
        "VirtualMachine: no StartRequested from Destroyed",
        "Destroyed -StartRequested-> Running",
    ),
    (
        "Host",
        host_disabled_into_down,
        "Up -Disable-> Disabled",
        "Up -Disable-> Down",
    ),
    (
        "Job",
        job_settled_twice,
        "Job: no Succeeded from succeeded",
        "succeeded -Succeeded-> succeeded",
    ),
]


@pytest.mark.parametrize(
    ("kind", "plant", "expected", "recorded"),
    [pytest.param(*p, id=p[1].__name__) for p in PLANTS],
)
def test_a_planted_illegal_step_is_reported(
    session,
    tmp_path,
    kind: str,
    plant: Callable[[Ledger, uuid.UUID], int],
    expected: str,
    recorded: str,
):
    db, ids = session
    copy = _copy(db, tmp_path)
    app = open_app(copy)
    try:
        planted = plant(app, uuid.UUID(ids[kind]))
    finally:
        app.close()
    found = json.loads(run(copy, "replay", "verify", code=3).stdout)
    assert [(d["position"], d["check"]) for d in found] == [(planted, "transition")]
    assert (found[0]["objecttype"], found[0]["objectid"]) == (kind, ids[kind])
    assert (found[0]["expected"], found[0]["recorded"]) == (expected, recorded)


def test_host_moves_stored_before_they_had_a_trigger_verify_clean(session, tmp_path):
    """A v1 `Host.StateChanged` (no trigger) is upcast with the trigger of its
    state, and today's table accepts it."""
    db, ids = session
    copy = _copy(db, tmp_path)
    app = open_app(copy)
    try:
        host = app.load(Host, uuid.UUID(ids["Host"]))
        host.set_state(Ctx.new("old"), HostState.Disabled)
        host.set_state(Ctx.new("old"), HostState.Down)
        olds = []
        for event in host.collect_events():
            stored = app.mapper.to_stored_event(event)
            state = json.loads(stored.state)
            del state["class_version"], state["trigger"]
            olds.append(
                StoredEvent(
                    stored.originator_id,
                    stored.originator_version,
                    stored.topic,
                    json.dumps(state).encode(),
                )
            )
        app.recorder.insert_events(olds)
        report = verify(app)
    finally:
        app.close()
    assert report.clean, report.divergences
    assert run(copy, "replay", "verify") == []
