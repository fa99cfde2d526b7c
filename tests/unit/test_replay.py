"""Time travel, export/import and replay verification on a real simulator session."""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import subprocess
import sys
import uuid
from functools import partial
from pathlib import Path

import pytest
from eventsourcing.persistence import IntegrityError

from ledger.aggregate import Ctx
from ledger.app import Ledger
from ledger.pool import StoragePool
from ledger.store.database import parse_db
from ledger.usecases import infrastructure
from ledger.values import GiB, Hypervisor, PoolType, Scope, VolumeState
from ledger.volume import Volume
from projections import log_copy
from projections import replay as replay_module
from projections.projector import rebuild
from projections.replay import (
    FOLLOWERS,
    copy_events,
    notifications,
    replay_into,
    replay_to_file,
)
from projections.schema import INDEX_NAMES, TABLES
from projections.view import APPLICATION_NAME, reader, view_for
from tests.conftest import drop_pg_schema, fresh_pg_url, open_ledger

from .test_audit import run, simulator_session


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("replay")
    return simulator_session(str(tmp / "ledger.db"), tmp)


def head(db: str) -> int:
    app = Ledger(env=parse_db(db).env)
    try:
        return app.recorder.max_notification_id() or 0
    finally:
        app.close()


def attach_request(db: str) -> dict:
    """The first event of data1's attach job (the job's submission)."""
    jobs = [j for j in run(db, "job", "list") if j["cmd"] == "volume.attach"]
    rows = run(db, "audit", "--job", jobs[0]["jobid"])
    return rows[0]


class TestReplayUntil:
    def test_before_the_attach_the_volume_was_allocated(self, session, tmp_path):
        before = attach_request(session)["position"] - 1
        into = str(tmp_path / "then.db")
        out = run(session, "replay", "--until", str(before), "--into", into)
        assert out["until"] == before
        assert out["events"] == before
        then = run(into, "volume", "show", "data1")
        now = run(session, "volume", "show", "data1")
        assert then["state"] == "Allocated"
        assert then["storageid"] is None
        assert now["state"] == "Ready"
        assert now["storage"] == "p1"
        # and the pool had not yet reserved data1's gigabyte
        pool_then = run(into, "pool", "show", "p1")["disksizeallocated"]
        pool_now = run(session, "pool", "show", "p1")["disksizeallocated"]
        assert pool_now == pool_then + (1 << 30)

    def test_a_time_works_like_a_position(self, session, tmp_path):
        request = attach_request(session)
        rows = run(session, "audit")
        earlier = [r for r in rows if r["position"] < request["position"]]
        into = str(tmp_path / "then.db")
        out = run(
            session, "replay", "--until", earlier[-1]["timestamp"], "--into", into
        )
        assert out["until"] == earlier[-1]["position"]
        assert run(into, "volume", "show", "data1")["state"] == "Allocated"

    def test_the_replayed_file_has_the_same_stored_events(self, session, tmp_path):
        into = str(tmp_path / "all.db")
        run(session, "replay", "--until", str(head(session)), "--into", into)
        assert run(into, "volume", "list") == run(session, "volume", "list")
        assert run(into, "replay", "verify") == []

    def test_an_existing_file_is_refused(self, session, tmp_path):
        into = tmp_path / "there.db"
        into.write_text("")
        result = run(session, "replay", "--until", "3", "--into", str(into), code=2)
        assert "already exists" in result.stderr
        assert into.read_text() == ""

    @pytest.mark.parametrize("until", ["12x", "-1", "2025-13-45", "999999"])
    def test_a_malformed_or_unreachable_position_is_refused(
        self, session, tmp_path, until
    ):
        into = tmp_path / "never.db"
        result = run(session, "replay", "--until", until, "--into", str(into), code=2)
        assert "--until" in result.stderr
        assert not into.exists()


class TestExportImport:
    def test_an_import_lists_the_same_volumes_in_the_same_states(
        self, session, tmp_path
    ):
        exported = run(session, "export", output="csv").stdout
        lines = exported.splitlines()
        assert len(lines) == head(session)
        first = json.loads(lines[0])
        assert set(first) == {
            "position",
            "originator_id",
            "originator_version",
            "topic",
            "timestamp",
            "state",
            "content_hash",
            "stream_hash",
            "log_hash",
        }
        source = tmp_path / "incident.jsonl"
        source.write_text(exported)
        target = str(tmp_path / "copy.db")
        assert run(target, "import", str(source))["events"] == len(lines)
        assert run(target, "ledger", "verify")["events"] == len(lines)
        # a file whose chain breaks is refused, nothing written
        forged = [json.loads(line) for line in lines]
        forged[3]["state"]["actor"] = "mallory"
        bad = tmp_path / "forged.jsonl"
        bad.write_text("\n".join(json.dumps(r) for r in forged))
        other = str(tmp_path / "other.db")
        refused = run(other, "import", str(bad), code=2)
        assert "line 4: hash chain breaks: content_hash" in refused.stderr
        assert not Path(other).exists() or run(other, "ledger", "verify")["events"] == 0
        live = [
            (v["id"], v["name"], v["state"]) for v in run(session, "volume", "list")
        ]
        copy = [(v["id"], v["name"], v["state"]) for v in run(target, "volume", "list")]
        assert copy == live
        assert run(target, "replay", "verify") == []

    def test_job_export_with_history_imports(self, session, tmp_path):
        jobs = [j for j in run(session, "job", "list") if j["cmd"] == "volume.attach"]
        job = jobs[0]["jobid"]
        only = run(session, "export", "--job", job, output="csv").stdout.splitlines()
        assert {json.loads(line)["state"]["job_id"] for line in only} == {job}
        whole = run(session, "export", "--job", job, "--with-history", output="csv")
        source = tmp_path / "job.jsonl"
        source.write_text(whole.stdout)
        target = str(tmp_path / "job.db")
        run(target, "import", str(source))
        assert run(target, "volume", "show", "data1")["state"] == "Ready"

    @pytest.mark.parametrize(
        ("breakage", "why"),
        [
            ("not json", "not JSON"),
            ("topic", "unknown topic"),
            ("order", "does not follow"),
            ("version", "version"),
        ],
    )
    def test_one_broken_line_refuses_the_whole_file(
        self, session, tmp_path, breakage, why
    ):
        lines = run(session, "export", output="csv").stdout.splitlines()
        broken = 7  # 1-based line number
        record = json.loads(lines[broken - 1])
        if breakage == "not json":
            lines[broken - 1] = lines[broken - 1][:-5]
        elif breakage == "topic":
            record["topic"] = "storctl.Volume.NoSuchEvent"
            lines[broken - 1] = json.dumps(record)
        elif breakage == "order":
            record["position"] = 1
            lines[broken - 1] = json.dumps(record)
        else:
            record["originator_version"] += 5
            lines[broken - 1] = json.dumps(record)
        source = tmp_path / "broken.jsonl"
        source.write_text("\n".join(lines) + "\n")
        target = str(tmp_path / "target.db")
        result = run(target, "import", str(source), code=2)
        assert f"line {broken}" in result.stderr
        assert why in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert head(target) == 0
        assert run(target, "volume", "list") == []

    def test_a_database_with_events_is_refused(self, session, tmp_path):
        source = tmp_path / "all.jsonl"
        source.write_text(run(session, "export", output="csv").stdout)
        before = head(session)
        result = run(session, "import", str(source), code=2)
        assert "already holds events" in result.stderr
        assert head(session) == before


def volume_id(db: str) -> uuid.UUID:
    return uuid.UUID(run(db, "volume", "show", "data1")["id"])


def _copy(session: str, tmp_path) -> str:
    """A copy of the session's database with what is still in its WAL file (a
    copy of the main file alone lacked it whenever a connection was still open)."""
    copy = str(tmp_path / "planted.db")
    with sqlite3.connect(session) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    source.close()
    target.close()
    return copy


class TestVerify:
    def test_a_real_session_is_clean(self, session):
        result = run(session, "replay", "verify", output="csv")
        assert result.stdout.splitlines()[1:] == []
        assert "0 divergences" in result.stderr

    def test_a_planted_illegal_transition_is_reported(self, session, tmp_path):
        copy = _copy(session, tmp_path)
        app = Ledger(env=parse_db(copy).env)
        try:
            volume = app.load(Volume, volume_id(copy))
            assert volume.state is VolumeState.Ready
            # Ready -ExpungingRequested-> Expunged: no such row in CloudStack's table
            volume.trigger_event(
                Volume.ExpungeRequested,
                **Ctx.new("mallory").fields(),
                command=None,
                trigger="ExpungingRequested",
                from_state=VolumeState.Ready,
                to_state=VolumeState.Expunged,
            )
            app.save(volume)
            planted = app.recorder.max_notification_id()
        finally:
            app.close()
        result = run(copy, "replay", "verify", code=3)
        found = json.loads(result.stdout)
        assert [(d["position"], d["check"]) for d in found] == [(planted, "transition")]
        assert "ExpungingRequested" in found[0]["expected"]
        assert found[0]["objecttype"] == "Volume"

    def test_a_planted_workflow_step_is_reported(self, session, tmp_path):
        copy = _copy(session, tmp_path)
        answered = run(copy, "audit", "--object", "data1", "--event", "AttachAnswered")
        app = Ledger(env=parse_db(copy).env)
        try:
            volume = app.load(Volume, volume_id(copy))
            version = sum(
                1 for r in run(copy, "history", "volume", "data1")
                if r["position"] <= answered[0]["position"]
            )  # fmt: skip
            cause = f"{volume.id}/{version}"
            ctx = Ctx("mallory", str(uuid.uuid4()), cause)
            volume.destroy(ctx)  # caused by the answer, decided by no workflow
            app.save(volume)
            planted = app.recorder.max_notification_id()
        finally:
            app.close()
        found = json.loads(run(copy, "replay", "verify", code=3).stdout)
        assert [(d["position"], d["check"]) for d in found] == [(planted, "workflow")]
        assert "DestroyRequested" in found[0]["recorded"]


# ---------------------------------------------------------------- big copies


class Holder:
    """What reserves on a pool (`ledger.pool.CapacityHolder`), kept in memory: the
    log needs the pool's events, not a volume's."""

    def __init__(self) -> None:
        self.id = uuid.uuid4()
        self.holds: dict[str, int] = {}

    def held_on(self, pool_id: uuid.UUID) -> int | None:
        return self.holds.get(str(pool_id))

    def record_hold(self, ctx: Ctx, pool_id: uuid.UUID, size: int) -> None:
        self.holds[str(pool_id)] = size

    def record_release(self, ctx: Ctx, pool_id: uuid.UUID) -> None:
        self.holds.pop(str(pool_id), None)


def pool_ledger(url: str, actor: str) -> tuple[Ledger, Ctx, StoragePool]:
    """A ledger on `url` with one simulator host and one unbounded pool."""
    app = open_ledger(url)
    ctx = Ctx.new(actor)
    infrastructure.register_host(app, ctx, "sim1", "z1", "c1", Hypervisor.Simulator)
    pool = app.load(
        StoragePool,
        infrastructure.register_pool(app,
            ctx, name="p1", zone="z1", path="/sim/p1", capacity=1 << 60,
            scope=Scope.CLUSTER, pool_type=PoolType.Simulator, cluster="c1",
            overprovision=1.0,
        ).id,
    )  # fmt: skip
    return app, ctx, pool


def reservations(path: str, pairs: int) -> tuple[Ledger, int]:
    """A SQLite ledger with a pool and `pairs` reservations, each released but
    the last: about 2 * `pairs` events, written in one save (quick)."""
    app, ctx, pool = pool_ledger(path, "bench")
    for i in range(pairs):
        holder = Holder()
        pool.reserve(ctx, holder, GiB, 0.99, 1.0)
        if i < pairs - 1:
            pool.release(ctx, holder)
    app.save(pool)
    return app, app.recorder.max_notification_id() or 0


def tables(app: Ledger) -> dict[str, list[str]]:
    with view_for(app).view_transaction(commit=False) as db:
        return {
            t.name: sorted(
                repr(sorted(r.items())) for r in db.all(f"SELECT * FROM {t.name}")
            )
            for t in TABLES
        }


def test_a_long_prefix_is_copied_whole_with_its_tables(db_url, tmp_path):
    """25,000 events (one `insert_events` call of that size hung on PostgreSQL):
    copied by chunks in one transaction, tables projected as they go in, every
    follower at the head, and the tables those of a rebuild."""
    source, last = reservations(str(tmp_path / "source.db"), 12_500)
    target = open_ledger(db_url)
    try:
        assert replay_into(source, target, last) == last > 25_000
        assert target.recorder.max_notification_id() == last
        for name in (*FOLLOWERS, APPLICATION_NAME):
            assert target.recorder.max_tracking_id(name) == last, name
        copied = tables(target)
        assert len(copied["event_journal"]) == last
        with reader(target) as r:
            pool = r.one("SELECT allocated_bytes FROM storage_pool")
        assert pool == {"allocated_bytes": GiB}
        with reader(target) as r:  # dropped during the copy, built at its end
            if r.dialect == "sqlite":
                rows = r.all("SELECT name FROM sqlite_master WHERE type = 'index'")
            else:
                rows = r.all(
                    "SELECT indexname AS name FROM pg_indexes"
                    " WHERE schemaname = current_schema()"
                )
        assert set(INDEX_NAMES) <= {row["name"] for row in rows}
        rebuild(target)
        assert tables(target) == copied
    finally:
        target.close()
        source.close()


def assert_empty(target: Ledger) -> None:
    """No event, no follower row, every table empty: a copy left nothing."""
    assert not target.recorder.max_notification_id()
    for name in (*FOLLOWERS, APPLICATION_NAME):
        assert not target.recorder.max_tracking_id(name), name
    assert all(rows == [] for rows in tables(target).values())


def assert_empty_file(path: Path) -> None:
    target = open_ledger(str(path))
    try:
        assert_empty(target)
    finally:
        target.close()


def decoder_failing_at(nth: int):
    """A `decoder` factory whose decode raises at the `nth` event."""
    real = replay_module.decoder

    def failing(app):
        decode = real(app)
        seen = [0]

        def once_too_many(note):
            seen[0] += 1
            if seen[0] == nth:
                raise RuntimeError("killed")
            return decode(note)

        return once_too_many

    return failing


def test_a_copy_that_fails_midway_leaves_nothing(db_url, tmp_path, monkeypatch):
    """A duplicate event in a later chunk: the chunks before it, their tables and
    the followers' rows all go (a prefix is consistent, or absent)."""
    monkeypatch.setattr(replay_module, "CHUNK", 10)
    source, last = reservations(str(tmp_path / "source.db"), 20)
    notes = list(notifications(source))
    source.close()
    target = open_ledger(db_url)
    try:
        with pytest.raises(IntegrityError):
            copy_events(target, [*notes[:25], notes[3], *notes[25:]])
        assert_empty(target)
        # and the same events go in afterwards (PostgreSQL burnt the failed ids)
        assert copy_events(target, notes) == target.recorder.max_notification_id()
        assert len(tables(target)["event_journal"]) == len(notes) == last
    finally:
        target.close()


# ------------------------------------------- copies inside the database (SQL)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def same_store(request, tmp_path):
    """A source and a target URL on one store: two SQLite files (the source is
    attached), two schemas of one PostgreSQL database (read across schemas)."""
    if request.param == "sqlite":
        yield str(tmp_path / "source.db"), str(tmp_path / "target.db")
        return
    urls = fresh_pg_url(), fresh_pg_url()
    yield urls
    for url in urls:
        drop_pg_schema(parse_db(url))


def reservations_at(url: str, pairs: int, gap: bool = False) -> Ledger:
    """`reservations` on `url`; with `gap`, a burnt PostgreSQL id mid-log (as a
    rolled-back insert leaves)."""
    app, ctx, pool = pool_ledger(url, "test")
    for half in range(2):
        for i in range(pairs // 2):
            holder = Holder()
            pool.reserve(ctx, holder, GiB, 0.99, 1.0)
            if half == 0 or i < pairs // 2 - 1:
                pool.release(ctx, holder)
        app.save(pool)
        if gap and half == 0:
            store = app.recorder.datastore  # type: ignore[attr-defined]
            with store.transaction(commit=True) as cursor:
                cursor.execute(
                    "SELECT nextval(pg_get_serial_sequence(%s, 'notification_id'))",
                    (f'"{store.schema}"."{app.recorder.events_table_name}"',),
                )
    return app


def positions(app: Ledger) -> list[int]:
    return [n.id for n in notifications(app)]


def test_a_copy_inside_the_database_keeps_positions_and_equals_a_rebuild(
    same_store, monkeypatch
):
    """The SQL path (rows copied by the database, chunk by chunk, while the
    chunks are projected): the positions of the source, followers at the head,
    tables those of a rebuild, and the target writable after it."""
    monkeypatch.setattr(replay_module, "CHUNK", 300)  # several chunks in flight
    source_url, target_url = same_store
    postgres = source_url.startswith("postgres")
    source = reservations_at(source_url, 2_000, gap=postgres)
    target = open_ledger(target_url)
    try:
        wanted = positions(source)
        if postgres:
            assert wanted != list(range(1, len(wanted) + 1))  # the gap is there
        stop = wanted[-3]
        assert replay_into(source, target, stop) == len(wanted) - 2
        assert positions(target) == wanted[:-2]
        for name in (*FOLLOWERS, APPLICATION_NAME):
            assert target.recorder.max_tracking_id(name) == stop, name
        copied = tables(target)
        assert len(copied["event_journal"]) == len(wanted) - 2
        rebuild(target)
        assert tables(target) == copied
        # the next event goes after the copied ones (PostgreSQL's sequence moved)
        infrastructure.register_host(
            target, Ctx.new("test"), "sim2", "z1", "c1", Hypervisor.Simulator
        )
        assert target.recorder.max_notification_id() > stop
    finally:
        target.close()
        source.close()


def test_a_copy_inside_the_database_that_fails_midway_leaves_nothing(
    same_store, monkeypatch
):
    """A failure while chunks are being copied by the database: the copied
    rows, the tables and the followers' rows all go, and the source is no
    longer attached to any of the target's connections."""
    monkeypatch.setattr(replay_module, "CHUNK", 100)
    source_url, target_url = same_store
    source = reservations_at(source_url, 400)
    target = open_ledger(target_url)
    try:
        last = source.recorder.max_notification_id()
        real = replay_module.decoder
        monkeypatch.setattr(replay_module, "decoder", decoder_failing_at(450))
        with pytest.raises(RuntimeError, match="killed"):
            replay_into(source, target, last)
        assert_empty(target)
        if target_url.endswith(".db"):
            with target.recorder.datastore.transaction(commit=False) as cursor:
                cursor.execute("PRAGMA database_list")
                assert [row[1] for row in cursor.fetchall()] == ["main"]
        monkeypatch.setattr(replay_module, "decoder", real)
        assert replay_into(source, target, last) == len(positions(source))
        assert len(tables(target)["event_journal"]) == len(positions(source))
    finally:
        target.close()
        source.close()


# ------------------------------- a new file, copied on a connection of its own


def journal_mode(path: Path) -> str:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])


@pytest.fixture
def modes(monkeypatch) -> list[str]:
    """The target's journal mode inside each copy transaction on a connection
    of its own."""
    seen: list[str] = []
    real_alone = log_copy.alone

    @contextlib.contextmanager
    def watched(*args):
        with real_alone(*args) as cursor:
            seen.append(cursor.execute("PRAGMA main.journal_mode").fetchone()[0])
            yield cursor

    monkeypatch.setattr(log_copy, "alone", watched)
    return seen


def test_a_new_file_is_copied_alone_and_equals_a_rebuild(
    db_url, tmp_path, monkeypatch, modes
):
    """`replay_to_file` (what `storctl replay` runs): the copy's one transaction
    is in rollback-journal mode, the file is in WAL mode after it with no journal
    left, and holds the source's positions, the followers at the stop, the tables
    of a rebuild; the engine can write to it."""
    monkeypatch.setattr(replay_module, "CHUNK", 300)  # several chunks in flight
    # the source: a SQLite file (attached to the copy) or a PostgreSQL schema
    # (its events inserted by the copy)
    source = reservations_at(db_url, 2_000)
    path = tmp_path / "target.db"
    try:
        wanted = positions(source)
        stop = wanted[-3]
        copied = replay_to_file(source, partial(open_ledger, str(path)), stop)
    finally:
        source.close()
    assert copied == len(wanted) - 2
    assert modes == ["delete"]
    assert journal_mode(path) == "wal"
    assert not Path(f"{path}-journal").exists()
    target = open_ledger(str(path))
    try:
        assert positions(target) == wanted[:-2]
        for name in (*FOLLOWERS, APPLICATION_NAME):
            assert target.recorder.max_tracking_id(name) == stop, name
        copied_tables = tables(target)
        assert len(copied_tables["event_journal"]) == copied
        rebuild(target)
        assert tables(target) == copied_tables
        infrastructure.register_host(
            target, Ctx.new("test"), "sim2", "z1", "c1", Hypervisor.Simulator
        )
        assert target.recorder.max_notification_id() > stop
    finally:
        target.close()


def test_a_new_file_whose_copy_fails_midway_holds_nothing(tmp_path, monkeypatch):
    """An error after several chunks: the file opens as a ledger with no event,
    no follower row and empty tables, in WAL mode, with no journal left."""
    monkeypatch.setattr(replay_module, "CHUNK", 100)
    source = reservations_at(str(tmp_path / "source.db"), 400)
    path = tmp_path / "target.db"
    monkeypatch.setattr(replay_module, "decoder", decoder_failing_at(450))
    try:
        last = source.recorder.max_notification_id()
        with pytest.raises(RuntimeError, match="killed"):
            replay_to_file(source, partial(open_ledger, str(path)), last)
    finally:
        source.close()
    assert journal_mode(path) == "wal"
    assert not Path(f"{path}-journal").exists()
    assert_empty_file(path)


KILLED_MIDWAY = """
import os, signal, sys
from ledger.app import Ledger
from ledger.store.database import parse_db
from projections import replay

replay.CHUNK = 500
real = replay.decoder

def dying(app):
    decode, seen = real(app), [0]
    def decode_then_die(note):
        seen[0] += 1
        if seen[0] == 9_000:
            os.kill(os.getpid(), signal.SIGKILL)
        return decode(note)
    return decode_then_die

replay.decoder = dying
source = Ledger(env=parse_db(sys.argv[1]).env)
stop = source.recorder.max_notification_id()
replay.replay_to_file(source, lambda: Ledger(env=parse_db(sys.argv[2]).env), stop)
"""


def test_a_new_file_whose_copy_is_killed_opens_empty(tmp_path):
    """The process killed outright, its transaction's pages partly in the file:
    the journal it leaves is rolled back by the next open (an empty ledger),
    never read as a part of a copy."""
    source = reservations_at(str(tmp_path / "source.db"), 5_000)  # > 2 MB cache
    source.close()
    path = tmp_path / "target.db"
    child = subprocess.run(
        [sys.executable, "-c", KILLED_MIDWAY, str(tmp_path / "source.db"), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert Path(f"{path}-journal").exists()  # a hot journal, not a clean file
    assert_empty_file(path)
    assert not Path(f"{path}-journal").exists()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_new_file_another_has_open_is_copied_in_wal_mode(tmp_path, modes):
    """Out of WAL is refused while another connection has the file open: the
    copy then runs in WAL mode, at once and whole, rather than failing."""
    source = reservations_at(str(tmp_path / "source.db"), 200)
    path = tmp_path / "target.db"
    other: list[sqlite3.Connection] = []

    def open_and_hold():
        target = open_ledger(str(path))
        other.append(sqlite3.connect(path))
        other[0].execute("SELECT count(*) FROM sqlite_master").fetchone()
        return target

    try:
        last = source.recorder.max_notification_id()
        assert replay_to_file(source, open_and_hold, last) == len(positions(source))
    finally:
        source.close()
        for conn in other:
            conn.close()
    assert modes == ["wal"]
    target = open_ledger(str(path))
    try:
        assert len(tables(target)["event_journal"]) == last
    finally:
        target.close()


def test_a_new_file_copy_reports_its_progress(tmp_path, monkeypatch):
    """Every chunk read, the share of the way to the stop; 100 % once committed."""
    monkeypatch.setattr(replay_module, "CHUNK", 300)
    source = reservations_at(str(tmp_path / "source.db"), 1_000)
    seen: list[float] = []
    try:
        stop = positions(source)[-5]
        replay_to_file(
            source,
            partial(open_ledger, str(tmp_path / "target.db")),
            stop,
            on_progress=seen.append,
        )
    finally:
        source.close()
    chunks = [n * 300 / stop for n in range(1, stop // 300 + 1)]
    assert seen == pytest.approx([*chunks, 1.0])
