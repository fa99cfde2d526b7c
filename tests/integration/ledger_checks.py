"""What a ledger that went through trouble must still show: the checks of the soak
and of the full-disk test, on SQLite or PostgreSQL.

- `tables`: every projected table, rows in a canonical order;
- `assert_rebuild_equal`: the live tables equal a rebuild from zero (STYLE.md's
  "incremental == rebuilt"), after the trouble rather than in a tidy session;
- `assert_quiet`: `replay verify` silent and `doctor` clean, as an operator runs them.
"""

from __future__ import annotations

from typing import Any

from cli import bootstrap
from projections.projector import catch_up, rebuild
from projections.schema import TABLES
from projections.view import view_for

from .conftest import Storctl


def tables(url: str) -> dict[str, list[str]]:
    """Every projected table (caught up first), each row as sorted text."""
    ledger = bootstrap.open_ledger(url)
    try:
        catch_up(ledger)
        out: dict[str, list[str]] = {}
        with view_for(ledger).view_transaction(commit=False) as db:
            for table in TABLES:
                rows = db.all(f"SELECT * FROM {table.name}")
                out[table.name] = sorted(repr(sorted(r.items())) for r in rows)
        return out
    finally:
        ledger.close()


def assert_rebuild_equal(url: str) -> dict[str, int]:
    """Rebuild the projections from zero and compare them to the live ones;
    returns the row count of each table (so a caller can insist they are not
    empty)."""
    live = tables(url)
    ledger = bootstrap.open_ledger(url)
    try:
        rebuild(ledger)
    finally:
        ledger.close()
    rebuilt = tables(url)
    differ = {
        name: (len(live[name]), len(rebuilt[name]))
        for name in live
        if live[name] != rebuilt[name]
    }
    assert not differ, f"tables differ from a rebuild (live, rebuilt rows): {differ}"
    return {name: len(rows) for name, rows in live.items()}


def assert_quiet(cli: Storctl) -> dict[str, Any]:
    """`replay verify` finds no divergence and `doctor` nothing stuck (real
    processes, as an operator runs them); returns what verify said."""
    proc = Storctl(cli.db, env=cli.env, subprocess=True)
    verified = proc.run("replay", "verify", timeout=300)
    assert verified.code == 0, f"replay verify: {verified}"
    assert verified.json == [], verified.json
    doctor = proc.run("doctor", timeout=120)
    assert doctor.code == 0, f"doctor: {doctor}"
    return {"verify": verified.err.strip(), "doctor": doctor.err.strip()}
