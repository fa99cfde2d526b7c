"""`storctl provider`: the installed storage providers (CloudStack's
`listStorageProviders`), each with its roles, URL schemes and capabilities.

A provider comes from an entry point in the group `storctl.providers`; one that
failed to load is listed too, with its error, so a broken plug-in is seen here
instead of failing every command. No database is opened.
"""

from __future__ import annotations

from typing import Any

import click

from cli.context import app
from cli.output import emit
from executors.providers.driver import Operation
from executors.providers.provider import SCOPES, Provider
from executors.providers.registry import BrokenEntryPoint, installed
from ledger.errors import NotFound

COLUMNS = [
    "name",
    "roles",
    "schemes",
    "linkedclones",
    "nativesnapshots",
    "stagingcache",
    "scopes",
    "diskio",
    "error",
]


@click.group()
def cli() -> None:
    """Storage providers: the backends pools and image stores are added on.

    \b
    Example:
      storctl provider list
      storctl -o json provider show nfs
    """


@cli.command("list")
def list_() -> None:
    """List the installed providers, broken ones with their error.

    \b
    Example:
      storctl provider list
    """
    registry = installed()
    rows = [
        _row(p, registry.origins.get(p.name, "")) for p in registry.providers.values()
    ]
    rows += [_broken_row(b) for b in registry.broken]
    emit(app().output, sorted(rows, key=lambda r: str(r["name"])), COLUMNS)


@cli.command("show")
@click.argument("name")
def show(name: str) -> None:
    """Show one provider: what it takes, what it can do, which operations it runs.

    \b
    Example:
      storctl provider show filesystem
    """
    registry = installed()
    key = name.strip().lower()
    provider = registry.providers.get(key)
    if provider is not None:
        row = _row(provider, registry.origins.get(provider.name, ""))
    else:
        broken = next((b for b in registry.broken if b.name.lower() == key), None)
        if broken is None:
            raise NotFound("provider", name)
        row = _broken_row(broken)
    emit(app().output, row)


def _row(provider: Provider, origin: str) -> dict[str, Any]:
    caps = provider.capabilities
    handlers = provider.driver.handlers
    return {
        "name": provider.name,
        "roles": sorted(role.value for role in provider.roles),
        "recordedas": provider.recorded_as,
        "schemes": list(provider.schemes),
        "linkedclones": caps.linked_clones,
        "nativesnapshots": caps.native_snapshots,
        "stagingcache": caps.needs_staging_cache,
        "scopes": [scope for scope in SCOPES if scope in caps.scopes],
        "diskio": caps.disk_io,
        "driver": provider.driver.name,
        "operations": [op.value for op in Operation if op in handlers],
        "summary": provider.summary,
        "entrypoint": origin,
        "error": None,
    }


def _broken_row(broken: BrokenEntryPoint) -> dict[str, Any]:
    """The same fields, empty but for what is known: the name, where, and why."""
    return {
        "name": broken.name,
        "roles": [],
        "recordedas": None,
        "schemes": [],
        "linkedclones": None,
        "nativesnapshots": None,
        "stagingcache": None,
        "scopes": [],
        "diskio": None,
        "driver": None,
        "operations": [],
        "summary": None,
        "entrypoint": broken.value,
        "error": broken.error,
    }
