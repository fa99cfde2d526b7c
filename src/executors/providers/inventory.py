"""What a provider's scan of one pool found, in one shape for every backend.

`storctl reconcile` asks the same two questions of every pool, whatever it is
made of: which objects on the backend does the ledger not know, and which
objects the ledger knows are not on the backend. The ledger's side is a list of
`Claim`s (built from the projected tables by the caller); the backend's side is
an `Inventory`, made by the provider's `inventory` lister (`Provider.inventory`):
a directory's files, an RBD pool's images and snapshots, an iSCSI pool's LUN
files and targets. `executors.reconcile.compare` then compares the two the same
way for all of them, so the findings keep the same columns on every provider.

An `Inventory` is data plus three small hooks a provider may override, because
the two sides name the same object differently on some backends:

- `key`: a claim's path in the inventory's terms (a directory normalises the
  relative path; an iSCSI pool turns a volume's uuid into its target's IQN);
- `expected_backing`: where a linked clone's base copy is, in the terms of
  `Found.backing` (a directory's resolved file, RBD's `pool/image@snap`);
- `inspect`: what only a claimed object needs read (a directory runs `qemu-img
  info` with the format the ledger recorded; RBD already listed everything).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from executors.runner import Runner
from ledger.commands import PrimaryDataStoreTO


@dataclass(frozen=True)
class Claim:
    """One object the ledger says is on the pool (`path` as the ledger records it:
    relative to a directory pool's root, an RBD image name, an iSCSI volume's IQN)."""

    kind: str  # volume, template, snapshot
    object_id: str
    name: str
    path: str
    state: str
    settled: bool  # the object must be there and is checked; else in flight
    fmt: str = "QCOW2"
    size: int | None = None  # the expected virtual size (volumes)
    base: str | None = None  # the template's base copy on this pool (linked clones)
    check_backing: bool = False  # volumes: the backing must be `base` (or none)


@dataclass(frozen=True)
class Found:
    """One object on the backend, as far as the listing alone tells.

    `path` is the key claims are matched on (after `Inventory.key`). `kind` is a
    guess from the listing (`file`, `image`, `snapshot`, `lun`, `target`), shown
    only for orphans. `size` is the virtual size when the listing says it;
    `backing` the backing file or parent in `Inventory.expected_backing`'s terms,
    `backing_shown` how it is shown. `temp_of` names the object a temporary one
    (a staged write's `.part`) would have become. `lacks` names the parts of the
    object that are not there (an iSCSI volume's target); `remnant` says the
    object itself is gone and only such parts are left (a target with no LUN
    file), so a claim on it is `missing` and no claim makes it an orphan;
    `unreadable` is (what was expected, what was found) when it cannot be read.
    """

    path: str
    kind: str
    size: int | None = None
    backing: str | None = None
    backing_shown: str | None = None
    temp_of: str | None = None
    description: str = ""
    lacks: tuple[str, ...] = ()
    remnant: bool = False
    unreadable: tuple[str, str] | None = None

    def but(self, **changes: Any) -> Found:
        return replace(self, **changes)


@dataclass
class Inventory:
    """The objects on one pool's backend, by path. `noun` is what one is called
    in a finding (`file`, `image`, `LUN`): "no such image"."""

    noun: str
    found: dict[str, Found] = field(default_factory=dict)

    def add(self, item: Found) -> None:
        self.found[item.path] = item

    def key(self, path: str) -> str:
        """A claim's path in this inventory's terms."""
        return path

    def expected_backing(self, base: str | None) -> str | None:
        """The backing a linked clone over `base` (a template copy's path on this
        pool) must have, in `Found.backing`'s terms; None: no backing at all."""
        return base

    def inspect(self, item: Found, claim: Claim) -> Found:
        """`item` with what only a claimed object needs read (default: nothing)."""
        return item


#: A provider's lister: the pool (as commands carry it), its credentials resolved
#: for this call (empty when it names none), and the runner every host tool goes
#: through; raises `InvalidInput` (exit 2) when the backend cannot be listed.
Lister = Callable[[PrimaryDataStoreTO, Mapping[str, Any], Runner], Inventory]
