"""Shared fixtures: the ledger on each store, so one suite runs on SQLite and PG.

PostgreSQL cases carry the `postgres` marker. When `CI` is set they fail, never skip,
if the server is down: CI machines have it, and a silent skip would hide a broken store.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from cli import bootstrap
from ledger.app import Ledger
from ledger.store.database import Database, parse_db, pg_connect_args

settings.register_profile("dev", max_examples=50, deadline=None)
settings.register_profile(
    "ci", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "slow", max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev")
)

PG_URL = os.environ.get("STORCTL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def pg_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(**pg_connect_args(parse_db(PG_URL)), connect_timeout=3):
            return True
    except Exception:
        return False


def fresh_pg_url() -> str:
    """A new, empty schema on the test server; dropped by `drop_pg_schema`."""
    if not pg_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {PG_URL} (CI must run these)")
        pytest.skip("PostgreSQL is not reachable (outside CI)")
    return f"{PG_URL}?schema=t_{uuid.uuid4().hex[:12]}"


def open_ledger(url: str) -> Ledger:
    """A ledger on `url` as production opens it (`cli.bootstrap`): its store's
    place made, its projection tables created, placement nominated by them."""
    return bootstrap.open_ledger(url)


def drop_pg_schema(db: Database) -> None:
    import psycopg

    with psycopg.connect(**pg_connect_args(db), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{db.schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A database URL on each store: a new SQLite file, a new PostgreSQL schema."""
    if request.param == "sqlite":
        yield str(tmp_path / "ledger.db")
        return
    url = fresh_pg_url()
    yield url
    drop_pg_schema(parse_db(url))


@pytest.fixture
def ledger(db_url: str) -> Iterator[Ledger]:
    app = open_ledger(db_url)
    yield app
    app.close()
