"""`storctl reconcile`: what a pool's backend holds against what the ledger claims.

The ledger side (which volume, template copy or snapshot claims which object, at
which size, over which base) is given as `Claim`s by the caller; the backend side
is the provider's `Inventory` (`executors.providers.inventory`: a directory's
files, an RBD pool's images and snapshots, an iSCSI pool's LUN files and targets).
`compare` is the same for every provider, so every pool's findings have the same
columns. Nothing on the pool or in the ledger is changed.

Findings:
- `orphan`: an object no claim names;
- `missing`: a settled claim (a Ready volume, a Ready template copy, a snapshot
  kept on primary) whose object is gone;
- `incomplete`: a settled claim's object is there but a part of it is not (an
  iSCSI volume's target, an RBD template's protected base snapshot);
- `size`: a volume whose virtual size is not the ledger's size;
- `backing`: a linked clone whose backing file (or RBD parent) is not its
  template's base copy on the same pool (or one with a backing where none is
  expected);
- `leftover`: a temporary `.part` of a staged write that is not in flight;
- `unreadable`: a claimed object that cannot be read as what the ledger says.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from executors.providers.directory.inventory import files_under, scan
from executors.providers.inventory import Claim, Found, Inventory
from executors.runner import Runner, SubprocessRunner

__all__ = [
    "COLUMNS",
    "PROBLEMS",
    "Claim",
    "Finding",
    "Scanner",
    "compare",
    "files_under",
]

PROBLEMS = (
    "orphan",
    "missing",
    "incomplete",
    "size",
    "backing",
    "leftover",
    "unreadable",
)
COLUMNS = ["problem", "path", "kind", "objectid", "name", "expected", "found"]


@dataclass(frozen=True)
class Finding:
    problem: str
    path: str
    kind: str | None = None
    object_id: str | None = None
    name: str | None = None
    expected: str | None = None
    found: str | None = None

    def row(self) -> dict[str, Any]:
        return {
            "problem": self.problem,
            "path": self.path,
            "kind": self.kind,
            "objectid": self.object_id,
            "name": self.name,
            "expected": self.expected,
            "found": self.found,
        }


def compare(
    inventory: Inventory, claims: Iterable[Claim], in_flight: Iterable[str] = ()
) -> list[Finding]:
    """The findings of `inventory` against `claims`; `in_flight` names objects
    (as claims name them) an operation may be making right now: neither orphans
    nor leftovers."""
    by_path: dict[str, Claim] = {}
    for claim in claims:
        by_path.setdefault(inventory.key(claim.path), claim)
    busy = {inventory.key(p) for p in in_flight}
    busy |= {p for p, c in by_path.items() if not c.settled}
    findings: list[Finding] = []
    for path in sorted(inventory.found):
        item = inventory.found[path]
        mine = by_path.get(path)
        if mine is not None:
            if mine.settled and item.remnant:
                findings.append(_missing(inventory, path, mine, item.description))
            elif mine.settled:
                findings += check(inventory, item, mine)
            continue
        if item.temp_of is not None:
            if item.temp_of not in busy:
                owner = by_path.get(item.temp_of)
                findings.append(
                    Finding(
                        "leftover",
                        path,
                        owner.kind if owner else None,
                        owner.object_id if owner else None,
                        owner.name if owner else None,
                        found="a staged write that never finished",
                    )
                )
            continue
        if path in busy:
            continue
        findings.append(Finding("orphan", path, found=item.description or item.kind))
    for path, claim in sorted(by_path.items()):
        if claim.settled and path not in inventory.found:
            findings.append(_missing(inventory, path, claim))
    return findings


def _missing(
    inventory: Inventory, path: str, claim: Claim, found: str | None = None
) -> Finding:
    noun = inventory.noun
    return Finding(
        "missing",
        path,
        claim.kind,
        claim.object_id,
        claim.name,
        expected=f"{claim.state} {claim.kind}'s {noun}",
        found=found or f"no such {noun}",
    )


def check(inventory: Inventory, item: Found, claim: Claim) -> list[Finding]:
    """A settled claim's object, read as far as the provider reads it."""
    item = inventory.inspect(item, claim)
    where = (claim.kind, claim.object_id, claim.name)
    if item.unreadable is not None:
        return [Finding("unreadable", item.path, *where, *item.unreadable)]
    out = [
        Finding("incomplete", item.path, *where, expected=part, found="not there")
        for part in item.lacks
    ]
    if claim.size is not None and item.size is not None and item.size != claim.size:
        out.append(
            Finding(
                "size",
                item.path,
                *where,
                expected=str(claim.size),
                found=str(item.size),
            )
        )
    if claim.check_backing and item.backing is not None:
        expected = inventory.expected_backing(claim.base)
        if item.backing != expected:
            out.append(
                Finding(
                    "backing",
                    item.path,
                    *where,
                    expected=expected or "no backing file",
                    found=item.backing_shown or item.backing,
                )
            )
    return out


class Scanner:
    """A directory pool's files against claims (`compare` over `scan`)."""

    def __init__(self, runner: Runner | None = None) -> None:
        self.runner: Runner = runner if runner is not None else SubprocessRunner()

    def scan(
        self, root: Path, claims: Iterable[Claim], in_flight: Iterable[str] = ()
    ) -> list[Finding]:
        return compare(scan(root, self.runner), claims, in_flight)
