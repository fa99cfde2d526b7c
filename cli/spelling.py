"""How one value is spelled in every format: sizes, times, booleans, lists.

Its own module so that `cli.output` and `cli.tables` both use it without
importing each other.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

SIZE_FIELDS = frozenset(
    {"size", "physicalsize", "disksizetotal", "disksizeallocated", "disksizeused"}
)

#: the recorded time style, and what older rows or `datetime.isoformat` write
_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|\+00:00)$")

#: names by id, or the reader to ask (`projections.queries.names_by_id`)
Names = Callable[[], dict[str, str]] | Any


def spell_time(value: str, *, seconds: bool = False) -> str:
    """A UTC time as `2026-12-07T14:03:05Z` (`seconds`) or with its fraction; any
    other string is returned as it is."""
    found = _TIME.match(value)
    if found is None:
        return value
    whole, fraction, _ = found.groups()
    return f"{whole}{'' if seconds or not fraction else fraction}Z"


def spell(value: Any) -> str:
    """One scalar as text the same way in CSV and tables: `true`/`false`, times
    with `Z`, nothing for null (tables draw `-` themselves)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return spell_time(value)
    if isinstance(value, list):
        return ",".join(spell(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)
