"""`storctl admin roles` on PostgreSQL: the server, not storctl, decides who may
write, and says who appended. Role names carry a per-run prefix (roles are
cluster-wide; the server is shared), dropped afterwards with the schema."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from click.testing import CliRunner

from cli.main import cli
from ledger.store.database import parse_db, pg_connect_args
from tests.conftest import drop_pg_schema, fresh_pg_url

pytestmark = pytest.mark.postgres


def run(url: str, *args: str, code: int = 0) -> object:
    result = CliRunner().invoke(cli, ["--db", url, "-o", "json", *args])
    assert result.exit_code == code, (result.stdout, result.stderr)
    return json.loads(result.stdout) if code == 0 and result.stdout.strip() else result


@pytest.fixture
def roles() -> Iterator[dict[str, str]]:
    owner = fresh_pg_url()
    prefix = f"t{uuid.uuid4().hex[:8]}_"
    run(owner, "host", "add", "kvm-01", "--zone", "z1", "--cluster", "c1")
    made = run(owner, "admin", "roles", "--prefix", prefix)
    assert isinstance(made, dict)
    schema = parse_db(owner).schema
    as_role = {
        role: owner.replace("postgres@", f"{made[role]}@", 1)
        for role in ("operator", "auditor")
    }
    try:
        yield {"owner": owner, "schema": str(schema), **as_role}
    finally:
        run(owner, "admin", "roles", "--prefix", prefix, "--drop")
        drop_pg_schema(parse_db(owner))


def count(url: str) -> int:
    db = parse_db(url)
    with psycopg.connect(**pg_connect_args(db)) as conn:
        row = conn.execute(
            f'SELECT count(*) FROM "{db.schema}".storctl_events'
        ).fetchone()
        assert row is not None
        return int(row[0])


def test_the_auditor_reads_and_every_write_is_refused_by_the_server(roles):
    auditor = roles["auditor"]
    before = count(roles["owner"])
    hosts = run(auditor, "host", "list")
    assert [h["name"] for h in hosts] == ["kvm-01"]  # type: ignore[index]
    assert run(auditor, "ledger", "verify")["events"] == before  # type: ignore[index]
    refused = run(
        auditor, "host", "add", "kvm-02", "--zone", "z1", "--cluster", "c1", code=2
    )
    assert refused.stderr.startswith("storctl: the database refused: permission denied")  # type: ignore[attr-defined]
    assert count(roles["owner"]) == before
    s = roles["schema"]
    db = parse_db(auditor)
    for sql in (
        f'INSERT INTO "{s}".storctl_events'
        " (originator_id, originator_version, topic, state)"
        " VALUES (gen_random_uuid(), 1, 't', 'x')",
        f"INSERT INTO \"{s}\".storctl_events_hashes VALUES (999, 'x', 1, '', '', '')",
        f"UPDATE \"{s}\".storctl_events SET topic = 'x'",
        f'DELETE FROM "{s}".storctl_events',
        f'TRUNCATE "{s}".storctl_events',
        f'DELETE FROM "{s}".event_journal',
        f"UPDATE \"{s}\".host SET name = 'x'",
        f"INSERT INTO \"{s}\".storctl_tracking VALUES ('x', 1)",
        f'ALTER TABLE "{s}".storctl_events DISABLE TRIGGER USER',
    ):
        with (
            psycopg.connect(**pg_connect_args(db)) as conn,
            pytest.raises(psycopg.errors.InsufficientPrivilege),
        ):
            conn.execute(sql)
    assert count(roles["owner"]) == before


def test_neither_role_can_update_or_delete_a_stored_event(roles):
    s = roles["schema"]
    for role in ("operator", "auditor"):
        db = parse_db(roles[role])
        for table in ("storctl_events", "storctl_events_hashes"):
            for sql in (
                f'UPDATE "{s}".{table} SET originator_version = 7',
                f'DELETE FROM "{s}".{table}',
                f'TRUNCATE "{s}".{table}',
                f'ALTER TABLE "{s}".{table} DISABLE TRIGGER USER',
            ):
                with (
                    psycopg.connect(**pg_connect_args(db)) as conn,
                    pytest.raises(psycopg.errors.InsufficientPrivilege),
                ):
                    conn.execute(sql)
    assert run(roles["owner"], "ledger", "verify")["events"] == count(roles["owner"])  # type: ignore[index]


def test_the_actor_is_the_session_user_whatever_actor_says(roles):
    operator = roles["operator"]
    role = parse_db(operator).env["POSTGRES_USER"]
    run(
        operator,
        "--actor",
        "root",
        "host",
        "add",
        "kvm-02",
        "--zone",
        "z1",
        "--cluster",
        "c1",
    )
    rows = run(roles["auditor"], "history", "host", "kvm-02")
    assert rows
    assert {r["actor"] for r in rows} == {role}  # type: ignore[union-attr, index]
    assert {r["details"]["onbehalfof"] for r in rows} == {"root"}  # type: ignore[union-attr, index]
    # the role cannot name another appender in the hashes either
    s = roles["schema"]
    with (
        psycopg.connect(**pg_connect_args(parse_db(operator))) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute(
            f'INSERT INTO "{s}".storctl_events_hashes'
            " (notification_id, originator_id, originator_version, content, stream,"
            " log, db_user) VALUES (999, 'x', 1, '', '', '', 'postgres')"
        )
    db = parse_db(roles["owner"])
    with psycopg.connect(**pg_connect_args(db)) as conn:
        appended = conn.execute(
            f'SELECT DISTINCT db_user FROM "{s}".storctl_events_hashes h'
            f' JOIN "{s}".storctl_events e USING (notification_id)'
            " WHERE e.originator_id = %s::uuid",
            (rows[0]["objectid"],),  # type: ignore[index]
        ).fetchall()
    assert appended == [(role,)]
    assert run(roles["auditor"], "ledger", "verify")["events"] == count(roles["owner"])  # type: ignore[index]
