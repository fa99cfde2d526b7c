"""`storctl report incident`: one job's incident as a page to attach to a ticket.

The same picture as `history --html` (`projections.incident`), bounded by the job
rather than an object: every object the job touched, its commands and answers,
the failure in red with the agent's words, and why each pool was taken or refused.
"""

from __future__ import annotations

from pathlib import Path

import click

from cli.completion import names
from cli.context import app
from cli.output import say
from cli.pictures import draw, picture_options, write_page


@click.group()
def cli() -> None:
    """Reports to attach to a ticket.

    \b
    Example:
      storctl report incident --job 0a44549e --html incident.html
    """


@cli.command("incident")
@click.option(
    "--job",
    metavar="J",
    required=True,
    shell_complete=names("job"),
    help="The job (full id or a unique prefix).",
)
@click.option(
    "--html",
    "html_file",
    metavar="FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The page: responsive timeline, rows linked to nodes, placements' why.",
)
@picture_options("the job's timeline")
@click.option("--since", metavar="T", help="Only events at or after this time.")
@click.option("--until", metavar="T", help="Only events at or before this time.")
def incident(
    job: str,
    html_file: Path | None,
    png_file: Path | None,
    svg_file: Path | None,
    since: str | None,
    until: str | None,
) -> None:
    """One job's incident: every object it touched, laid out by time, as one
    self-contained HTML page (and/or a PNG or SVG picture).

    \b
    Example:
      storctl report incident --job 0a44549e --html incident.html
      storctl report incident --job 0a44549e --png incident.png
    """
    from ledger.errors import InvalidInput
    from projections.incident import dot, scoped
    from projections.timeline import resolve_job, time_bound

    if not (html_file or png_file or svg_file):
        raise InvalidInput("--html", "", "say where the report goes (--html FILE)")
    time_bound(since, "--since")
    time_bound(until, "--until")
    with app().reader() as r:
        job_id = resolve_job(r, job)
        timeline = scoped(r, job=job_id, since=since, until=until)
        title = f"job {job_id[:8]}: incident"
        if timeline:
            command = r.scalar("SELECT job_cmd FROM async_job WHERE id = ?", [job_id])
            title = f"job {job_id[:8]} ({command or 'job'}): incident"
        for target in draw(dot(r, timeline, title), png_file, svg_file):
            say(f"timeline drawn to {target}")
        if html_file:
            write_page(r, timeline, title, html_file)
            say(f"report written to {html_file}")
