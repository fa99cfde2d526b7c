"""`storctl host`: hypervisor hosts (CloudStack's `host` table)."""

from __future__ import annotations

import click

from cli.completion import names
from cli.context import app
from cli.output import emit
from ledger.values import HostState, Hypervisor, parse_enum

COLUMNS = ["id", "name", "zoneid", "clusterid", "hypervisor", "state"]


@click.group()
def cli() -> None:
    """Hypervisor hosts: the endpoints that run agent commands.

    \b
    Example:
      storctl host add kvm-01 --zone z1 --cluster c1 --hypervisor kvm
      storctl host list
    """


@cli.command("add")
@click.argument("name")
@click.option("--zone", required=True, help="Zone the host is in.")
@click.option("--cluster", required=True, help="Cluster the host belongs to.")
@click.option(
    "--hypervisor",
    default="kvm",
    show_default=True,
    help="kvm (real qemu-img) or simulator (no disk I/O, fault injection).",
)
def add(name: str, zone: str, cluster: str, hypervisor: str) -> None:
    """Register a host.

    \b
    Example:
      storctl host add kvm-01 --zone z1 --cluster c1
    """
    from ledger.usecases import infrastructure

    a = app()
    kind = parse_enum(Hypervisor, hypervisor, "hypervisor")
    host = infrastructure.register_host(a.ledger, a.ctx(), name, zone, cluster, kind)
    _show(str(host.id))


@cli.command("list")
def list_() -> None:
    """List hosts.

    \b
    Example:
      storctl -o json host list
    """
    from projections.queries import list_hosts

    a = app()
    with a.reader() as r:
        emit(a.output, list_hosts(r), COLUMNS)


@cli.command("show")
@click.argument("ref", metavar="ID", shell_complete=names("host"))
def show(ref: str) -> None:
    """Show one host, by id or name.

    \b
    Example:
      storctl host show kvm-01
    """
    _show(ref)


def _set_state(ref: str, state: HostState) -> None:
    from ledger.usecases import infrastructure

    a = app()
    host = infrastructure.set_host_state(a.ledger, a.ctx(), ref, state)
    _show(str(host.id))


@cli.command("disable")
@click.argument("ref", metavar="ID", shell_complete=names("host"))
def disable(ref: str) -> None:
    """Disable a host: it is no longer chosen as an endpoint.

    \b
    Example:
      storctl host disable kvm-01
    """
    _set_state(ref, HostState.Disabled)


@cli.command("enable")
@click.argument("ref", metavar="ID", shell_complete=names("host"))
def enable(ref: str) -> None:
    """Enable a disabled host.

    \b
    Example:
      storctl host enable kvm-01
    """
    _set_state(ref, HostState.Up)


def _show(ref: str) -> None:
    from projections.queries import find

    a = app()
    with a.reader() as r:
        emit(a.output, find(r, "host", ref), COLUMNS)
