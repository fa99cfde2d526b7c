"""`storctl vm`: virtual machines (`vm_instance`), as far as storage needs them."""

from __future__ import annotations

import click

from cli.completion import names
from cli.context import app, operate
from cli.output import emit
from ledger.values import parse_size

COLUMNS = ["id", "name", "zoneid", "hostid", "state", "templateid"]


@click.group()
def cli() -> None:
    """Virtual machines: deploying one creates its ROOT volume from a template.

    \b
    Example:
      storctl vm deploy web-1 --template tiny --zone z1
    """


@cli.command("deploy")
@click.argument("name")
@click.option(
    "--template",
    shell_complete=names("template"),
    required=True,
    help="Template id or name.",
)
@click.option("--zone", required=True, help="Zone to deploy in.")
@click.option(
    "--host",
    shell_complete=names("host"),
    help="Host id or name (default: first Up host of the zone).",
)
@click.option("--root-size", help="ROOT volume size (at least the template's).")
@click.option(
    "--tags", default="", help="Storage tags the ROOT volume's pool must carry."
)
def deploy(
    name: str,
    template: str,
    zone: str,
    host: str | None,
    root_size: str | None,
    tags: str,
) -> None:
    """Deploy a VM: allocate its ROOT volume, cache the template on the chosen pool,
    and clone it (CloudStack's deployVirtualMachine).

    \b
    Example:
      storctl vm deploy web-1 --template tiny --zone z1 --root-size 20G
    """
    from ledger.usecases import vms

    a = app()
    size = parse_size(root_size) if root_size is not None else None
    job = vms.deploy_vm(
        a.ledger,
        a.ctx(),
        name=name,
        template_ref=template,
        zone=zone,
        host_ref=host,
        root_size=size,
        tags=[t for t in tags.split(",") if t.strip()],
    )
    operate(a, job, lambda: _show(str(job.object_id)))


def _power(ref: str, trigger: str) -> None:
    from ledger.usecases import vms

    a = app()
    vm = vms.vm_power(a.ledger, a.ctx(), ref, trigger)
    _show(str(vm.id))


@cli.command("start")
@click.argument("ref", metavar="ID", shell_complete=names("vm"))
def start(ref: str) -> None:
    """Start a stopped VM.

    \b
    Example:
      storctl vm start web-1
    """
    _power(ref, "StartRequested")


@cli.command("stop")
@click.argument("ref", metavar="ID", shell_complete=names("vm"))
def stop(ref: str) -> None:
    """Stop a running VM (needed before a snapshot revert on KVM).

    \b
    Example:
      storctl vm stop web-1
    """
    _power(ref, "StopRequested")


@cli.command("destroy")
@click.argument("ref", metavar="ID", shell_complete=names("vm"))
@click.option("--expunge", is_flag=True, help="Also delete the ROOT volume's file now.")
def destroy(ref: str, expunge: bool) -> None:  # noqa: FBT001 - click passes flags so
    """Destroy a VM and its ROOT volume (detach data volumes first).

    \b
    Example:
      storctl vm destroy web-1 --expunge
    """
    from ledger.usecases import vms

    a = app()
    job = vms.destroy_vm(a.ledger, a.ctx(), ref, expunge=expunge)
    operate(a, job, lambda: _show(str(job.object_id)))


@cli.command("list")
def list_() -> None:
    """List VMs.

    \b
    Example:
      storctl vm list
    """
    from projections.queries import list_vms

    a = app()
    with a.reader() as r:
        emit(a.output, list_vms(r), COLUMNS, names=r)


@cli.command("show")
@click.argument("ref", metavar="ID", shell_complete=names("vm"))
def show(ref: str) -> None:
    """Show one VM, by id or name.

    \b
    Example:
      storctl vm show web-1
    """
    _show(ref)


def _show(ref: str) -> None:
    from projections.queries import find

    a = app()
    with a.reader() as r:
        emit(a.output, find(r, "vm", ref), COLUMNS, names=r)
