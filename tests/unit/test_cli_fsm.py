"""`storctl fsm list` and `fsm show` for storctl's own kinds (the CloudStack four
are held against the reference in test_cli_infra)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli.main import cli
from ledger import fsm

OWN = ("pool", "vm", "host", "job")


def invoke(tmp_path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "x.db"), "fsm", *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_list_names_every_kind_whose_table_it_is_and_its_size(tmp_path):
    rows = json.loads(invoke(tmp_path, "list", "-o", "json"))
    assert [r["kind"] for r in rows] == list(fsm.SPECS)
    for row in rows:
        spec = fsm.SPECS[row["kind"]]
        assert row == {
            "kind": row["kind"],
            "name": spec.kind,
            "source": "storctl" if row["kind"] in OWN else "CloudStack",
            "states": len(spec.states),
            "triggers": len({t for _, t, _ in spec.table}),
            "transitions": len(spec.table),
        }
    by_kind = {r["kind"]: r for r in rows}
    assert (by_kind["host"]["states"], by_kind["host"]["transitions"]) == (3, 6)


def test_list_as_a_table_has_one_row_per_kind(tmp_path):
    lines = invoke(tmp_path, "list", "-o", "table").splitlines()
    assert lines[0].split() == [
        "KIND", "NAME", "SOURCE", "STATES", "TRIGGERS", "TRANSITIONS",
    ]  # fmt: skip
    assert [line.split()[0] for line in lines[1:]] == list(fsm.SPECS)


@pytest.mark.parametrize("kind", OWN)
def test_show_json_holds_the_kinds_table(tmp_path, kind):
    spec = fsm.SPECS[kind]
    shown = json.loads(invoke(tmp_path, "show", kind, "-o", "json"))
    assert shown == {
        "kind": spec.kind,
        "states": [s.name for s in spec.states],
        "transitional": sorted(spec.transitional),
        "transitions": [list(row) for row in spec.table],
    }


def test_show_dot_draws_every_host_move(tmp_path):
    dot = invoke(tmp_path, "show", "host", "--dot", "-")
    assert dot.startswith('digraph "Host" {')
    for source, trigger, dest in fsm.HOST_TABLE:
        assert f'"{source}" -> "{dest}" [label="{trigger}"];' in dot


def test_show_refuses_an_unknown_kind_naming_the_new_ones(tmp_path):
    result = CliRunner().invoke(
        cli, ["--db", str(tmp_path / "x.db"), "fsm", "show", "storage"]
    )
    assert result.exit_code == 2
    assert all(f"'{kind}'" in result.stderr for kind in OWN)


def test_self_loops_are_one_line_in_their_state_not_stacked_edges():
    from cli.fsm import to_dot

    spec = fsm.SPECS["volume"]
    dot = to_dot(spec)
    loops = [(s, t) for s, t, d in spec.table if s == d]
    assert loops, "the volume table keeps states on some triggers"
    for state, _ in loops:
        assert f'"{state}" -> "{state}"' not in dot
    ready = next(line for line in dot.splitlines() if line.startswith('  "Ready" ['))
    kept = [t for s, t in loops if s == "Ready"]
    for trigger in kept:
        assert ready.count(trigger) == 1, ready
    assert "↻" in ready


def test_every_machine_has_its_legend_and_title(tmp_path):
    from cli.fsm import LEGEND, to_dot

    for spec in fsm.SPECS.values():
        dot = to_dot(spec)
        assert LEGEND in dot
        assert f"<b>{spec.kind}</b>" in dot
    assert "Transitional" in LEGEND
    assert "↻" in LEGEND


def test_png_and_svg_options_draw_both_files(tmp_path):
    png, svg = tmp_path / "s.png", tmp_path / "s.svg"
    result = CliRunner().invoke(
        cli,
        ["--db", str(tmp_path / "x.db"), "fsm", "show", "snapshot",
         "--png", str(png), "--svg", str(svg)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert f"drawn to {png}" in result.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = svg.read_text()
    assert "<svg" in text
    assert "Transitional: a command is out" in text  # the legend is drawn
