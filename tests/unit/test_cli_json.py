"""`-o json` prints exactly `json.dumps(data, indent=2, default=str)`, whichever
way `cli.output.dumps` takes to write it (its quick way for a list of flat rows)."""

from __future__ import annotations

import json
import uuid

from hypothesis import given
from hypothesis import strategies as st

from cli.output import dumps

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(alphabet=st.sampled_from('ab{},:"\\\n \t\u00e9\u2603'), max_size=12),
    st.uuids(),  # not JSON: goes through default=str
)
keys = st.text(alphabet=st.sampled_from('ab{},:"\n '), max_size=5)
flat_rows = st.lists(st.dictionaries(keys, scalars, max_size=6), max_size=6)
nested = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3), max_leaves=8)
any_rows = st.lists(st.dictionaries(keys, nested, max_size=4), max_size=4)


def standard(data: object) -> str:
    return json.dumps(data, indent=2, default=str)


@given(flat_rows)
def test_flat_rows_are_written_as_the_standard_library_writes_them(rows):
    assert dumps(rows) == standard(rows)


@given(any_rows)
def test_rows_with_lists_are_written_as_the_standard_library_writes_them(rows):
    assert dumps(rows) == standard(rows)


def test_a_single_object_and_an_empty_list():
    one = {"id": str(uuid.uuid4()), "tags": ["ssd"], "size": 1 << 30}
    assert dumps(one) == standard(one)
    assert dumps([]) == "[]"
    assert dumps([{}]) == standard([{}])
    assert json.loads(dumps([{"a": 1}, {"a": 2}])) == [{"a": 1}, {"a": 2}]
