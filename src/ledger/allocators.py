"""The names `ledger.allocators` held before the allocation package, re-exported.

Kept only for `operations.py`, `snapshots.py` and `migration.py`, which are being
rewritten elsewhere; new code imports from `ledger.allocation.views`, `.filters`,
`.chain` and `.cleanup`. Remove this module once nothing imports it.
"""

from __future__ import annotations

from ledger.allocation.chain import (
    ALGORITHMS,
    NOT_REACHED,
    SUITABLE,
    allocate,
    allocate_found,
    allocate_requested,
    chain,
    pick,
)
from ledger.allocation.cleanup import collect_garbage
from ledger.allocation.filters import refusal, scope_refusal
from ledger.allocation.views import (
    Decision,
    Group,
    PoolView,
    Request,
    Suitable,
    Verdict,
)

__all__ = [
    "ALGORITHMS",
    "NOT_REACHED",
    "SUITABLE",
    "Decision",
    "Group",
    "PoolView",
    "Request",
    "Suitable",
    "Verdict",
    "allocate",
    "allocate_found",
    "allocate_requested",
    "chain",
    "collect_garbage",
    "pick",
    "refusal",
    "scope_refusal",
]
