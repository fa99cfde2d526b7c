"""Global configuration (`configuration` table): CloudStack's keys and defaults.

Every change is an event on the one Config aggregate, so `storctl audit` shows who
changed the over-provisioning factor, and `replay` reproduces the decisions made
under the values of that moment.
"""

from __future__ import annotations

from typing import Any

from ledger.aggregate import Ctx, StorctlAggregate
from ledger.allocation.chain import ALGORITHMS
from ledger.errors import InvalidInput
from ledger.values import derived_id

CONFIG_ID = derived_id("configuration")

#: key -> (default, type, description); the defaults are CloudStack's (but for
#: `concurrent.snapshots.threshold.perhost`, NULL there: unlimited, 2 here, so
#: that snapshots, which read whole disks, leave a host room for its other work).
DEFAULTS: dict[str, tuple[Any, type, str]] = {
    "storage.overprovisioning.factor": (
        2.0,
        float,
        "multiplier of capacity for thin pools",
    ),
    "pool.storage.allocated.capacity.disablethreshold": (
        0.85,
        float,
        "allocated share above which a pool is skipped",
    ),
    "pool.storage.capacity.disablethreshold": (
        0.85,
        float,
        "used (physical) share above which a pool is skipped",
    ),
    "vm.allocation.algorithm": ("random", str, "pool ordering"),
    "copy.volume.wait": (10800, int, "seconds a volume copy may take"),
    "primary.storage.download.wait": (
        10800,
        int,
        "seconds a template copy to primary may take",
    ),
    "backup.snapshot.wait": (21600, int, "seconds a snapshot backup may take"),
    "create.private.template.from.volume.wait": (10800, int, "template from volume"),
    "create.private.template.from.snapshot.wait": (
        10800,
        int,
        "template from snapshot",
    ),
    "wait": (1800, int, "seconds any other command may take"),
    "snapshot.delta.max": (16, int, "deltas before the next full snapshot"),
    "snapshot.backup.to.secondary": (
        True,
        bool,
        "back snapshots up to the image store; false: a pool that snapshots "
        "natively (rbd) keeps them on primary only",
    ),
    "custom.diskoffering.size.min": (1 << 20, int, "smallest volume size in bytes"),
    "storage.cleanup.enabled": (True, bool, "garbage collect unused template copies"),
    "template.url.allowed.roots": (
        "",
        str,
        "directories file:// template URLs may name, comma separated (none: refused)",
    ),
    "secstorage.allowed.internal.sites": (
        "",
        str,
        "internal hosts or networks (CIDR) template URLs may name, comma separated",
    ),
    "concurrent.snapshots.threshold.perhost": (
        2,
        int,
        "snapshot commands (take, back up) a host runs at once; the rest queue"
        " (0: no limit but the next)",
    ),
    "concurrent.commands.threshold.perhost": (
        5,
        int,
        "commands a host runs at once (an agent's workers); the rest queue"
        " (0: no limit)",
    ),
    "storage.cache.size": (
        50 << 30,
        int,
        "bytes a staging cache holds before its least recently used copies go",
    ),
}


def parse_value(key: str, text: str) -> Any:
    if key not in DEFAULTS:
        raise InvalidInput("configuration key", key, "not a known key")
    _, kind, _ = DEFAULTS[key]
    try:
        if kind is bool:
            if text.lower() not in ("true", "false"):
                raise ValueError(text)
            return text.lower() == "true"
        value = kind(text)
    except ValueError:
        raise InvalidInput(key, text, f"expected {kind.__name__}") from None
    if kind in (int, float) and value < 0:
        raise InvalidInput(key, text, "must not be negative")
    if key == "vm.allocation.algorithm" and value not in ALGORITHMS:
        raise InvalidInput(key, text, f"expected one of {', '.join(ALGORITHMS)}")
    if key.endswith("disablethreshold") and not 0 < value <= 1:
        raise InvalidInput(key, text, "a share between 0 and 1")
    return value


class Config(StorctlAggregate):
    TOPIC = "storctl.Config"

    class Event(StorctlAggregate.Event):
        TOPIC = "storctl.Config.Event"

    class Started(StorctlAggregate.Created, Event):
        TOPIC = "storctl.Config.Started"

    class ValueSet(Event):
        TOPIC = "storctl.Config.ValueSet"
        key: str
        value: Any
        previous: Any

        def apply(self, aggregate: Any) -> None:
            aggregate.values[self.key] = self.value

    def __init__(self, *, actor: str, job_id: str, causation_id: str) -> None:
        self.values: dict[str, Any] = {}

    @classmethod
    def start(cls, ctx: Ctx) -> Config:
        return cls.create(cls.Started, ctx, id=CONFIG_ID)

    def get(self, key: str) -> Any:
        if key not in DEFAULTS:
            raise InvalidInput("configuration key", key, "not a known key")
        return self.values.get(key, DEFAULTS[key][0])

    def set(self, ctx: Ctx, key: str, text: str) -> None:
        value = parse_value(key, text)
        self.emit(self.ValueSet, ctx, key=key, value=value, previous=self.get(key))


class Settings:
    """Read-only view used when no Config aggregate was ever saved: the defaults."""

    def __init__(self, values: dict[str, Any] | None = None) -> None:
        self.values = values or {}

    def get(self, key: str) -> Any:
        return self.values.get(key, DEFAULTS[key][0])
