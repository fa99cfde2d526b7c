"""`storctl simulator`: fault injection on simulator hosts (tests and drills)."""

from __future__ import annotations

import click

from cli.context import app
from cli.output import emit


@click.group()
def cli() -> None:
    """Make a simulator host fail, hang or delay a command type, N times.

    \b
    Example:
      storctl simulator configure --host sim-1 --command CreateObjectCommand \\
              --fail "insufficient space" --count 1
    """


@cli.command("configure")
@click.option("--host", required=True, help="Simulator host id or name.")
@click.option("--command", "command", required=True, help="e.g. CopyCommand.")
@click.option("--fail", "fail", help="Answer result=false with these details.")
@click.option("--hang", is_flag=True, help="Never answer (the wait times it out).")
@click.option("--delay", type=float, help="Answer after this many seconds.")
@click.option("--count", type=int, help="Only the next N commands (default: all).")
@click.option(
    "--target",
    help="Only commands on this volume, snapshot or template (name or id).",
)
def configure(
    host: str,
    command: str,
    fail: str | None,
    hang: bool,  # noqa: FBT001
    delay: float | None,
    count: int | None,
    target: str | None,
) -> None:
    """Plan how a simulator host answers one command type.

    \b
    Example:
      storctl simulator configure --host sim-1 --command CopyCommand --hang
      storctl simulator configure --host sim-1 --command CreateObjectCommand \\
              --hang --count 1 --target vol-a
    """
    from ledger.errors import InvalidInput
    from ledger.usecases import simulator

    modes = [
        m
        for m, on in (
            ("fail", fail is not None),
            ("hang", hang),
            ("delay", delay is not None),
        )
        if on
    ]
    if len(modes) != 1:
        raise InvalidInput(
            "mode",
            "+".join(modes) or "none",
            "give exactly one of --fail, --hang, --delay",
        )
    a = app()
    plan = simulator.configure_simulator(
        a.ledger,
        a.ctx(),
        host,
        command,
        modes[0],
        details=fail or "",
        delay=delay or 0.0,
        count=count,
        target=target,
    )
    emit(a.output, {"host": host, "faults": plan.faults})


@cli.command("clear")
@click.option("--host", help="Only this host (default: every simulator host).")
def clear(host: str | None) -> None:
    """Forget every planned fault.

    \b
    Example:
      storctl simulator clear --host sim-1
    """
    from ledger.usecases import simulator

    a = app()
    cleared = simulator.clear_simulator(a.ledger, a.ctx(), host)
    emit(a.output, {"cleared": cleared})
