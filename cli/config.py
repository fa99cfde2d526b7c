"""`storctl config`: CloudStack's global configuration keys, each change an event;
and `config show`, this client's own settings (`cli.profiles`), which live in no
ledger and open none."""

from __future__ import annotations

import click

from cli.context import app
from cli.output import emit


@click.group()
def cli() -> None:
    """Global configuration (CloudStack's keys and defaults).

    \b
    Example:
      storctl config set storage.overprovisioning.factor 1
      storctl config get pool.storage.allocated.capacity.disablethreshold
      storctl --profile prod config show
    """


def _row(key: str, value: object) -> dict[str, object]:
    from ledger.config import DEFAULTS

    default, _, description = DEFAULTS[key]
    return {"name": key, "value": value, "default": default, "description": description}


@cli.command("list")
def list_() -> None:
    """List every key with its value and CloudStack's default.

    \b
    Example:
      storctl config list
    """
    from ledger.config import DEFAULTS

    a = app()
    settings = a.ledger.settings()
    emit(
        a.output,
        [_row(k, settings.get(k)) for k in sorted(DEFAULTS)],
        ["name", "value", "default", "description"],
    )


@cli.command("get")
@click.argument("key")
def get(key: str) -> None:
    """Show one key.

    \b
    Example:
      storctl config get vm.allocation.algorithm
    """
    a = app()
    emit(a.output, _row(key, a.ledger.settings().get(key)))


@cli.command("set")
@click.argument("key")
@click.argument("value")
def set_(key: str, value: str) -> None:
    """Set one key (recorded as an event with the previous value).

    \b
    Example:
      storctl config set vm.allocation.algorithm firstfit
    """
    from ledger.usecases import infrastructure

    a = app()
    config = infrastructure.set_config(a.ledger, a.ctx(), key, value)
    emit(a.output, _row(key, config.get(key)))


@cli.command("show")
def show() -> None:
    """This client's settings (not the ledger's keys: those are `config list`):
    db, output, actor, columns and the profile, each with where it came from
    (flag, env, profile NAME in FILE, default). A password in db is masked.

    \b
    Example:
      storctl --profile prod config show
      STORCTL_OUTPUT=csv storctl config show
    """
    a = app()
    assert a.client is not None, "the group resolves the client's settings"
    emit(a.output, a.client.rows(), ["setting", "value", "source"])
