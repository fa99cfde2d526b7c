"""Property: whatever operations ran, the tables caught up event by event equal the
tables rebuilt from zero (STYLE.md's "incremental == rebuilt"), on SQLite and
PostgreSQL, with the simulator agent answering through the real engine."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli import bootstrap
from ledger.aggregate import Ctx
from ledger.errors import Refused
from ledger.store.database import parse_db
from ledger.usecases import infrastructure, templates, vms, volumes
from ledger.values import Hypervisor, ImageFormat, PoolType, Scope
from ledger.verify import verify
from projections import journal_stage
from projections.projector import catch_up, rebuild
from projections.schema import TABLES
from projections.view import view_for
from tests.conftest import drop_pg_schema, fresh_pg_url
from tests.unit.test_journal_stage import child_in_process

VOLUMES = ["v0", "v1", "v2"]
ZONE, CLUSTER = "z1", "c1"

operation = st.one_of(
    st.tuples(st.just("create"), st.sampled_from(VOLUMES), st.booleans()),
    st.tuples(
        st.sampled_from(["attach", "detach", "delete", "recover", "expunge"]),
        st.sampled_from(VOLUMES),
        st.just(False),
    ),
    st.tuples(st.just("add_pool"), st.sampled_from(["p2", "p3"]), st.booleans()),
    st.tuples(st.just("add_host"), st.sampled_from(["sim2"]), st.just(False)),
)


class Session:
    """The ledger on one database, its engine, and the volumes by name."""

    def __init__(self, url: str) -> None:
        self.db = parse_db(url)
        self.ledger = bootstrap.open_ledger(url)
        self.engine = bootstrap.engine(self.ledger)
        self.volumes: dict[str, UUID] = {}

    def ctx(self) -> Ctx:
        return Ctx.new("prop")

    def drive(self, job: Any) -> None:
        if not job.settled:
            self.engine.drive(job.id, timeout=30)

    def setup(self) -> None:
        ledger = self.ledger  # a new context (and job id) for every command
        infrastructure.register_host(
            ledger, self.ctx(), "sim1", ZONE, CLUSTER, Hypervisor.Simulator
        )
        self.add_pool("p1", cluster=True)
        infrastructure.register_store(ledger, self.ctx(), "s1", ZONE, "/sim/s1")
        self.drive(
            templates.register_template(
                ledger,
                self.ctx(),
                name="t1",
                url="http://example.invalid/t1.qcow2",
                fmt=ImageFormat.QCOW2,
                zone=ZONE,
            )
        )
        self.drive(
            vms.deploy_vm(ledger, self.ctx(), name="vm1", template_ref="t1", zone=ZONE)
        )

    def add_pool(self, name: str, *, cluster: bool) -> None:
        infrastructure.register_pool(
            self.ledger,
            self.ctx(),
            name=name,
            zone=ZONE,
            path=f"/sim/{name}",
            capacity=20 << 30,
            scope=Scope.CLUSTER if cluster else Scope.ZONE,
            pool_type=PoolType.Simulator,
            cluster=CLUSTER if cluster else None,
        )

    def apply(self, op: str, name: str, flag: bool) -> None:
        ledger, ctx = self.ledger, self.ctx()
        try:
            if op == "add_pool":
                self.add_pool(name, cluster=flag)
                return
            if op == "add_host":
                infrastructure.register_host(
                    ledger, ctx, name, ZONE, CLUSTER, Hypervisor.Simulator
                )
                return
            if op == "create":
                job = volumes.create_volume(
                    ledger,
                    ctx,
                    name=name,
                    zone=ZONE,
                    size=1 << 30,
                    pool_ref="p1" if flag else None,
                    tags=[],
                )
                self.volumes[name] = job.object_id
                self.drive(job)
                return
            volume = self.volumes.get(name)
            if volume is None:
                return
            job = {
                "attach": lambda: volumes.attach_volume(ledger, ctx, volume, "vm1"),
                "detach": lambda: volumes.detach_volume(ledger, ctx, volume),
                "delete": lambda: volumes.delete_volume(ledger, ctx, volume),
                "recover": lambda: volumes.recover_volume(ledger, ctx, volume),
                "expunge": lambda: volumes.expunge_volume(ledger, ctx, volume),
            }[op]()
            self.drive(job)
        except Refused:
            pass  # an illegal step is refused and writes nothing: fine here

    def tables(self) -> dict[str, list[str]]:
        catch_up(self.ledger)
        out = {}
        with view_for(self.ledger).view_transaction(commit=False) as db:
            for table in TABLES:
                rows = db.all(f"SELECT * FROM {table.name}")
                out[table.name] = sorted(repr(sorted(r.items())) for r in rows)
        return out

    def close(self) -> None:
        self.ledger.close()


def check(url: str, ops: list[tuple[str, str, bool]]) -> None:
    session = Session(url)
    try:
        session.setup()
        for op in ops:
            session.apply(*op)
        live = session.tables()
        assert live["event_journal"], "the session recorded events"
        rebuild(session.ledger)
        rebuilt = session.tables()
        for name in live:
            assert live[name] == rebuilt[name], f"{name} differs after a rebuild"
        if session.db.kind == "sqlite":
            # the second process journaling the tail (run here, to its end)
            head = session.ledger.recorder.max_notification_id() or 0
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(journal_stage, "_spawn", child_in_process())
                rebuild(session.ledger, batch=3, stage_from=head // 2)
            staged = session.tables()
            for name in live:
                assert live[name] == staged[name], f"{name} differs, staged"
        # and today's code agrees with every step it recorded
        report = verify(session.ledger)
        assert report.clean, report.divergences
    finally:
        session.close()


SETTINGS = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@SETTINGS
@given(ops=st.lists(operation, max_size=6))
def test_sqlite_tables_equal_a_rebuild(ops):
    folder = Path(tempfile.mkdtemp(prefix="storctl-prop-"))
    try:
        check(str(folder / "ledger.db"), ops)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.postgres
@SETTINGS
@given(ops=st.lists(operation, max_size=6))
def test_postgres_tables_equal_a_rebuild(ops):
    url = fresh_pg_url()
    try:
        check(url, ops)
    finally:
        drop_pg_schema(parse_db(url))
