"""`storctl executor run`: the followers as a long-lived worker."""

from __future__ import annotations

import signal
import threading

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
def run(once: bool, hosts: str) -> None:  # noqa: FBT001 - click passes flags so
    """Follow the notification log until interrupted (or until idle with --once).

    With --hosts the worker only runs those hosts' commands (start one on each KVM
    host against a shared PostgreSQL); without, it runs everything else.

    \b
    Example:
      storctl executor run --once
    """
    a = app()
    host_set = {h.strip() for h in hosts.split(",") if h.strip()} or None
    engine = a.engine(hosts=host_set)
    stop = threading.Event()

    def _stop(signum: int, frame: object) -> None:
        stop.set()
        engine.interrupt.set()

    # Restored afterwards: run in-process (a test, a script), the caller's own
    # handling of Ctrl-C and SIGTERM must come back.
    before = {s: signal.signal(s, _stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        total = engine.run(once=once, stop=stop)
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)
    say(f"executor: {total} notifications read")
