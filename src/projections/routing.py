"""The event -> table dispatch: one `singledispatch` function over event classes.

Each family module (`infra`, `templates`, `volumes`, `jobs`) registers its handlers
on `project`. Every `...Requested` / `...Answered` event (the state machine steps of
`Commandable` aggregates) first goes to `step`, which routes by aggregate class to
the family that owns that aggregate's table (`volumes.state`, `snapshots.status`,
the `*_ref` tables' `state`). Events nobody registered (zones, name claims, the
allocator's decision) change no table: the journal (`journal.py`) records every
event whatever its class. No CloudStack table of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import singledispatch
from typing import Any

from ledger.aggregate import Answered, Requested
from projections.db import Db

Step = Callable[[Any, Db], None]

#: aggregate class name -> handler of its Requested/Answered steps
STEPS: dict[str, Step] = {}


def aggregate_name(event: object) -> str:
    """The aggregate class an event belongs to (events are nested classes)."""
    return type(event).__qualname__.split(".")[0]


@singledispatch
def project(event: object, db: Db) -> None:
    """Apply one event to the tables (journal aside). Unknown events: no table."""


#: event class -> its handler, resolved once: `project`'s own cache is keyed by
#: weak references (one made per call), a cost per event on a rebuild
_HANDLERS: dict[type[Any], Step] = {}
_RESOLVED_WITH = [0]  # the registry size `_HANDLERS` was filled with


def handler(kind: type[Any]) -> Step:
    """What `project` calls for an event of class `kind`."""
    if len(project.registry) != _RESOLVED_WITH[0]:  # registered since
        _HANDLERS.clear()
        _RESOLVED_WITH[0] = len(project.registry)
    found = _HANDLERS.get(kind)
    if found is None:
        found = _HANDLERS[kind] = project.dispatch(kind)
    return found


@project.register
def _requested(event: Requested, db: Db) -> None:
    step(event, db)


@project.register
def _answered(event: Answered, db: Db) -> None:
    step(event, db)


def step(event: Requested | Answered, db: Db) -> None:
    handler = STEPS.get(aggregate_name(event))
    if handler is not None:
        handler(event, db)


def on_steps(aggregate: str) -> Callable[[Step], Step]:
    """Register the Requested/Answered handler of one aggregate class."""

    def register(handler: Step) -> Step:
        STEPS[aggregate] = handler
        return handler

    return register
