"""The read side: tables, journal, tracking, rebuild and crash safety on both stores.

Every test runs on a fresh SQLite file and on a fresh PostgreSQL schema (never
skipped: the PostgreSQL cases fail when the server is down).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError

from ledger.aggregate import Ctx
from ledger.app import Ledger
from ledger.commands import CreateObjectAnswer, DownloadAnswer, VolumeObjectTO
from ledger.copies import DataObjectInStore, copy_id
from ledger.errors import Ambiguous, NotFound
from ledger.host import Host
from ledger.pool import StoragePool
from ledger.snapshot import Snapshot
from ledger.usecases import answers, infrastructure, templates, vms, volumes
from ledger.values import (
    DataObjectType,
    GiB,
    HostState,
    Hypervisor,
    ImageFormat,
    PoolType,
    Scope,
    StoreRole,
    VolumeType,
)
from ledger.volume import Volume
from projections import queries as q
from projections import view as view_module
from projections.projector import catch_up, position, rebuild, status
from projections.schema import BY_NAME, INDEX_NAMES, TABLE_NAMES
from projections.view import SECURE_DELETE, reader, view_for
from tests.conftest import open_ledger

SECRET = "s3cr3t-pw"


@pytest.fixture
def app(ledger: Ledger) -> Ledger:
    """`conftest.ledger`: a new SQLite file, a new PostgreSQL schema."""
    return ledger


def ctx() -> Ctx:
    return Ctx.new("alice")


def populate(app: Ledger) -> dict[str, Any]:
    """Hosts, pools, a store, a template, volumes, a VM, a snapshot and its copy;
    the tables left empty, at position 0."""
    ids: dict[str, Any] = {}
    host = infrastructure.register_host(app, ctx(), "kvm1", "z1", "c1", Hypervisor.KVM)
    infrastructure.set_host_state(app, ctx(), "kvm1", HostState.Disabled)
    infrastructure.set_host_state(app, ctx(), "kvm1", HostState.Up)
    p1 = infrastructure.register_pool(app,
        ctx(), name="p1", zone="z1", path="/srv/p1", capacity=10 * GiB,
        scope=Scope.CLUSTER, pool_type=PoolType.Filesystem, cluster="c1",
        tags=["ssd", "fast"],
    )  # fmt: skip
    p2 = infrastructure.register_pool(app,
        ctx(), name="p2", zone="z1", path="/srv/p2", capacity=20 * GiB,
        scope=Scope.ZONE, pool_type=PoolType.Filesystem, overprovision=1.5,
    )  # fmt: skip
    store = infrastructure.register_store(app, ctx(), "s1", "z1", "/srv/s1")
    infrastructure.set_config(app, ctx(), "storage.overprovisioning.factor", "3.0")
    job = templates.register_template(app,
        ctx(), name="t1", url="https://images.example/t1.qcow2",
        fmt=ImageFormat.QCOW2, zone="z1",
    )  # fmt: skip
    template_id = job.object_id
    image_copy = app.load(DataObjectInStore, copy_id(template_id, store.id))
    assert image_copy.pending is not None
    answers.record_answer(app,
        ctx(), image_copy.id,
        DownloadAnswer(
            commandId=image_copy.pending["commandId"], result=True,
            installPath="template/tmpl/t1.qcow2", templateSize=GiB,
            templatePhySicalSize=GiB // 4, downloadStatus="DOWNLOADED", downloadPct=100,
        ),
    )  # fmt: skip
    v1_job = volumes.create_volume(
        app, ctx(), name="v1", zone="z1", size=GiB, pool_ref="p1"
    )
    v1 = app.load(Volume, v1_job.object_id)
    assert v1.pending is not None
    answers.record_answer(app,
        ctx(), v1.id,
        CreateObjectAnswer(
            commandId=v1.pending["commandId"], result=True,
            data=VolumeObjectTO(
                uuid=str(v1.id), name="v1", volumeType="DATADISK", size=GiB,
                dataStore=None, path="v1-file", format="QCOW2",
            ),
        ),
    )  # fmt: skip
    volumes.create_volume(app, ctx(), name="dup", zone="z1", size=GiB)
    volumes.create_volume(app, ctx(), name="dup", zone="z1", size=2 * GiB)
    failed = volumes.create_volume(
        app, ctx(), name="big", zone="z1", size=500 * GiB, pool_ref="p1"
    )
    vm_job = vms.deploy_vm(app, ctx(), name="vm1", template_ref="t1", zone="z1")
    # A volume placed on p1, then moved to p2 (capacity follows).
    c = ctx()
    mover = Volume.allocate(
        c, name="mover", volume_type=VolumeType.DATADISK, size=GiB, zone_id="z1"
    )
    pool1 = app.load(StoragePool, p1.id)
    pool1.reserve(c, mover, GiB, 0.85, 2.0)
    mover.change_pool(c, p1.id)
    app.save(mover, pool1)
    pool1, pool2 = app.load(StoragePool, p1.id), app.load(StoragePool, p2.id)
    pool1.release(c, mover)
    pool2.reserve(c, mover, GiB, 0.85, 1.5)
    mover.change_pool(c, p2.id)
    app.save(mover, pool1, pool2)
    # A snapshot of v1 and its copy on p1.
    snap = Snapshot.allocate(
        c, name="snap1", volume_id=v1.id, prev_snapshot_id=None, size=GiB
    )
    snap_copy = DataObjectInStore.allocate(
        c, DataObjectType.SNAPSHOT, snap.id, p1.id, StoreRole.Primary
    )
    app.save(snap, snap_copy)
    infrastructure.change_pool_status(app, ctx(), "p2", "Disable")
    ids.update(
        host=str(host.id), p1=str(p1.id), p2=str(p2.id), store=str(store.id),
        template=str(template_id), v1=str(v1.id), mover=str(mover.id),
        snap=str(snap.id), snap_copy=str(snap_copy.id), failed_job=str(failed.id),
        vm=str(vm_job.object_id), image_copy=str(image_copy.id),
    )  # fmt: skip
    # placing the VM's volume caught the tables up; the tests here project the
    # whole log from nothing
    view_for(app).reset()
    return ids


def dump(app: Ledger) -> dict[str, list[dict[str, Any]]]:
    """Every projected table, fully, in key order."""
    with reader(app) as r:
        return {
            name: r.all(f"SELECT * FROM {name} ORDER BY {', '.join(BY_NAME[name].key)}")
            for name in TABLE_NAMES
        }


def journal_count(app: Ledger) -> int:
    with reader(app) as r:
        return int(r.scalar("SELECT COUNT(*) AS n FROM event_journal"))


def notification_count(app: Ledger) -> int:
    return len(app.recorder.select_notifications(start=None, limit=1_000_000))


# ---------------------------------------------------------------- tables


def test_tables_hold_the_objects_with_cli_field_names(app: Ledger) -> None:
    ids = populate(app)
    catch_up(app)
    with reader(app) as r:
        pools = {p["name"]: p for p in q.list_pools(r)}
        assert set(pools["p1"]) == {
            "id", "name", "zoneid", "clusterid", "hostid", "scope", "type", "path",
            "state", "disksizetotal", "disksizeallocated", "disksizeused",
            "overprovisionfactor", "tags",
        }  # fmt: skip
        p1, p2 = pools["p1"], pools["p2"]
        assert (p1["id"], p1["zoneid"], p1["clusterid"], p1["scope"]) == (
            ids["p1"], "z1", "c1", "CLUSTER",
        )  # fmt: skip
        assert p1["tags"] == ["fast", "ssd"]
        assert p1["disksizetotal"] == 10 * GiB
        assert p1["disksizeallocated"] == GiB  # v1 (the mover's GiB was released)
        assert p1["overprovisionfactor"] == 3.0  # the configured factor, changed later
        assert (p2["state"], p2["overprovisionfactor"]) == ("Disabled", 1.5)
        assert p2["disksizeallocated"] == GiB  # the mover
        assert q.list_pools(r, zone="nowhere") == []

        assert q.list_hosts(r) == [
            {"id": ids["host"], "name": "kvm1", "zoneid": "z1", "clusterid": "c1",
             "hypervisor": "KVM", "state": "Up"}
        ]  # fmt: skip
        assert q.list_stores(r) == [
            {"id": ids["store"], "name": "s1", "zoneid": "z1", "providername": "NFS",
             "path": "/srv/s1", "readonly": False}
        ]  # fmt: skip
        (template,) = q.list_templates(r)
        assert template["isready"] is True
        assert (template["id"], template["format"]) == (ids["template"], "QCOW2")
        assert template["url"] == "https://images.example/t1.qcow2"

        v1 = q.find(r, "volume", "v1")
        assert v1 == q.find(r, "volume", ids["v1"])
        assert (v1["state"], v1["storage"], v1["storageid"]) == (
            "Ready",
            "p1",
            ids["p1"],
        )
        assert (v1["path"], v1["type"], v1["size"]) == ("v1-file", "DATADISK", GiB)
        mover = q.find(r, "volume", "mover")
        assert (mover["storage"], mover["state"]) == ("p2", "Allocated")
        assert (
            r.scalar("SELECT last_pool_id FROM volumes WHERE uuid = ?", [ids["mover"]])
            == ids["p1"]
        )
        assert [v["name"] for v in q.list_volumes(r, state="READY")] == ["v1"]
        assert {v["name"] for v in q.list_volumes(r, pool="p1")} == {"v1", "ROOT-vm1"}
        (root,) = q.list_volumes(r, vm="vm1")
        assert (root["type"], root["deviceid"], root["virtualmachineid"]) == (
            "ROOT", 0, ids["vm"],
        )  # fmt: skip
        with pytest.raises(Ambiguous):
            q.find(r, "volume", "dup")
        with pytest.raises(NotFound):
            q.find(r, "pool", "p9")

        (vm,) = q.list_vms(r)
        assert (vm["name"], vm["hostid"], vm["state"]) == (
            "vm1",
            ids["host"],
            "Stopped",
        )
        (snap,) = q.list_snapshots(r, volume="v1")
        assert (snap["id"], snap["state"], snap["volumeid"]) == (
            ids["snap"], "Allocated", ids["v1"],
        )  # fmt: skip

        jobs = {j["jobid"]: j for j in q.list_jobs(r)}
        assert jobs[ids["failed_job"]]["status"] == "failed"
        assert "suitable primary storage" in jobs[ids["failed_job"]]["error"]
        assert {j["status"] for j in jobs.values()} == {
            "pending",
            "succeeded",
            "failed",
        }
        assert q.find(r, "job", ids["failed_job"])["cmd"] == "volume.create"

        store_ref = r.one(
            "SELECT * FROM template_store_ref WHERE id = ?", [ids["image_copy"]]
        )
        assert store_ref is not None
        assert store_ref["state"] == "Ready"
        assert store_ref["download_state"] == "DOWNLOADED"
        assert store_ref["download_pct"] == 100
        assert (store_ref["size"], store_ref["physical_size"]) == (GiB, GiB // 4)
        spool = r.all("SELECT * FROM template_spool_ref")
        assert [(s["pool_id"], s["download_state"]) for s in spool] == [
            (ids["p1"], "DOWNLOAD_IN_PROGRESS")
        ]
        snap_ref = r.one(
            "SELECT * FROM snapshot_store_ref WHERE id = ?", [ids["snap_copy"]]
        )
        assert snap_ref is not None
        assert snap_ref["snapshot_id"] == ids["snap"]
        assert snap_ref["volume_id"] == ids["v1"]
        assert snap_ref["store_role"] == "Primary"


def test_journal_has_every_event_once_with_states_and_no_password(app: Ledger) -> None:
    ids = populate(app)
    catch_up(app)
    assert journal_count(app) == notification_count(app)
    with reader(app) as r:
        history = q.list_events(r, object_id=ids["v1"])
        assert [e["event"] for e in history] == [
            "Allocated", "AllocationDecided", "CapacityHeld", "PoolChanged",
            "CreateRequested", "CreateAnswered",
        ]  # fmt: skip
        created = history[4]
        assert (created["fromstate"], created["tostate"]) == ("Allocated", "Creating")
        assert created["details"]["command"]["data"]["size"] == GiB
        assert "CreateObjectCommand" in str(created["details"]["command"])
        assert history[5]["details"]["answer"]["result"] is True
        # the actor is who the store says appended (the OS user on SQLite, the
        # session user on PostgreSQL); the caller's claim rides beside it
        [actor] = {e["actor"] for e in history}
        assert actor != "alice"
        assert {e["details"].get("onbehalfof") for e in history} == {"alice"}
        assert history[0]["jobid"] == history[4]["jobid"]
        status_rows = q.list_events(r, event="StatusChanged")
        assert [(e["fromstate"], e["tostate"]) for e in status_rows] == [
            ("Up", "Disabled")
        ]
        host_rows = q.list_events(r, object_id=ids["host"], event="StateChanged")
        assert [(e["fromstate"], e["tostate"]) for e in host_rows] == [
            ("Up", "Disabled"), ("Disabled", "Up"),
        ]  # fmt: skip
        decided = q.list_events(r, event="AllocationDecided")
        assert decided
        assert all(e["details"]["verdicts"] for e in decided)


# ---------------------------------------------------------------- tracking


def test_catch_up_twice_writes_nothing_new(app: Ledger) -> None:
    populate(app)
    applied = catch_up(app)
    assert applied == notification_count(app) > 0
    before = dump(app)
    assert catch_up(app) == 0
    assert dump(app) == before
    infrastructure.set_host_state(app, ctx(), "kvm1", HostState.Disabled)
    assert catch_up(app) == 1
    assert journal_count(app) == applied + 1
    with reader(app) as r:
        assert q.find(r, "host", "kvm1")["state"] == "Disabled"


def test_status_shows_lag_until_caught_up(app: Ledger) -> None:
    populate(app)
    head = app.recorder.max_notification_id()
    assert status(app) == {"position": 0, "head": head, "lag": head}
    catch_up(app, batch=7, stop=10)
    assert status(app) == {"position": 10, "head": head, "lag": head - 10}
    catch_up(app, batch=7)
    assert status(app) == {"position": head, "head": head, "lag": 0}


def test_small_batches_equal_a_fresh_rebuild(app: Ledger) -> None:
    populate(app)
    catch_up(app, batch=3)
    infrastructure.change_pool_status(app, ctx(), "p2", "Enable")
    catch_up(app, batch=2)
    incremental, at = dump(app), position(app)
    assert incremental["event_journal"]
    assert incremental["volumes"]
    assert rebuild(app) == notification_count(app)
    assert position(app) == at
    assert dump(app) == incremental


def crash_at(monkeypatch: pytest.MonkeyPatch, nth: int) -> None:
    """Projection handlers that raise `RuntimeError("crash")` on the `nth` event
    applied (counted from 1), and apply every other as before."""
    real = view_module.handler
    calls = 0

    def crashing(event: object, db: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == nth:
            raise RuntimeError("crash")
        real(type(event))(event, db)

    monkeypatch.setattr(view_module, "handler", lambda kind: crashing)


def test_a_crash_midway_leaves_no_partial_batch(
    app: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    populate(app)
    first_five = app.recorder.select_notifications(start=None, limit=5)
    fifth = first_five[-1].id
    catch_up(app, stop=fifth)
    as_of_fifth = dump(app)
    view_for(app).reset()
    assert dump(app) == {name: [] for name in TABLE_NAMES}

    crash_at(monkeypatch, 8)  # the third event of the second batch
    with pytest.raises(RuntimeError, match="crash"):
        catch_up(app, batch=5)
    assert position(app) == fifth
    assert dump(app) == as_of_fifth
    monkeypatch.undo()

    catch_up(app, batch=5)
    after_crash = dump(app)
    rebuild(app)
    assert dump(app) == after_crash


def lose_a_race(app: Ledger) -> None:
    """Two writers change host kvm1 from the same version: the second save is
    refused (on PostgreSQL its ids are burnt); then the host is set Up again."""
    c = ctx()
    first, second = app.resolve(Host, "kvm1"), app.resolve(Host, "kvm1")
    first.set_state(c, HostState.Disabled)
    second.set_state(c, HostState.Down)
    app.save(first)
    with pytest.raises(IntegrityError):
        app.save(second)
    infrastructure.set_host_state(app, ctx(), "kvm1", HostState.Up)


def test_ids_with_gaps_are_followed(app: Ledger) -> None:
    """A lost race rolls back its save (PostgreSQL burns the ids): nothing is
    skipped or waited for."""
    populate(app)
    catch_up(app)
    lose_a_race(app)
    ids = [n.id for n in app.recorder.select_notifications(start=None, limit=10_000)]
    if view_for(app).dialect == "postgres":
        assert ids[-1] - ids[-2] == 2  # the rolled-back save burnt an id
    assert catch_up(app) == 2
    assert journal_count(app) == notification_count(app)
    with reader(app) as r:
        assert q.find(r, "host", "kvm1")["state"] == "Up"
    assert status(app)["lag"] == 0


def test_a_follower_that_lost_the_race_changes_nothing(app: Ledger) -> None:
    """Two followers read the same position; the second one's batch is refused whole."""
    populate(app)
    notifications = app.recorder.select_notifications(start=None, limit=10)
    late = [(n.id, app.mapper.to_domain_event(n)) for n in notifications]
    catch_up(app)
    before = dump(app)
    with pytest.raises(IntegrityError):
        view_module.apply_batch(view_for(app), late, notifications[-1].id)
    assert dump(app) == before
    assert catch_up(app) == 0


def test_details_json_redacts_passwords_and_is_canonical() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    from projections.db import iso, to_json

    text = to_json(
        {
            "url": f"https://ops:{SECRET}@h/x",
            "Password": SECRET,
            "b": [HostState.Up, uuid.UUID(int=1), object],
        }
    )
    assert SECRET not in text
    assert text.startswith('{"Password":"***","b":["Up","00000000-0000-0000-0000-')
    assert '"url":"https://ops:***@h/x"' in text
    moment = datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    assert iso(moment) == "2026-01-01T10:00:00.000000Z"
    utc = moment.replace(tzinfo=UTC)
    assert iso(utc) == "2026-01-01T12:00:00.000000Z"
    assert iso(utc.replace(microsecond=5)) == "2026-01-01T12:00:00.000005Z"


def test_journal_rows_equal_their_definition_for_every_event(app: Ledger) -> None:
    """`journal_row` (worked out per event class) writes what `_slow_row` (the
    definition: every field through `redact` and `json.dumps`) writes, for every
    event of a session with secrets, answers, enums, uuids and None in it."""
    from projections.journal import _slow_row, journal_row

    populate(app)
    notes = app.recorder.select_notifications(start=None, limit=10_000)
    events = [app.mapper.to_domain_event(n) for n in notes]
    assert len({type(e) for e in events}) > 20
    for note, event in zip(notes, events, strict=True):
        assert journal_row(note.id, event) == _slow_row(note.id, event)

    # and values of every kind the fast path picks out, and those it leaves
    class Odd:
        pass

    common = {"timestamp": events[0].timestamp, "originator_id": uuid.uuid4()}
    for values in (
        {
            "password": "hunter2", "url": f"nfs://u:{SECRET}@h/x", "flag": False,
            "n": -3, "none": None, "u": uuid.UUID(int=7), "f": 1.5,
            "nested": {"token": "x", "list": [1, "a@b", HostState.Up]},
            "state": HostState.Up,
        },
        {
            "password": None, "url": "plain", "flag": True, "n": 2**70,
            "none": "é", "u": None, "f": float("nan"), "nested": [],
            "state": "Up",
        },
    ):  # fmt: skip
        odd = Odd()
        odd.__dict__.update(common, **values)
        row = journal_row(1, odd)
        assert row == _slow_row(1, odd)
        assert SECRET not in row[-1]
        assert '"password":"***"' in row[-1]


def test_a_rebuild_keeps_the_indexes(app: Ledger) -> None:
    """A rebuild builds the secondary indexes after filling the tables: they are
    all there at the end."""
    populate(app)
    catch_up(app)
    before = dump(app)
    assert rebuild(app) == notification_count(app)
    assert dump(app) == before
    expected = {
        f"{table.name}_{'_'.join(cols)}_idx"
        for table in BY_NAME.values()
        for cols in table.indexes
    }
    with reader(app) as r:
        if r.dialect == "sqlite":
            rows = r.all("SELECT name FROM sqlite_master WHERE type = 'index'")
            names = {row["name"] for row in rows}
        else:
            rows = r.all(
                "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
            )
            names = {row["indexname"] for row in rows}
    assert expected <= names


def test_the_reader_reads_what_the_library_reads(app: Ledger) -> None:
    """`selector` (its own query on SQLite) returns the library's notifications:
    same positions, ids, versions, topics and bytes, and `stop` honoured."""
    from ledger.store.reader import selector

    populate(app)
    select = selector(app)
    fields = ("id", "originator_id", "originator_version", "topic", "state")
    for after, limit, stop in [(0, 10_000, None), (5, 7, None), (5, 7, 9), (9, 3, 9)]:
        ours = select(after, limit, stop)
        theirs = app.recorder.select_notifications(
            start=after, limit=limit, stop=stop, inclusive_of_start=False
        )
        assert [[getattr(n, f) for f in fields] for n in ours] == [
            [getattr(n, f) for f in fields] for n in theirs
        ]
        assert all(isinstance(n.originator_id, uuid.UUID) for n in ours)
    assert len(select(0, 10_000, None)) == notification_count(app)


def test_the_reader_stops_where_asked_across_gaps(app: Ledger) -> None:
    """With burnt ids (PostgreSQL) a batch that ends at a stop holds every
    notification up to it and none after, whatever the limit, as the library's
    does: the reader sends only the lower bound to the server and cuts there."""
    from ledger.store.reader import selector

    populate(app)
    lose_a_race(app)
    lose_a_race(app)
    ids = [n.id for n in app.recorder.select_notifications(start=None, limit=10_000)]
    gaps = [i for i in range(ids[0], ids[-1]) if i not in ids]
    if view_for(app).dialect == "postgres":
        assert len(gaps) == 2
    select = selector(app)
    near = sorted({0, *ids[-6:], *gaps, ids[-1] + 1})
    for after in near:
        for stop in (s for s in near if s >= after):
            for limit in (1, 2, 3, 100):
                ours = [n.id for n in select(after, limit, stop)]
                theirs = [
                    n.id
                    for n in app.recorder.select_notifications(
                        start=after, limit=limit, stop=stop, inclusive_of_start=False
                    )
                ]
                assert ours == theirs, (after, stop, limit)


def assert_progress(seen: list[float], head: int, batch: int) -> None:
    """What a rebuild of `head` events by `batch` reports: each batch's share of
    the log, rising, held at 99 % until the indexes are built, then 100 %."""
    batches = -(-head // batch)
    expected = [min(min(n * batch, head) / head, 0.99) for n in range(1, batches + 1)]
    assert seen == pytest.approx([*expected, 1.0])


def test_a_rebuild_reports_its_progress(app: Ledger) -> None:
    populate(app)
    head = notification_count(app)
    seen: list[float] = []
    assert rebuild(app, batch=7, on_progress=seen.append) == head
    assert_progress(seen, head, 7)


def test_a_sqlite_reset_drops_with_secure_delete_fast_then_puts_it_back(
    tmp_path: Path,
) -> None:
    """The drop runs with `secure_delete=FAST` (zeroing a million events' freed
    pages cost 1.8 s of a rebuild); the pooled connection gets its setting back."""
    app = open_ledger(str(tmp_path / "ledger.db"))
    try:
        populate(app)
        catch_up(app)
        view = view_for(app)
        with view.datastore.transaction(commit=False) as cursor:
            connection = cursor.sqlite_cursor.connection
            cursor.execute("PRAGMA secure_delete")
            before = cursor.fetchone()[0]
        statements: list[str] = []
        connection.set_trace_callback(statements.append)
        try:
            view.reset()
            with view.datastore.transaction(commit=False) as cursor:
                assert cursor.sqlite_cursor.connection is connection
                cursor.execute("PRAGMA secure_delete")
                assert cursor.fetchone()[0] == before
        finally:
            connection.set_trace_callback(None)
        drops = [i for i, sql in enumerate(statements) if sql.startswith("DROP TABLE")]
        fast = statements.index("PRAGMA secure_delete=FAST")
        back = statements.index(f"PRAGMA secure_delete={SECURE_DELETE[before]}")
        assert drops
        assert fast < drops[0]
        assert drops[-1] < back
    finally:
        app.close()


def test_indexes_left_out_by_a_killed_rebuild_come_back(app: Ledger) -> None:
    """A rebuild killed before building its indexes left the tables without them;
    the next process (which skips the DDL when the tables exist) builds them."""
    populate(app)
    view_for(app).reset(indexes=False)  # what a rebuild killed midway leaves
    assert view_for(app).missing_indexes() == set(INDEX_NAMES)
    later = Ledger(env={**app.env, "CREATE_TABLE": "n"})
    try:
        assert view_for(later).missing_indexes() == set()
        assert catch_up(later) == notification_count(later)
    finally:
        later.close()
