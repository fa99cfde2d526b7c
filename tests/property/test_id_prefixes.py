"""Id prefixes as `find` reads them: a unique prefix resolves, a shared one lists.

The `volumes` table (the real DDL, in memory) holds volumes whose ids are drawn to
share stems, so prefixes collide as they do in a large ledger, and whose names
repeat and are never hex (a name wins over a prefix; that rule is tested apart).
For every object and every prefix length from `MIN_ID_PREFIX` to the full id:
a prefix that one id starts with finds that object; one that several start with
is refused, listing exactly those, each with a short id that itself resolves.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import Ambiguous, NotFound, short_ids
from ledger.values import MIN_ID_PREFIX
from projections.db import Db
from projections.queries import find
from projections.schema import sqlite_ddl
from projections.view import Reader

HEX = "0123456789abcdef"


@st.composite
def volume_ids(draw: st.DrawFn) -> list[str]:
    """Distinct UUIDs, some forced to begin with one common stem."""
    stem = draw(st.just("") | st.text(HEX, min_size=MIN_ID_PREFIX, max_size=10))
    ids = draw(st.lists(st.uuids(version=4), min_size=1, max_size=12, unique=True))
    out = []
    for value in ids:
        text = str(value)
        if stem and draw(st.booleans()):
            text = stem + text[len(stem) :]
        out.append(text)
    return list(dict.fromkeys(out))


@contextmanager
def volumes_table(ids: list[str], names: list[str]) -> Iterator[Reader]:
    conn = sqlite3.connect(":memory:")
    conn.row_factory = sqlite3.Row
    cursor = conn.cursor()
    try:
        for statement in sqlite_ddl():
            cursor.execute(statement)
        for n, (vid, name) in enumerate(zip(ids, names, strict=True)):
            cursor.execute(
                "INSERT INTO volumes (uuid, name, state, created) VALUES (?, ?, ?, ?)",
                (vid, name, "Allocated", f"2026-01-01T00:00:{n:02d}Z"),
            )
        yield Reader(Db(cursor, "sqlite"))
    finally:
        conn.close()


@given(data=st.data(), ids=volume_ids())
def test_a_unique_prefix_resolves_and_a_shared_one_lists_its_matches(
    data: st.DataObject, ids: list[str]
) -> None:
    names = [data.draw(st.sampled_from(["vol-x", "vol-y", "big-5"])) for _ in ids]
    target = data.draw(st.sampled_from(ids))
    # short prefixes most often: they are the ones that collide
    length = data.draw(
        st.integers(MIN_ID_PREFIX, 10) | st.integers(MIN_ID_PREFIX, len(target))
    )
    prefix = data.draw(st.sampled_from([target[:length], target[:length].upper()]))
    matches = [i for i in ids if i.startswith(prefix.lower())]
    with volumes_table(ids, names) as r:
        if len(matches) == 1 or prefix == target:
            assert find(r, "volume", prefix)["id"] == target
            return
        with pytest.raises(Ambiguous) as refused:
            find(r, "volume", prefix)
        assert sorted(refused.value.matches) == sorted(matches)
        line = str(refused.value)
        assert "\n" not in line
        for short, full in zip(short_ids(matches), matches, strict=True):
            assert f"({short})" in line
            assert find(r, "volume", short)["id"] == full


@given(ids=volume_ids())
def test_a_prefix_shorter_than_the_minimum_is_never_taken(ids: list[str]) -> None:
    with volumes_table(ids, ["vol-x"] * len(ids)) as r, pytest.raises(NotFound):
        find(r, "volume", ids[0][: MIN_ID_PREFIX - 1])


def test_a_name_wins_over_a_prefix_and_a_full_id_over_both() -> None:
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    with volumes_table([a, b], [b[:8], "vol-x"]) as r:
        assert find(r, "volume", b[:8])["id"] == a  # the volume named so
        assert find(r, "volume", b)["id"] == b
        assert find(r, "volume", a[:8])["id"] == a
