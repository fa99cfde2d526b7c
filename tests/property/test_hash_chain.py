"""The hash chain's invariant: any single hand edit of a stored event (its content
changed, the row deleted, two rows swapped, a row inserted) is named by `walk` at
exactly its first event, and an untouched ledger walks clean.

One history is written once (SQLite); each example tampers with a copy of the file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.aggregate import Ctx
from ledger.app import Ledger
from ledger.hashchain import Break, Walked
from ledger.store.chain_reads import walk
from ledger.store.database import parse_db
from ledger.usecases import infrastructure
from ledger.values import Hypervisor
from tests.conftest import open_ledger
from tests.tamper import Forger


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> tuple[Path, int]:
    path = tmp_path_factory.mktemp("chain") / "ledger.db"
    ledger = open_ledger(str(path))
    for k in range(4):
        infrastructure.register_host(
            ledger, Ctx.new("t"), f"h{k}", "z1", "c1", Hypervisor.Simulator
        )
        for v in range(k + 1):
            infrastructure.set_config(
                ledger, Ctx.new("t"), "storage.overprovisioning.factor", str(v + 2)
            )
    count = int(ledger.recorder.max_notification_id() or 0)
    ledger.close()
    return path, count


def walked(path: Path) -> Break | Walked:
    ledger = Ledger(env=parse_db(str(path)).env)  # no projections: only the log
    try:
        return walk(ledger.recorder)
    finally:
        ledger.close()


tampers = st.one_of(
    st.tuples(st.just("edit"), st.integers(1, 10_000)),
    st.tuples(st.just("delete"), st.integers(1, 10_000)),
    st.tuples(st.just("swap"), st.integers(1, 10_000), st.integers(1, 10_000)),
    st.tuples(st.just("insert"), st.integers(1, 10_000)),
)


@given(tamper=st.none() | tampers)
def test_any_single_hand_edit_is_named_at_its_first_event(
    original, tmp_path_factory, tamper
):
    source, count = original
    path = tmp_path_factory.mktemp("copy") / "ledger.db"
    shutil.copy(source, path)
    forger = Forger(str(path))
    positions = forger.positions()
    assert len(positions) == count
    if tamper is None:
        result = walked(path)
        assert isinstance(result, Walked)
        assert result.count == count
        return
    kind, *picks = tamper
    chosen = [positions[p % count] for p in picks]
    if kind == "edit":
        forger.edit(chosen[0])
        expected = chosen[0]
    elif kind == "delete":
        forger.delete(chosen[0])
        expected = chosen[0]
    elif kind == "swap":
        i, j = sorted(chosen)
        if i == j:
            j = positions[(positions.index(i) + 1) % count]
            i, j = sorted((i, j))
        forger.swap(i, j)
        expected = i
    else:
        expected = forger.insert(chosen[0])
    result = walked(path)
    assert isinstance(result, Break), tamper
    assert result.notification_id == expected, (tamper, result.line())
