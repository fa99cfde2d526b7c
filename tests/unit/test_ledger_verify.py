"""`storctl ledger verify` on SQLite and PostgreSQL: every append sealed, and each
kind of hand edit (raw SQL on the events table) named at exactly its first event."""

from __future__ import annotations

import json

import psycopg
import pytest
from click.testing import CliRunner

from cli.main import cli
from ledger.aggregate import Ctx
from ledger.hashchain import Break, Walked
from ledger.store.chain_reads import walk
from ledger.store.database import parse_db, pg_connect_args
from ledger.usecases import infrastructure
from ledger.values import Hypervisor
from tests.conftest import open_ledger
from tests.tamper import Forger


def history(url: str) -> int:
    """Hosts and configuration changes: several objects, some with many
    versions, interleaved in the log. Returns how many events."""
    ledger = open_ledger(url)
    try:
        for k in range(3):
            infrastructure.register_host(
                ledger, Ctx.new("t"), f"h{k}", "z1", "c1", Hypervisor.Simulator
            )
            infrastructure.set_config(
                ledger, Ctx.new("t"), "storage.overprovisioning.factor", str(k + 2)
            )
        return int(ledger.recorder.max_notification_id() or 0)
    finally:
        ledger.close()


def verify(url: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        cli, ["--db", url, "-o", "json", "ledger", "verify", *args]
    )
    return result.exit_code, result.stdout, result.stderr


def walked(url: str) -> Break | Walked:
    ledger = open_ledger(url)
    try:
        return walk(ledger.recorder)
    finally:
        ledger.close()


def test_an_untouched_ledger_verifies_with_its_count_and_head(db_url):
    count = history(db_url)
    code, out, err = verify(db_url)
    assert code == 0, err
    shown = json.loads(out)
    assert shown["events"] == count > 6
    assert len(bytes.fromhex(shown["head"])) == 32
    assert f"verified {count} events" in err
    # the head is an anchor: still there after more appends
    history_more = open_ledger(db_url)
    infrastructure.set_config(
        history_more, Ctx.new("t"), "storage.overprovisioning.factor", "9"
    )
    history_more.close()
    assert verify(db_url, "--head", shown["head"])[0] == 0
    code, _, err = verify(db_url, "--head", "00" * 32)
    assert code == 3
    assert "is not in the chain" in err


def test_a_bad_head_is_refused_with_exit_2(db_url):
    history(db_url)
    code, _, err = verify(db_url, "--head", "xyz")
    assert code == 2
    assert "64 hex digits" in err


@pytest.mark.parametrize(
    ("tamper", "named", "words"),
    [
        (lambda f, ps: f.edit(ps[3]), 3, "edited"),
        (lambda f, ps: f.delete(ps[2]), 2, "deleted"),
        (lambda f, ps: f.swap(ps[1], ps[4]), 1, "reordered"),
        (lambda f, ps: f.insert(ps[2]), -1, "inserted by hand"),
        (lambda f, ps: f.delete(ps[2], with_hash=True), 3, "broken"),
    ],
    ids=["edit", "delete", "swap", "insert", "delete-with-its-hash"],
)
def test_each_hand_edit_is_named_at_its_first_event(db_url, tamper, named, words):
    history(db_url)
    forger = Forger(db_url)
    before = forger.positions()
    made = tamper(forger, before)
    expected = made if named == -1 else before[named]
    code, out, err = verify(db_url)
    assert code == 3, (out, err)
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"storctl: ledger tampered: notification {expected} ")
    assert words in lines[0]
    result = walked(db_url)
    assert isinstance(result, Break)
    assert result.notification_id == expected


def test_an_edit_names_the_object_and_version(db_url):
    history(db_url)
    forger = Forger(db_url)
    target = forger.positions()[5]
    forger.edit(target)
    result = walked(db_url)
    assert isinstance(result, Break)
    assert result.notification_id == target
    assert f"object {result.originator_id[:8]}" in result.line().replace("-", "")


def test_a_ledger_from_before_the_chain_is_sealed_on_first_open(db_url):
    count = history(db_url)
    db = parse_db(db_url)
    if db.kind == "postgres":
        with psycopg.connect(**pg_connect_args(db), autocommit=True) as conn:
            conn.execute(f'DROP TABLE "{db.schema}".storctl_events_hashes')
    else:
        import sqlite3

        assert db.path is not None
        with sqlite3.connect(db.path) as conn:
            conn.execute("DROP TABLE stored_events_hashes")
    result = walked(db_url)
    assert isinstance(result, Walked)
    assert result.count == count


@pytest.mark.postgres
def test_postgres_refuses_update_and_delete_of_stored_events_even_to_its_owner():
    from tests.conftest import drop_pg_schema, fresh_pg_url

    url = fresh_pg_url()
    try:
        history(url)
        db = parse_db(url)
        for table in ("storctl_events", "storctl_events_hashes"):
            for sql in (
                f'UPDATE "{db.schema}".{table} SET originator_version = 99',
                f'DELETE FROM "{db.schema}".{table}',
                f'TRUNCATE "{db.schema}".{table}',
            ):
                with (
                    psycopg.connect(**pg_connect_args(db)) as conn,
                    pytest.raises(
                        psycopg.errors.InsufficientPrivilege, match="append-only"
                    ),
                ):
                    conn.execute(sql)
        assert isinstance(walked(url), Walked)
    finally:
        drop_pg_schema(parse_db(url))
