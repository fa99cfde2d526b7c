"""The bench's database helper: any label gives a database each store accepts.

`make test` runs only the quick startup/allocate/load benchmarks, so a label the
PostgreSQL store refuses (a hyphen once cost a full run its append figures) would
otherwise surface only in `make bench`.
"""

from __future__ import annotations

import psycopg
import pytest
from bench.common import database

from ledger.store.database import parse_db, pg_connect_args
from tests.conftest import fresh_pg_url

LABELS = ["append-single", "until500000", "bare 100", "x/../y"]


@pytest.mark.postgres
@pytest.mark.parametrize("label", LABELS)
def test_postgres_schema_is_accepted_and_dropped(label: str) -> None:
    fresh_pg_url()  # fails in CI, skips elsewhere, when the server is down
    with database("postgres", None, label) as url:  # type: ignore[arg-type]
        db = parse_db(url)
        with psycopg.connect(**pg_connect_args(db), autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{db.schema}"')
    with psycopg.connect(**pg_connect_args(db), autocommit=True) as conn:
        row = conn.execute(
            "SELECT 1 FROM information_schema.schemata WHERE schema_name = %s",
            (db.schema,),
        ).fetchone()
    assert row is None


@pytest.mark.parametrize("label", LABELS)
def test_sqlite_file_is_inside_workdir_and_removed(label: str, tmp_path) -> None:
    with database("sqlite", tmp_path, label) as url:
        path = tmp_path.joinpath(url)
        assert path.parent.parent == tmp_path
        path.write_bytes(b"")
    assert list(tmp_path.iterdir()) == []
