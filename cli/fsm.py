"""`storctl fsm list` and `fsm show`: the state machines storctl enforces.

CloudStack's four tables (volume, snapshot, objectinstore, template) and storctl's
own four (pool, vm, host, job), all from `ledger.fsm.SPECS`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import click

from cli.output import emit
from ledger.errors import InvalidInput
from ledger.fsm import SPECS, Spec

LIST_COLUMNS = ["kind", "name", "source", "states", "triggers", "transitions"]


@click.group()
def cli() -> None:
    """The state machines: the tables every transition is checked against.

    \b
    Example:
      storctl fsm list
      storctl fsm show volume -o json
      storctl fsm show snapshot --png snapshot.png
    """


def to_dot(spec: Spec) -> str:
    lines = [
        f'digraph "{spec.kind}" {{',
        "  rankdir=LR;",
        "  node [shape=box, style=rounded];",
    ]
    for state in spec.states:
        shape = ', style="rounded,dashed"' if state.name in spec.transitional else ""
        lines.append(f'  "{state.name}" [label="{state.name}"{shape}];')
    for source, trigger, dest in spec.table:
        lines.append(f'  "{source}" -> "{dest}" [label="{trigger}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


@cli.command("show")
@click.argument("kind", type=click.Choice(sorted(SPECS), case_sensitive=False))
@click.option(
    "--png",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also draw the machine to this PNG file (as `history --png`).",
)
@click.option(
    "--svg",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also draw the machine to this SVG file.",
)
@click.option(
    "--dot",
    "dot_file",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="Also write its graphviz source to this file (`-`: stdout, alone).",
)
@click.pass_context
def show(
    ctx: click.Context,
    kind: str,
    png: Path | None,
    svg: Path | None,
    dot_file: Path | None,
) -> None:
    """Show a state machine: every (from, trigger, to) its table allows.
    KIND is one of `storctl fsm list`'s kinds.

    \b
    Example:
      storctl fsm show volume -o json | jq '.transitions | length'
      storctl fsm show snapshot --png snapshot.png
    """
    spec = SPECS[kind.lower()]
    from cli.context import app
    from cli.output import say

    source = to_dot(spec)
    if dot_file is not None and str(dot_file) == "-":
        click.echo(source, nl=False)
        return
    if dot_file is not None:
        dot_file.write_text(source)
    for fmt, target in (("png", png), ("svg", svg)):
        if target is not None:
            _draw(source, fmt, target)
            say(f"{spec.kind} machine drawn to {target}")
    fmt = app(ctx).output
    if fmt == "json":
        click.echo(
            json.dumps(
                {
                    "kind": spec.kind,
                    "states": [s.name for s in spec.states],
                    "transitional": sorted(spec.transitional),
                    "transitions": [list(row) for row in spec.table],
                },
                indent=2,
            )
        )
    else:
        rows = [{"from": f, "trigger": t, "to": d} for f, t, d in spec.table]
        emit(fmt, rows, ["from", "trigger", "to"])


def _draw(source: str, fmt: str, target: Path) -> None:
    """Graphviz `dot` turns the source into `fmt` at `target`."""
    dot = shutil.which("dot")
    if dot is None:
        raise InvalidInput(f"--{fmt}", str(target), "graphviz 'dot' is not installed")
    # argv list, fixed executable: no shell, no user text in the command line.
    subprocess.run(
        [dot, f"-T{fmt}", "-o", str(target)], input=source.encode(), check=True
    )


@cli.command("list")
@click.pass_context
def list_(ctx: click.Context) -> None:
    """List every state machine: the KIND `fsm show` takes, whose table it is
    (CloudStack's, or storctl's own), and how many states, triggers and
    transitions it has.

    \b
    Example:
      storctl fsm list -o json | jq '.[] | select(.source == "storctl") | .kind'
    """
    from cli.context import app

    rows = [
        {
            "kind": key,
            "name": spec.kind,
            "source": spec.source,
            "states": len(spec.states),
            "triggers": len({trigger for _, trigger, _ in spec.table}),
            "transitions": len(spec.table),
        }
        for key, spec in SPECS.items()
    ]
    emit(app(ctx).output, rows, LIST_COLUMNS)
