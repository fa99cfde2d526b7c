"""`storctl describe KIND NAME`: one object, its last `why`, its last events, and
what can be done to it next.

What can be done next comes from the object's state machine (`ledger.fsm`): the
triggers its table allows from the current state, each as the command an operator
types where one starts it (answers and workflow steps, e.g. `OperationSucceeded`,
are left out: nobody types them). Nothing is written.
"""

from __future__ import annotations

from typing import Any

import click

from cli.completion import names
from cli.context import app
from cli.output import emit

KINDS = ("volume", "vm", "snapshot", "template", "pool", "host")
#: journal rows shown
LAST = 5

#: kind -> trigger -> the command that starts it ({ref}: the object's name or id)
COMMANDS: dict[str, dict[str, str]] = {
    "volume": {
        "AttachRequested": "storctl volume attach {ref} --vm VM",
        "CreateRequested": "storctl volume attach {ref} --vm VM",
        "DestroyRequested": "storctl volume delete {ref}",
        "ExpungingRequested": "storctl volume expunge {ref}",
        "RecoverRequested": "storctl volume recover {ref}",
        "ResizeRequested": "storctl volume resize {ref} --size SIZE",
        "MigrationRequested": "storctl volume migrate {ref} --pool P",
        "MigrationCopyRequested": "storctl volume migrate {ref} --pool P",
        "SnapshotRequested": "storctl snapshot create {ref}",
    },
    "vm": {
        "StartRequested": "storctl vm start {ref}",
        "StopRequested": "storctl vm stop {ref}",
        "DestroyRequested": "storctl vm destroy {ref}",
        "ExpungeRequested": "storctl vm destroy {ref} --expunge",
    },
    "snapshot": {
        "DestroyRequested": "storctl snapshot delete {ref}",
        "CopyingRequested": "storctl volume create NAME --from-snapshot {ref}",
    },
    "template": {},
    "pool": {
        "Disable": "storctl pool disable {ref}",
        "Enable": "storctl pool enable {ref}",
        "PrepareForMaintenance": "storctl pool maintenance enable {ref}",
        "CancelMaintenance": "storctl pool maintenance cancel {ref}",
        "Remove": "storctl pool delete {ref}",
    },
    "host": {
        "Disable": "storctl host disable {ref}",
        "Enable": "storctl host enable {ref}",
    },
}


def next_steps(kind: str, state: str | None, ref: str) -> list[dict[str, str]]:
    """What the kind's table allows from `state` that an operator starts, each
    with its command; nothing for a state the table does not know."""
    from ledger.fsm import SPECS

    spec = SPECS[kind]
    commands = COMMANDS[kind]
    steps: list[dict[str, str]] = []
    for (start, trigger), dest in sorted(spec.lookup.items()):
        if start == state and trigger in commands:
            line = commands[trigger].format(ref=ref)
            if all(step["command"] != line for step in steps):  # one command each
                steps.append({"trigger": trigger, "to": dest, "command": line})
    return steps


@click.command()
@click.argument("kind", type=click.Choice(KINDS, case_sensitive=False))
@click.argument("ref", metavar="NAME", shell_complete=names())
def cli(kind: str, ref: str) -> None:
    """One object: its row, its last allocation decision (volumes), its last
    events, and what can be done to it next (from its state machine, as the
    commands to type).

    \b
    Example:
      storctl describe volume data-1
      storctl -o json describe vm web-1 | jq '.next[].command'
    """
    from projections.queries import find, list_events
    from projections.timeline import public, rows

    kind = kind.lower()
    a = app()
    with a.reader() as r:
        obj = find(r, kind, ref, or_gone=True)
        oid = str(obj["id"])
        events = [public(row) for row in rows(r, object_id=oid, last=LAST)]
        decided = (
            list_events(r, object_id=oid, event="AllocationDecided")
            if kind == "volume"
            else []
        )
    state = obj.get("state") or obj.get("status")
    shown = obj.get("name") or oid
    doc: dict[str, Any] = {
        "kind": kind,
        "id": oid,
        "name": obj.get("name"),
        "state": state,
        "object": obj,
        "why": _why(decided[-1]) if decided else None,
        "events": events,
        "next": next_steps(kind, state, shown),
    }
    if a.output in ("json", "yaml"):
        emit(a.output, doc)
        return
    emit(a.output, {k: doc[k] for k in ("kind", "id", "name", "state")})
    if doc["why"] is not None:
        click.echo(f"\nwhy: {doc['why']}")
    click.echo("\nlast events:")
    emit(a.output, events, ["position", "timestamp", "event", "fromstate", "tostate"])
    click.echo("\nnext:")
    emit(a.output, doc["next"], ["trigger", "to", "command"])


def _why(decision: dict[str, Any]) -> str:
    """The last allocation decision in one line: the pool taken, or why none."""
    details = decision.get("details") or {}
    verdicts = details.get("verdicts") or []
    refused = sum(1 for v in verdicts if not v.get("taken"))
    taken = [v.get("pool") or details.get("chosen") for v in verdicts if v.get("taken")]
    if details.get("chosen"):
        pool = taken[0] if taken else details["chosen"]
        return f"pool {pool} taken ({refused} refused); storctl why for each"
    return f"no suitable pool ({refused} refused); storctl why for each reason"
