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
      storctl fsm show snapshot -o png --file snapshot.png
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
    "-o",
    "--output",
    "fmt",
    type=click.Choice(["table", "json", "csv", "dot", "png"]),
    default=None,
    help="table, json, csv, dot (graphviz source) or png (a picture).",
)
@click.option(
    "--file", "file_", type=click.Path(dir_okay=False), help="Where the png goes."
)
@click.pass_context
def show(ctx: click.Context, kind: str, fmt: str | None, file_: str | None) -> None:
    """Show a state machine: every (from, trigger, to) its table allows.
    KIND is one of `storctl fsm list`'s kinds.

    \b
    Example:
      storctl fsm show volume -o json | jq '.transitions | length'
    """
    spec = SPECS[kind.lower()]
    from cli.context import app

    fmt = fmt or app(ctx).output
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
    elif fmt == "dot":
        click.echo(to_dot(spec), nl=False)
    elif fmt == "png":
        dot = shutil.which("dot")
        if dot is None:
            raise InvalidInput("output", "png", "graphviz 'dot' is not installed")
        target = Path(file_ or f"{kind.lower()}.png")
        subprocess.run(
            [dot, "-Tpng", "-o", str(target)], input=to_dot(spec).encode(), check=True
        )
        click.echo(str(target))
    else:
        rows = [{"from": f, "trigger": t, "to": d} for f, t, d in spec.table]
        emit(fmt, rows, ["from", "trigger", "to"])


@cli.command("list")
@click.option(
    "-o",
    "--output",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default=None,
    help="table, json or csv.",
)
@click.pass_context
def list_(ctx: click.Context, fmt: str | None) -> None:
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
    emit(fmt or app(ctx).output, rows, LIST_COLUMNS)
