"""`storctl executor run`: the followers as a long-lived worker."""

from __future__ import annotations

import signal
import threading
from typing import Any

import click

from cli.context import app
from cli.output import say


@click.group()
def cli() -> None:
    """Run the followers (workflows, dispatcher, projections) as a worker.

    \b
    Example:
      storctl --db postgresql://postgres@db:5432/cloud executor run
      storctl --db postgresql://postgres@db:5432/cloud executor run --hosts kvm-01
    """


@cli.command("run")
@click.option("--once", is_flag=True, help="Process what is there, then exit.")
@click.option("--hosts", default="", help="Only the commands of these hosts (a,b).")
@click.option(
    "--max-failures",
    type=click.IntRange(min=0),
    default=30,
    show_default=True,
    help="Exit after this many database failures in a row (0: never).",
)
def run(once: bool, hosts: str, max_failures: int) -> None:  # noqa: FBT001 - click
    """Follow the notification log until interrupted (or until idle with --once).

    With --hosts the worker only runs those hosts' commands (start one on each KVM
    host against a shared PostgreSQL); without, it runs everything else.

    The database going away (a PostgreSQL restart) does not end the worker: it
    logs one line, waits (0.5 s doubling to 10 s) and starts again, until the
    database is back or --max-failures failures come in a row.

    \b
    Example:
      storctl executor run --once
      storctl --db postgresql://postgres@db:5432/cloud executor run --max-failures 0
    """
    from cli.db_failures import database_failure
    from executors.worker import keep_running

    a = app()
    host_set = {h.strip() for h in hosts.split(",") if h.strip()} or None
    stop = threading.Event()
    current: list[Any] = []

    def start() -> Any:
        current[:] = [a.engine(hosts=host_set)]
        return current[0]

    def _stop(signum: int, frame: object) -> None:
        stop.set()
        for engine in current:
            engine.interrupt.set()

    # Restored afterwards: run in-process (a test, a script), the caller's own
    # handling of Ctrl-C and SIGTERM must come back.
    before = {s: signal.signal(s, _stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        total = keep_running(
            start,
            stop,
            failing=database_failure,
            log=say,
            reset=a.close,  # the next start opens the ledger anew
            once=once,
            limit=max_failures,
        )
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)
    say(f"executor: {total} notifications read")
