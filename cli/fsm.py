"""`storctl fsm list` and `fsm show`: the state machines storctl enforces.

CloudStack's four tables (volume, snapshot, objectinstore, template) and storctl's
own four (pool, vm, host, job), all from `ledger.fsm.SPECS`.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import click

from cli.output import emit, say
from cli.pictures import draw, picture_options
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


#: the key drawn under every machine: what a box, a dashed box, an arrow and ↻ mean
LEGEND = (
    '<table border="0" cellspacing="6" cellpadding="4">'
    '<tr><td border="1" style="rounded">State</td>'
    '<td border="1" style="dashed">Transitional: a command is out</td>'
    "<td>A → B labelled with the trigger that moves it</td>"
    "<td>↻ triggers that keep the state</td></tr></table>"
)


def _html(text: str) -> str:
    return html.escape(text, quote=True)


def _loop_lines(triggers: list[str], per_line: int = 2) -> str:
    """Triggers that keep a state, a few a line, so the box stays narrow."""
    rows = [triggers[i : i + per_line] for i in range(0, len(triggers), per_line)]
    return "<br/>".join(_html("↻ " + ", ".join(row)) for row in rows)


def to_dot(spec: Spec) -> str:
    """Graphviz source of a machine. Self-loops are merged into their state's box
    (one ↻ line per few triggers) rather than drawn as edges: graphviz stacks the
    labels of several loops on one node on top of each other, unreadable."""
    loops: dict[str, list[str]] = {}
    for source, trigger, dest in spec.table:
        if source == dest:
            loops.setdefault(source, []).append(trigger)
    lines = [
        f'digraph "{spec.kind}" {{',
        "  rankdir=LR; fontname=Helvetica; labelloc=b;",
        f'  label=<<table border="0"><tr><td><b>{_html(spec.kind)}</b>'
        f" ({_html(spec.source)}'s table)</td></tr><tr><td>{LEGEND}</td></tr>"
        "</table>>;",
        "  node [shape=box, style=rounded, fontname=Helvetica];",
        "  edge [fontname=Helvetica, fontsize=10];",
    ]
    for state in spec.states:
        style = ', style="rounded,dashed"' if state.name in spec.transitional else ""
        text = f"<b>{_html(state.name)}</b>"
        if state.name in loops:
            text += f'<br/><font point-size="9">{_loop_lines(loops[state.name])}</font>'
        lines.append(f'  "{state.name}" [label=<{text}>{style}];')
    for source, trigger, dest in spec.table:
        if source != dest:
            lines.append(f'  "{source}" -> "{dest}" [label="{trigger}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


@cli.command("show")
@click.argument("kind", type=click.Choice(sorted(SPECS), case_sensitive=False))
@click.option(
    "--dot",
    "dot_file",
    metavar="FILE",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="Also write its graphviz source to this file (`-`: stdout, alone).",
)
@picture_options("the machine, with its legend,")
@click.pass_context
def show(
    ctx: click.Context,
    kind: str,
    dot_file: Path | None,
    png_file: Path | None,
    svg_file: Path | None,
) -> None:
    """Show a state machine: every (from, trigger, to) its table allows.
    KIND is one of `storctl fsm list`'s kinds.

    \b
    Example:
      storctl fsm show volume -o json | jq '.transitions | length'
      storctl fsm show snapshot --png snapshot.png --svg snapshot.svg
    """
    spec = SPECS[kind.lower()]
    from cli.context import app

    source = to_dot(spec)
    if dot_file is not None and str(dot_file) == "-":
        click.echo(source, nl=False)
        return
    if dot_file is not None:
        dot_file.write_text(source)
    if png_file or svg_file:
        for target in draw(source, png_file, svg_file):
            say(f"{spec.kind} drawn to {target}")
        return  # the pictures were asked for: stdout stays empty
    if dot_file is not None:
        return
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
