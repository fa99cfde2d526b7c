"""What a provider is: CloudStack's `DataStoreProvider`, as one frozen description.

CloudStack hangs every backend on a `DataStoreProvider`: a lifecycle that validates a
pool's or a store's URL and registers it, and a driver that executes each command on
that backend. A storctl provider is the same pair, described by one `Provider` value
that a module exposes and an entry point in the group `storctl.providers` names
(`registry` finds them). Everything the rest of the system asks of a backend is a
field here, so a new backend is a new value, never a new branch elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

from executors.providers.driver import Driver
from executors.providers.inventory import Lister


class Role(Enum):
    """What a provider's stores hold (CloudStack's `DataStoreProviderType`)."""

    PRIMARY = "primary"  # pools: volumes and the template copies they clone from
    IMAGE = "image"  # image stores (secondary): templates, snapshot backups


#: The scopes of CloudStack's `ScopeType` a pool can have, widest last.
SCOPES = ("host", "cluster", "zone")


@dataclass(frozen=True)
class Capabilities:
    """What the backend can do, so the orchestration never guesses from a name.

    Fields:
    - `linked_clones`: a ROOT volume can be a thin overlay of the template copy on
      its pool (`cloneVolumeFromBaseTemplate`); without it, every volume is a full copy.
    - `native_snapshots`: the backend snapshots a volume itself (`rbd snap`); without
      it, a snapshot is a `qemu-img` copy made by the agent.
    - `needs_staging_cache`: its data must pass through a cache store (CloudStack's
      staging store, for S3 and Swift) before a pool can read it.
    - `scopes`: which hosts reach a pool of it (CloudStack's host, cluster or zone
      scope); `pool add --scope` outside this set is refused.
    - `disk_io`: False for the simulator, which writes nothing and says so.
    """

    linked_clones: bool
    native_snapshots: bool
    needs_staging_cache: bool
    scopes: frozenset[str]
    disk_io: bool = True
    #: whether a volume on it can be snapshotted at all (natively or by the
    #: agent's `qemu-img`); a managed LUN cannot
    snapshots: bool = True

    def recorded(self) -> dict[str, bool]:
        """The flags a pool records when it is added (`StoragePool.can`)."""
        return {k: v for k, v in asdict(self).items() if isinstance(v, bool)}


@dataclass(frozen=True)
class Location:
    """A validated location, in the form the ledger records."""

    provider: str  # the provider's name, e.g. "filesystem"
    recorded_as: str  # the pool's type or the store's providername, e.g. "NFS"
    path: str  # the canonical location (an absolute path for directories)
    #: what the provider declared it can do, recorded with the pool
    capabilities: Mapping[str, bool] = field(default_factory=dict)
    #: where on the backend its objects live (`Provider.place`); two pools on
    #: one place would be one set of objects, so `pool add` refuses the second.
    #: None: its objects never meet another pool's.
    place: str | None = None


#: `Provider.place`: the canonical location and the name of its credentials (None
#: when it names none; the provider resolves them if it needs them) to the
#: backend place, or None (nothing shared, ever).
Placer = Callable[[str, str | None], str | None]


def same_location(location: str, credentials: str | None) -> str:
    """The default `Provider.place`: the canonical location itself, so a provider
    that says nothing still refuses two pools on one exact location."""
    return location


def never_shared(location: str, credentials: str | None) -> None:
    """`Provider.place` of a provider whose every pool keeps its objects apart
    (under the pool's own uuid) or keeps none (the simulator)."""
    return None


@dataclass(frozen=True)
class Provider:
    """One backend: how its locations are checked, what it can do, who executes it.

    Fields, and why each exists:
    - `name`: what an operator types (`pool add --type`, `store add --provider`)
      and what an entry point is called; lower case, unique among installed ones.
    - `roles`: whether it serves pools, image stores, or both; `locate` refuses a
      provider in the wrong role before anything is written.
    - `recorded_as`: the name the ledger records and commands carry (CloudStack's
      `StoragePoolType` for pools, `image_store.image_provider_name` for stores), so
      the KVM agent finds the provider again from `poolType` or `providerName`.
    - `schemes`: the URL schemes its locations use; a plain absolute path counts as
      `file`. Checked first, so an `s3://` URL never reaches a directory check and
      the refusal can name the provider that would take it.
    - `validate`: the location (its scheme already accepted) to its canonical form,
      or `InvalidInput` saying why not. Runs before anything is written, so a
      missing mount or a mistyped URL is refused instead of failing every command
      later.
    - `capabilities`: what it can do (see `Capabilities`).
    - `driver`: the agent-side half that executes commands on it (`Driver`).
    - `summary`: one line for `storctl provider list`, naming CloudStack's concept.
    - `credentials`: whether a location of it needs credentials (`--credentials
      NAME`, resolved by `executors.credentials`, never recorded but by name).
    - `check`: given the canonical location and the resolved credentials, reach
      the backend and refuse (`InvalidInput`) what does not answer or refuses the
      credentials, before anything is written. None: nothing to reach.
    - `inventory`: list what one pool holds on the backend (`Lister`: the pool,
      its resolved credentials and the runner), for `storctl reconcile` to set
      against the ledger; None: the backend cannot be listed (the simulator),
      and reconcile refuses its pools with exit 2.
    - `place`: the backend place a canonical location keeps its objects in,
      given the credentials' name (`Placer`): the same string for two
      spellings of one place (a directory through a symlink, a Ceph cluster by
      any of its monitors), so `pool add` refuses a second pool there. Runs
      after `check`, at the edge: it may reach the backend.
    """

    name: str
    roles: frozenset[Role]
    recorded_as: str
    schemes: tuple[str, ...]
    validate: Callable[[str], str]
    capabilities: Capabilities
    driver: Driver
    summary: str
    credentials: bool = False
    check: Callable[[str, Mapping[str, Any]], None] | None = None
    inventory: Lister | None = None
    place: Placer = same_location

    def serves(self, role: Role) -> bool:
        return role in self.roles
