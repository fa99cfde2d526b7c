"""`storctl replay`, `replay verify`, `export` and `import`: the log as evidence.

`replay --until POS|TIME --into FILE` writes the ledger as it was into a new file
that every other command reads with `--db FILE`; `replay verify` re-asks today's
state machines and workflows about every recorded event; `export` and `import`
move a log (or an incident's part of it) as JSON lines. Like `cli/audit.py`, `cli`
is one `ByName` command per `NOUNS` entry.
"""

from __future__ import annotations

import contextlib
from functools import partial
from pathlib import Path
from typing import IO

import click

from cli.audit import ByName
from cli.context import app
from cli.output import emit, say
from ledger.errors import InvalidInput

VERIFY_COLUMNS = [
    "position",
    "check",
    "objecttype",
    "objectid",
    "event",
    "expected",
    "recorded",
]


@click.group("replay", invoke_without_command=True)
@click.option(
    "--until",
    metavar="POS|TIME",
    help="Last position to keep, or a time: 2h, 30m, yesterday, today, ISO 8601.",
)
@click.option(
    "--into",
    metavar="FILE",
    help="The new SQLite ledger file to write (must not exist).",
)
@click.pass_context
def replay(ctx: click.Context, until: str | None, into: str | None) -> None:
    """The tables as they were at a position or a time, in a new ledger file:
    every event up to then, copied in order, its projections caught up. Read it
    with any command and `--db FILE`. Its followers are marked done, so nothing
    recorded there is sent to an agent again. The copy is one transaction: one
    that fails or is interrupted removes the file; a process killed outright
    leaves a file that opens as an empty ledger. On a terminal, a progress bar
    on stderr.

    \b
    Example:
      storctl replay --until 120 --into /tmp/before.db
      storctl replay --until 2025-01-31T10:00:00Z --into /tmp/then.db
      storctl --db /tmp/before.db volume list
      storctl replay verify
    """
    if ctx.invoked_subcommand is not None:
        if until or into:
            raise click.UsageError("--until/--into go without a subcommand")
        return
    if not until or not into:
        raise click.UsageError("replay needs --until POS|TIME and --into FILE")
    _replay(until, into)


def _replay(until: str, into: str) -> None:
    from cli.bootstrap import open_ledger
    from cli.progress import ProgressBar
    from ledger.store.database import parse_db
    from projections.replay import replay_to_file, resolve_until

    target_db = parse_db(into)
    if target_db.kind != "sqlite" or target_db.path is None:
        raise InvalidInput("--into", into, "a new SQLite file")
    path = target_db.path
    if path.exists():
        raise InvalidInput("--into", into, "already exists; replay writes a new file")
    a = app()
    stop = resolve_until(a.ledger, until)
    head = a.ledger.recorder.max_notification_id() or 0
    if stop > head:
        raise InvalidInput("--until", until, f"beyond the last position ({head})")
    bar = ProgressBar.shared()
    try:
        copied = replay_to_file(
            a.ledger,
            lambda: open_ledger(into),
            stop,
            on_progress=partial(bar.update, "replay"),
        )
    except BaseException:
        bar.end()
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                Path(f"{path}{suffix}").unlink()
        raise
    say(f"replayed {copied} events (up to position {stop}) into {path}")
    emit(a.output, {"into": str(path), "until": stop, "events": copied})


@replay.command("verify")
def verify() -> None:
    """Today's code over every recorded event: each aggregate rebuilt, each state
    transition re-asked of CloudStack's tables, each workflow decision taken again
    with the recorded answers in place of the agents. Lists every divergence with
    its position; exit 3 when there is one, 0 when the log is clean.

    \b
    Example:
      storctl replay verify
      storctl -o json replay verify | jq '.[] | select(.check == "transition")'
    """
    from ledger.verify import verify as run_verify

    a = app()
    report = run_verify(a.ledger)
    emit(a.output, [d.as_row() for d in report.divergences], VERIFY_COLUMNS)
    counts = report.summary()
    say(
        f"verified {counts['events']} events, {counts['aggregates']} aggregates, "
        f"{counts['transitions']} transitions, {counts['answers']} answers: "
        f"{counts['divergences']} divergences"
    )
    if not report.clean:
        click.get_current_context().exit(3)


@click.command("export")
@click.option(
    "--since",
    metavar="T",
    help="Only events at or after T: a position, 2h, yesterday or an ISO time.",
)
@click.option("--object", "obj", metavar="ID", help="Only this object's events.")
@click.option("--job", metavar="J", help="Only this job's events.")
@click.option(
    "--with-history",
    is_flag=True,
    help="Add every earlier event of the objects selected, so the file imports.",
)
def export(
    since: str | None,
    obj: str | None,
    job: str | None,
    with_history: bool,  # noqa: FBT001 - click passes flags positionally
) -> None:
    """The event log as JSON lines on stdout, one stored event a line: position,
    originator_id, originator_version, topic, timestamp and the state as stored.

    \b
    Example:
      storctl export > ledger.jsonl
      storctl export --job 0b5e... --with-history > incident.jsonl
    """
    from projections.exchange import export_lines
    from projections.timeline import bound, resolve_job, resolve_object

    start = bound(since, "--since") if since else None
    a = app()
    object_id = None
    if obj or job:
        with a.reader() as r:
            object_id = resolve_object(r, obj) if obj else None
            job = resolve_job(r, job) if job else None
    for line in export_lines(
        a.ledger,
        since=start.moment if start else None,
        since_position=start.position if start else None,
        object_id=object_id,
        job=job,
        whole_objects=with_history,
    ):
        click.echo(line)


@click.command("import")
@click.argument("file", type=click.File("r", encoding="utf-8"))
def import_(file: IO[str]) -> None:
    """Import an exported log into the (empty) database named by --db, all or
    nothing: a malformed line, an unknown topic or a line out of order refuses
    the whole file (exit 2, naming the line). The projections are caught up.

    \b
    Example:
      storctl --db /tmp/incident.db import incident.jsonl
      storctl --db /tmp/incident.db volume list
    """
    from projections.exchange import import_lines

    a = app()
    name = getattr(file, "name", "import")
    count = import_lines(a.ledger, file, source=str(name))
    head = a.ledger.recorder.max_notification_id() or 0
    say(f"imported {count} events into {a.db.display}")
    emit(a.output, {"events": count, "head": head})


cli = ByName(
    {"replay": replay, "export": export, "import": import_},
    help=(
        "The log as evidence: replay (time travel, verify), export, import.\n\n"
        "\b\nExample:\n  storctl replay --until 120 --into /tmp/then.db\n"
        "  storctl export > ledger.jsonl"
    ),
)
