"""Shared fixtures: the ledger on each store, so one suite runs on SQLite and PG.

PostgreSQL cases carry the `postgres` marker. When `CI` is set they fail, never skip,
if the server is down: CI machines have it, and a silent skip would hide a broken store.
The `lab_backends` fixture does the same for the lab's real backends (Ceph, tgtd): it
brings them up with `tools/lab.py up` (as `make lab` does); its tests carry `lab`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


@pytest.fixture(scope="session")
def _no_user_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("xdg-config")


@pytest.fixture(autouse=True)
def _isolated_client_config(
    _no_user_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No test reads the developer's own config.toml or profile (`cli.profiles`):
    a `default` profile with `output = "table"` would change what every CLI test
    sees. Tests of profiles point XDG_CONFIG_HOME at their own directory."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(_no_user_config))
    monkeypatch.delenv("STORCTL_PROFILE", raising=False)
    monkeypatch.delenv("STORCTL_OUTPUT", raising=False)


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


# ------------------------------------------------------------------ the lab

LAB_SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "lab.py"


@dataclass(frozen=True)
class Lab:
    """The running lab: its credentials profile (the file executors read) parsed."""

    credentials: Path
    profiles: dict[str, dict[str, Any]]

    def __getitem__(self, name: str) -> dict[str, Any]:
        return self.profiles[name]


def lab_up() -> Lab:
    """Start what is down (the same script as `make lab`); fail under CI, else skip."""
    try:
        proc = subprocess.run(
            [sys.executable, str(LAB_SCRIPT), "up"],
            capture_output=True,
            text=True,
            timeout=1200,  # a first run installs Ceph and tgt with apt
            check=False,
        )
        why = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
    except (OSError, subprocess.TimeoutExpired) as e:
        proc, why = None, str(e)
    if proc is None or proc.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"the lab did not come up (CI must run these): {why}")
        pytest.skip(f"the lab did not come up (outside CI): {why}")
    line = next(ln for ln in proc.stdout.splitlines() if "STORCTL_CREDENTIALS=" in ln)
    path = Path(line.split("=", 1)[1])
    with path.open("rb") as f:
        return Lab(path, tomllib.load(f))


@pytest.fixture(scope="session")
def lab_backends() -> Lab:
    """The lab's servers, up for the session (left running: `make lab-down`).
    Not `lab`: two test modules already have a `lab` fixture of their own."""
    return lab_up()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Whatever uses the lab is marked `lab` (so `-m "not lab"` leaves it out)."""
    for item in items:
        if "lab_backends" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.lab)
