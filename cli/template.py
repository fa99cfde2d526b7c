"""`storctl template`: templates (`vm_template`, `template_store_ref`)."""

from __future__ import annotations

import click

from cli.completion import names
from cli.context import app, operate
from cli.output import emit
from ledger.values import ImageFormat, parse_enum

COLUMNS = ["id", "name", "format", "size", "physicalsize", "state", "isready", "zoneid"]


@click.group()
def cli() -> None:
    """Templates: disk images VMs are deployed from.

    \b
    Example:
      storctl template register tiny --url file:///srv/img/tiny.qcow2 \\
              --format qcow2 --zone z1
    """


@cli.command("register")
@click.argument("name")
@click.option("--url", required=True, help="file://, http:// or https:// URL.")
@click.option(
    "--format",
    "fmt",
    required=True,
    type=click.Choice(["qcow2", "raw"], case_sensitive=False),
    help="Image format.",
)
@click.option("--zone", required=True, help="Zone whose image stores download it.")
@click.option("--checksum", help="SHA256 of the file (checked after download).")
def register(name: str, url: str, fmt: str, zone: str, checksum: str | None) -> None:
    """Register a template; every image store of the zone downloads it.

    The URL is http://, https://, or file:// under a directory that
    template.url.allowed.roots lists; a host inside the cloud's own networks
    (loopback, private, link-local) is refused unless
    secstorage.allowed.internal.sites lists it (CloudStack's rule).

    \b
    Example:
      storctl template register tiny --url file:///srv/img/tiny.qcow2 \\
              --format qcow2 --zone z1 --checksum 3b1f...
    """
    from ledger.usecases import templates

    a = app()
    if checksum is not None:
        digest = checksum.lower().removeprefix("sha256:")
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            from ledger.errors import InvalidInput

            raise InvalidInput("checksum", checksum, "expected a SHA256 hex digest")
    from executors.providers.url_check import check_resolved
    from ledger.url_policy import SITES_KEY, split_list

    check_resolved(url, split_list(a.ledger.settings().get(SITES_KEY)))
    job = templates.register_template(
        a.ledger,
        a.ctx(),
        name=name,
        url=url,
        fmt=parse_enum(ImageFormat, fmt, "format"),
        zone=zone,
        checksum=checksum,
    )
    operate(a, job, lambda: _show(str(job.object_id)))


@cli.command("create")
@click.argument("name")
@click.option("--from-volume", "volume", help="A Ready volume (its VM stopped).")
@click.option(
    "--from-snapshot",
    "snapshot",
    shell_complete=names("snapshot"),
    help="A backed-up snapshot.",
)
def create(name: str, volume: str | None, snapshot: str | None) -> None:
    """Make a template from a volume or a snapshot (on the zone's image store).

    \b
    Example:
      storctl template create golden --from-snapshot nightly
    """
    from ledger.errors import InvalidInput
    from ledger.usecases import templates

    a = app()
    if (volume is None) == (snapshot is None):
        raise InvalidInput(
            "template source",
            name,
            "give exactly one of --from-volume, --from-snapshot",
        )
    if volume is not None:
        from cli.volume import volume_id

        job = templates.create_template(
            a.ledger, a.ctx(), name=name, volume_id=volume_id(a, volume)
        )
    else:
        from projections.queries import find

        with a.reader() as r:
            sid = str(find(r, "snapshot", snapshot or "")["id"])
        job = templates.create_template(a.ledger, a.ctx(), name=name, snapshot_ref=sid)
    operate(a, job, lambda: _show(str(job.object_id)))


@cli.command("list")
def list_() -> None:
    """List templates.

    \b
    Example:
      storctl template list
    """
    from projections.queries import list_templates

    a = app()
    with a.reader() as r:
        emit(a.output, list_templates(r), COLUMNS)


@cli.command("show")
@click.argument("ref", metavar="ID", shell_complete=names("template"))
def show(ref: str) -> None:
    """Show one template, by id or name.

    \b
    Example:
      storctl template show tiny
    """
    _show(ref)


@cli.command("delete")
@click.argument("ref", metavar="ID", shell_complete=names("template"))
def delete(ref: str) -> None:
    """Delete a template and its image-store copies.

    \b
    Example:
      storctl template delete tiny
    """
    from ledger.usecases import templates

    a = app()
    job = templates.delete_template(a.ledger, a.ctx(), ref)
    operate(a, job, lambda: _show(str(job.object_id)))


def _show(ref: str) -> None:
    from projections.queries import find

    a = app()
    with a.reader() as r:
        emit(a.output, find(r, "template", ref), COLUMNS)
