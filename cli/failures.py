"""A failed job told as the operator needs it: which object, which agent command on
which host, and the job to look at next.

`volume sv1: CreateObjectCommand on sim-1 failed: insufficient space (job 9493dd32;
storctl job show 9493dd32)`. The object comes from the job; the command from the
job's failed answer and the request it answers, in the journal; the host is the
endpoint CloudStack's selection gives that command (the answer does not record it).
"""

from __future__ import annotations

from typing import Any

from ledger.errors import NOUNS, OperationFailed, StorctlError


def failure(a: Any, job: Any) -> OperationFailed:
    """`job` (settled as failed) as the one line CLI.md's exit 3 prints."""
    details = job.error or "failed"
    subject = command = host = None
    try:
        subject, request = _facts(a, job)
        if request is not None:
            command = request.get("kind")
            host = _host(a, request)
    except StorctlError:
        pass  # the object or its rows are gone: the job's own words still hold
    return OperationFailed(str(job.id), details, subject, command, host)


def _facts(a: Any, job: Any) -> tuple[str | None, dict[str, Any] | None]:
    from projections.queries import find, list_events

    kind = str(job.object_type)
    with a.reader() as r:
        obj = find(r, kind, str(job.object_id)) if kind in _NAMED else None
        rows = list_events(r, job=str(job.id))
    subject = f"{_NOUN.get(kind, kind)} {obj['name']}" if obj else None
    answers = [
        row["details"]["answer"]
        for row in rows
        if isinstance(row["details"].get("answer"), dict)
        and not row["details"]["answer"].get("result")
    ]
    if not answers:
        return subject, None
    wanted = answers[-1].get("commandId")
    for row in rows:
        command = row["details"].get("command")
        if isinstance(command, dict) and command.get("commandId") == wanted:
            return subject, command
    return subject, None


def _host(a: Any, request: dict[str, Any]) -> str | None:
    from executors.endpoints import select
    from ledger.commands import from_dict

    choice = select(a.ledger, from_dict(request))
    return choice.host.name if choice.host is not None else None


_NAMED = frozenset({"volume", "snapshot", "template", "vm", "pool", "host", "store"})
_NOUN = {kind.lower(): noun for kind, noun in NOUNS.items()} | {"vm": "VM"}
