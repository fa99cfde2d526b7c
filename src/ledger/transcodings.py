"""How events carry storctl's value types: each enum of `ledger.values` stored as
its value, under a name that says which enum it is.

Apart from `ledger.values` because it needs eventsourcing's `Transcoding`, and the
values are also read where eventsourcing is never imported (the CLI's read side).
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from eventsourcing.persistence import Transcoding

from ledger.values import ALL_ENUMS


class EnumAsValue(Transcoding):
    """Stores a member as its value under a name that says which enum it is."""

    def __init__(self, enum_type: type[Enum]) -> None:
        self.type = enum_type
        self.name = f"storctl.{enum_type.__name__}"

    def encode(self, obj: Any) -> str:
        return str(obj.value)

    def decode(self, data: Any) -> Enum:
        member: Enum = self.type(data)
        return member


def transcodings() -> list[Transcoding]:
    return [EnumAsValue(e) for e in ALL_ENUMS]
