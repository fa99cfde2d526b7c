"""`storctl history` and `storctl audit`: the event journal, one object or all.

Both are top-level commands (CLI.md), and `nouns.NOUNS` maps a name to a module's
`cli`, so `cli` here is `ByName`: one click command that becomes the command of
the name it was invoked under (`history` or `audit`). `cli/replay.py` uses it too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from cli.completion import names
from cli.context import app
from cli.output import emit, say
from cli.pictures import draw, picture_options, write_page
from ledger.errors import InvalidInput

KINDS = ("pool", "store", "host", "template", "vm", "volume", "snapshot")


class ByName(click.Command):
    """Several top-level commands behind one `NOUNS` entry each: the command of
    the name it is invoked under does the parsing and the work."""

    def __init__(self, commands: dict[str, click.Command], help: str) -> None:
        super().__init__(name=None, help=help)
        self.commands = commands

    def _for(self, info_name: str | None) -> click.Command:
        return self.commands.get(info_name or "", next(iter(self.commands.values())))

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        return self._for(info_name).make_context(info_name, args, parent, **extra)

    def get_short_help_str(self, limit: int = 45) -> str:
        return self._for(None).get_short_help_str(limit)


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    from projections.timeline import COLUMNS

    return [*COLUMNS, "duration"]


def shaped(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows as `--follow` streams them: JSON keeps `details` whole, a table row
    summarises it (a followed stream is drawn line by line, not fitted)."""
    from projections.timeline import public, summary

    data = [public(row) for row in rows]
    if app().output in ("table", "wide"):
        data = [{**row, "details": summary(row["details"])[:70]} for row in data]
    return data, _columns(data)


def show_rows(rows: list[dict[str, Any]]) -> None:
    """Rows in the chosen format: JSON and YAML keep `details` whole, CSV as
    JSON text, a table summarises it and names the objects."""
    from projections.timeline import public

    a = app()
    data = [public(row) for row in rows]

    def names() -> dict[str, str]:
        from projections.queries import names_by_id

        with a.reader() as r:
            return names_by_id(r)

    emit(a.output, data, _columns(data), names=names)


SINCE = "At or after T: a position, 30m, 2h, 7d, today, yesterday or an ISO time."
UNTIL = "At or before T: a position, 30m, 2h, 7d, today, yesterday or an ISO time."


@click.command("history")
@click.argument("kind", type=click.Choice(KINDS, case_sensitive=False))
@click.argument("ref", metavar="ID", shell_complete=names())
@click.option(
    "--job", metavar="J", shell_complete=names("job"), help="Only this job's events."
)
@click.option("--since", metavar="T", help=SINCE)
@click.option("--until", metavar="T", help=UNTIL)
@picture_options("the incident timeline of the object's jobs")
@click.option(
    "--html",
    "html_file",
    metavar="FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the timeline and the rows as one HTML page.",
)
@click.option(
    "--dot", "dot_file", type=click.Path(dir_okay=False, path_type=Path), hidden=True
)
def history(
    kind: str,
    ref: str,
    job: str | None,
    since: str | None,
    until: str | None,
    png_file: Path | None,
    svg_file: Path | None,
    html_file: Path | None,
    dot_file: Path | None,
) -> None:
    """One object's timeline: every event, the command sent, the answer and how
    long it took. --png/--svg/--html draw the jobs it took part in, time running
    down the page, one column per object; --job, --since and --until bound both
    the rows and the picture.

    \b
    Example:
      storctl history volume data-1
      storctl history volume data-1 --since 2h
      storctl history volume data-1 --png incident.png --since 2026-12-07T14:00:00Z
      storctl -o csv history pool gold > gold.csv
    """
    from projections.incident import dot, scoped
    from projections.queries import find
    from projections.timeline import resolve_job, rows, time_bound

    time_bound(since, "--since")  # refuse a malformed time before opening the db
    time_bound(until, "--until")
    a = app()
    with a.reader() as r:
        obj = find(r, kind.lower(), ref, or_gone=True)
        job_id = resolve_job(r, job) if job else None
        own = rows(r, object_id=obj["id"], job=job_id, since=since, until=until)
        if png_file or svg_file or html_file or dot_file:
            title = f"{kind.lower()} {obj.get('name') or obj['id']}: incident timeline"
            # with --job, the whole job (every object in it), not only this one's part
            whose = None if job_id else obj["id"]
            timeline = scoped(r, object_id=whose, job=job_id, since=since, until=until)
            source = dot(r, timeline, title)
            if dot_file:
                dot_file.write_text(source)
            for target in draw(source, png_file, svg_file):
                say(f"timeline drawn to {target}")
            if html_file:
                write_page(r, timeline, title, html_file)
                say(f"timeline written to {html_file}")
    show_rows(own)


@click.command("audit")
@click.option("--since", metavar="T", help=SINCE)
@click.option("--until", metavar="T", help=UNTIL)
@click.option("-n", "--last", type=click.IntRange(min=0), help="Only the newest N.")
@click.option("--reverse", is_flag=True, help="Newest first.")
@click.option(
    "-f", "--follow", is_flag=True, help="Then print new events as they come (^C)."
)
@click.option("--event", metavar="E", help="Only this event (e.g. CopyAnswered).")
@click.option("--object", "obj", metavar="ID", help="Only this object (id or name).")
@click.option(
    "--job", metavar="J", shell_complete=names("job"), help="Only this job's events."
)
@click.option("--actor", "who", metavar="A", help="Only events this actor caused.")
def audit(
    since: str | None,
    until: str | None,
    last: int | None,
    reverse: bool,  # noqa: FBT001 - click passes flags positionally
    follow: bool,  # noqa: FBT001
    event: str | None,
    obj: str | None,
    job: str | None,
    who: str | None,
) -> None:
    """The journal across objects: who did what, when, in which job, and what the
    agents answered (answers carry `duration`, seconds since their request).

    \b
    Example:
      storctl audit --since 2h --event CopyAnswered
      storctl audit -n 50 --reverse
      storctl audit --since yesterday --until today --actor alice
      storctl audit --follow --event CreateAnswered
      storctl -o json audit --job 0b5e...  --actor alice
    """
    from projections.timeline import bound, resolve_job, resolve_object, rows

    for text, what in ((since, "--since"), (until, "--until")):
        if text is not None:
            bound(text, what)  # refuse a malformed bound before opening the db
    if follow and reverse:
        raise InvalidInput("--reverse", "", "a followed journal grows at its end")
    a = app()
    with a.reader() as r:
        filters: dict[str, Any] = {
            "object_id": resolve_object(r, obj) if obj else None,
            "job": resolve_job(r, job) if job else None,
            "event": event,
            "actor": who,
            "since": since,
            "until": until,
        }
        found = rows(r, last=last, **filters)
        head = r.scalar("SELECT MAX(position) FROM event_journal") or 0
    if not follow:
        show_rows(found[::-1] if reverse else found)
        return
    from cli.follow import follow_rows

    follow_rows(found, head, lambda r, after: rows(r, after=after, **filters), shaped)


cli = ByName(
    {"history": history, "audit": audit},
    help=(
        "The event journal: `history KIND ID` (one object) and `audit` (all).\n\n"
        "\b\nExample:\n  storctl history volume data-1\n  storctl audit --job J"
    ),
)
