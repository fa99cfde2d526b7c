"""The one error tree of storctl; the CLI maps it to exit codes in one place.

```
StorctlError
├── Refused                       exit 2, nothing written
│   ├── NotFound, Ambiguous, InvalidInput, Duplicate
│   ├── IllegalTransition(kind, id, state, trigger)
│   ├── CapacityExceeded(pool, reason)
│   ├── DatabaseUnavailable(url, reason)  --db names no ledger that opens
│   └── Conflict                  version clash after retries
├── OperationFailed               exit 3: the job settled as failed (answer recorded)
│   └── NoSuitablePool(volume_id)     the allocator's why is in the ledger
└── Tampered                      exit 3: the stored history breaks its hash chain
```

Each exception keeps its facts as attributes and builds its one line from them, so a
script can read `exc.state` and an operator reads the sentence.
"""

from __future__ import annotations

from typing import Any


class StorctlError(Exception):
    exit_code = 1

    def __init__(self, **facts: Any) -> None:
        self.facts = facts
        for key, value in facts.items():
            setattr(self, key, value)
        super().__init__(self.message())

    def message(self) -> str:  # pragma: no cover - every subclass overrides
        return type(self).__name__

    def __str__(self) -> str:
        return self.message()


class Refused(StorctlError):
    """A user's mistake: refused before anything was written."""

    exit_code = 2


class NotFound(Refused):
    def __init__(self, kind: str, ref: str) -> None:
        super().__init__(kind=kind, ref=ref)

    def message(self) -> str:
        return f"{self.facts['kind']} {self.facts['ref']!r} not found"


class Ambiguous(Refused):
    """Several objects answer to `ref`: each is listed by name and short id, so the
    operator can give one of those ids (or its full id, which always works)."""

    def __init__(
        self,
        kind: str,
        ref: str,
        matches: list[str],
        names: list[str | None] | None = None,
    ) -> None:
        super().__init__(
            kind=kind, ref=ref, matches=matches, names=names or [None] * len(matches)
        )

    def message(self) -> str:
        f = self.facts
        shorts = short_ids(f["matches"])
        listed = ", ".join(
            f"{name} ({short})" if name else short
            for name, short in zip(f["names"], shorts, strict=True)
        )
        return (
            f"{f['kind']} {f['ref']!r} is ambiguous: {len(shorts)} match ({listed});"
            " give one of their ids"
        )


def short_ids(ids: list[str], shortest: int = 8) -> list[str]:
    """The ids cut to the first length (at least `shortest`) that tells them apart."""
    width = shortest
    while width < max((len(i) for i in ids), default=0) and len(
        {i[:width] for i in ids}
    ) < len(set(ids)):
        width += 1
    return [i[:width] for i in ids]


class InvalidInput(Refused):
    def __init__(self, what: str, value: str, why: str) -> None:
        super().__init__(what=what, value=value, why=why)

    def message(self) -> str:
        f = self.facts
        return f"invalid {f['what']} {f['value']!r}: {f['why']}"


class Duplicate(Refused):
    def __init__(self, kind: str, name: str) -> None:
        super().__init__(kind=kind, name=name)

    def message(self) -> str:
        kind = self.facts["kind"]
        return (
            f"a {kind} named {self.facts['name']!r} already exists"
            f" ({kind} names are unique in storctl; choose another)"
        )


#: CloudStack's class names (kept in `kind`, for scripts) as the operator's nouns
NOUNS = {
    "VirtualMachine": "VM",
    "Volume": "volume",
    "StoragePool": "pool",
    "Snapshot": "snapshot",
    "Template": "template",
    "Host": "host",
    "Job": "job",
    "ImageStore": "store",
}


class IllegalTransition(Refused):
    """The state machine of `kind` has no `trigger` from `state`. The object is
    named as the operator knows it (its name, else its short id), and `then` says
    what to do first, with the command when there is one."""

    def __init__(
        self,
        kind: str,
        id: str,
        state: str,
        trigger: str,
        why: str = "",
        name: str | None = None,
        then: str = "",
    ) -> None:
        super().__init__(
            kind=kind,
            id=id,
            state=state,
            trigger=trigger,
            why=why,
            name=name,
            then=then,
        )

    def message(self) -> str:
        f = self.facts
        who = f"{NOUNS.get(f['kind'], f['kind'])} {f['name'] or f['id'][:8]}"
        text = f"{who} is {f['state']}: {f['trigger']} is not allowed"
        text = f"{text} ({f['why']})" if f["why"] else text
        return f"{text}; {f['then']}" if f["then"] else text


class CapacityExceeded(Refused):
    def __init__(self, pool: str, reason: str) -> None:
        super().__init__(pool=pool, reason=reason)

    def message(self) -> str:
        return (
            f"pool {self.facts['pool']} refused the reservation: {self.facts['reason']}"
        )


class DatabaseUnavailable(Refused):
    """`--db` names nothing storctl can open: a wrong role, a port with nothing
    listening, a missing database, a file that is no database, or (for a read) no
    file at all. `url` is the display form, its password masked."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(url=url, reason=reason)

    def message(self) -> str:
        return f"cannot open the ledger at {self.facts['url']}: {self.facts['reason']}"


class Conflict(Refused):
    def __init__(self, what: str) -> None:
        super().__init__(what=what)

    def message(self) -> str:
        return f"concurrent change kept winning: {self.facts['what']}; try again"


class OperationFailed(StorctlError):
    """The operation ran and failed; the failure is a recorded fact. Where the
    CLI found them, the object (`subject`, e.g. `volume sv1`), the agent command
    and the host that answered are named, and always the job to look at next."""

    exit_code = 3

    def __init__(
        self,
        job_id: str,
        details: str,
        subject: str | None = None,
        command: str | None = None,
        host: str | None = None,
    ) -> None:
        super().__init__(
            job_id=job_id, details=details, subject=subject, command=command, host=host
        )

    def message(self) -> str:
        f = self.facts
        text = str(f["details"])
        if f.get("command"):
            where = f" on {f['host']}" if f.get("host") else ""
            text = f"{f['command']}{where} failed: {text}"
        if f.get("subject"):
            text = f"{f['subject']}: {text}"
        short = str(f["job_id"])[:8]
        return f"{text} (job {short}; storctl job show {short})" if short else text


class NoSuitablePool(OperationFailed):
    """CloudStack's "Unable to find suitable primary storage", with the why recorded."""

    def __init__(self, job_id: str, volume_id: str, details: str) -> None:
        StorctlError.__init__(self, job_id=job_id, volume_id=volume_id, details=details)


class Tampered(StorctlError):
    """`ledger verify` found the first event that breaks the hash chain."""

    exit_code = 3

    def __init__(self, line: str) -> None:
        super().__init__(line=line)

    def message(self) -> str:
        return f"ledger tampered: {self.facts['line']}"
