"""The installed providers, found through the entry-point group `storctl.providers`.

CloudStack's `DataStoreProviderManager` loads every provider bean at start-up. Here a
provider is a `Provider` value named by an entry point (`name = "module:ATTRIBUTE"`
in `[project.entry-points."storctl.providers"]`), so a third party adds a backend
with `pip install` and no file of storctl changes. An entry point that fails to load,
names something else than a `Provider`, or clashes with one already loaded is kept
as `BrokenEntryPoint` and reported (`storctl provider list`, and in any refusal that
names it) instead of crashing every command.

`locate` is the one check a location passes before anything is written: the
provider exists in that role, takes the URL's scheme, and its `validate` accepts it;
it also asks the provider where on the backend the location keeps its objects
(`Location.place`), for the use case to refuse a second pool there.
"""

from __future__ import annotations

import functools
import importlib.metadata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from executors.credentials import resolve as resolve_credentials
from executors.providers.driver import AgentFailure
from executors.providers.locations import scheme_of
from executors.providers.provider import Location, Provider, Role
from ledger.commands import ImageStoreTO, PrimaryDataStoreTO
from ledger.errors import InvalidInput

GROUP = "storctl.providers"
_OWN_DIST = "storctl"
_HINT = "see storctl provider list"
#: What an operator calls a provider's name in each role (`pool add --type`,
#: `store add --provider`), for refusals that say which input was wrong.
_ASKED_AS = {Role.PRIMARY: "pool type", Role.IMAGE: "store provider"}


@dataclass(frozen=True)
class BrokenEntryPoint:
    """An entry point of the group that gave no usable provider, and why."""

    name: str
    value: str
    error: str


@dataclass(frozen=True)
class Registry:
    """Providers by name, the entry points that failed, and where each came from."""

    providers: Mapping[str, Provider]
    broken: tuple[BrokenEntryPoint, ...] = ()
    origins: Mapping[str, str] = field(default_factory=dict)

    def names(self, role: Role | None = None) -> list[str]:
        return sorted(
            name for name, p in self.providers.items() if role is None or p.serves(role)
        )

    def find(self, role: Role, name: str) -> Provider:
        """The provider called `name` serving `role`, or a refusal saying what is."""
        key = name.strip().lower()
        provider = self.providers.get(key)
        if provider is not None and provider.serves(role):
            return provider
        installed = ", ".join(self.names(role)) or "none"
        broken = next((b for b in self.broken if b.name.lower() == key), None)
        if broken is not None:
            why = f"provider {broken.name} is installed but broken: {broken.error}"
        elif provider is not None:
            roles = " and ".join(sorted(r.value for r in provider.roles))
            why = f"provider {provider.name} serves {roles} stores, not {role.value}"
        else:
            why = "no such provider installed"
        raise InvalidInput(
            _ASKED_AS[role],
            name,
            f"{why}; {role.value} providers: {installed} ({_HINT})",
        )

    def locate(
        self,
        role: Role | str,
        provider_name: str,
        location: str,
        *,
        scope: str | None = None,
        credentials: str | None = None,
    ) -> Location:
        """`location` checked by the provider, in the form the ledger records;
        with the credentials it names resolved and the backend reached, when the
        provider says how (`Provider.check`)."""
        role = Role(role)
        provider = self.find(role, provider_name)
        scheme = scheme_of(location)
        if scheme not in provider.schemes:
            takers = [
                p.name
                for p in self.providers.values()
                if p.serves(role) and scheme in p.schemes
            ]
            if takers:
                why = f"provider {provider.name} does not take {scheme}:// locations; "
                why += f"{', '.join(sorted(takers))} does"
            else:
                installed = ", ".join(self.names(role)) or "none"
                why = (
                    f"no installed {role.value} provider takes {scheme}:// locations"
                    f" (installed: {installed}; {_HINT})"
                )
            raise InvalidInput("location", location, why)
        canonical = provider.validate(location)
        if scope is not None and scope.lower() not in provider.capabilities.scopes:
            reach = ", ".join(sorted(provider.capabilities.scopes))
            raise InvalidInput(
                "scope", scope, f"provider {provider.name} reaches only {reach} scope"
            )
        if provider.credentials and credentials is None:
            raise InvalidInput(
                "credentials",
                "",
                f"provider {provider.name} needs --credentials NAME "
                "(a table of the credentials profile)",
            )
        if credentials is not None and provider.check is not None:
            provider.check(canonical, resolve_credentials(credentials))
        return Location(
            provider.name,
            provider.recorded_as,
            canonical,
            provider.capabilities.recorded(),
            provider.place(canonical, credentials),
        )

    def for_store(self, store: PrimaryDataStoreTO | ImageStoreTO) -> Provider:
        """The provider a command's store belongs to (its `poolType` or
        `providerName`, which is a provider's name or what it records as)."""
        if isinstance(store, PrimaryDataStoreTO):
            role, recorded = Role.PRIMARY, store.poolType
        else:
            role, recorded = Role.IMAGE, store.providerName
        key = recorded.lower()
        for provider in self.providers.values():
            if provider.serves(role) and key in (
                provider.name,
                provider.recorded_as.lower(),
            ):
                return provider
        broken = next((b for b in self.broken if b.name.lower() == key), None)
        if broken is not None:
            raise AgentFailure(
                f"provider {broken.name} of store {store.name} is broken: "
                f"{broken.error}"
            )
        installed = ", ".join(self.names(role)) or "none"
        raise AgentFailure(
            f"unknown provider {recorded!r} of store {store.name} "
            f"(installed {role.value} providers: {installed})"
        )


def load(entry_points: Iterable[importlib.metadata.EntryPoint]) -> Registry:
    """The providers `entry_points` name; the failures kept, never raised."""
    providers: dict[str, Provider] = {}
    origins: dict[str, str] = {}
    broken: list[BrokenEntryPoint] = []
    for ep in sorted(entry_points, key=_load_order):
        loaded: object = None
        try:
            loaded = ep.load()
        except Exception as exc:  # a third party's bug must not stop every command
            error = _one_line(f"{type(exc).__name__}: {exc}")
        else:
            error = _refusal(loaded, ep.name, providers)
        if error or not isinstance(loaded, Provider):
            broken.append(BrokenEntryPoint(ep.name, ep.value, error))
            continue
        providers[loaded.name] = loaded
        dist = ep.dist
        origins[loaded.name] = ep.value + (
            f" ({dist.name} {dist.version})" if dist is not None else ""
        )
    return Registry(dict(sorted(providers.items())), tuple(broken), origins)


@functools.cache
def installed() -> Registry:
    """The providers installed in this environment, loaded once per process."""
    return load(importlib.metadata.entry_points(group=GROUP))


def locate(
    role: Role | str,
    provider_name: str,
    location: str,
    *,
    scope: str | None = None,
    credentials: str | None = None,
) -> Location:
    """`Registry.locate` on the installed providers: call it before writing a pool
    or a store, so a location no provider accepts is refused with nothing written."""
    return installed().locate(
        role, provider_name, location, scope=scope, credentials=credentials
    )


def _load_order(ep: importlib.metadata.EntryPoint) -> tuple[bool, str, str]:
    """storctl's own providers first, so a plug-in cannot take a built-in's name;
    then by name, so which of two clashing plug-ins wins never depends on chance."""
    dist = ep.dist.name if ep.dist is not None else None
    return (dist != _OWN_DIST, ep.name, ep.value)


def _refusal(loaded: object, name: str, providers: Mapping[str, Provider]) -> str:
    """Why `loaded` (entry point `name`) cannot join `providers`; "" if it can."""
    if not isinstance(loaded, Provider):
        return f"names a {type(loaded).__name__}, not a storctl Provider"
    if loaded.name != name:
        return f"entry point {name} names provider {loaded.name!r}"
    if name in providers:
        return f"provider name {name} is taken"
    for role in loaded.roles:
        for other in providers.values():
            if other.serves(role) and other.recorded_as.lower() in (
                name,
                loaded.recorded_as.lower(),
            ):
                return (
                    f"records {role.value} stores as {loaded.recorded_as}, "
                    f"as provider {other.name} does"
                )
    return ""


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= 300 else line[:297] + "..."
