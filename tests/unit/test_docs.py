"""Every command teaches: it has help, and that help shows an example; and the
architecture page shows the rooms as the code has them."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from cli.main import NOUNS, cli


def all_commands():
    ctx = click.Context(cli)
    for noun in sorted(NOUNS):
        group = cli.get_command(ctx, noun)
        yield from walk([noun], group)


def walk(path, command):
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from walk([*path, name], sub)


@pytest.mark.parametrize(
    ("path", "command"),
    list(all_commands()),
    ids=lambda v: " ".join(v) if isinstance(v, list) else "",
)
def test_command_has_help_with_an_example(path, command):
    assert command.help, f"{' '.join(path)} has no help"
    assert command.help.strip(), f"{' '.join(path)} has no help"
    assert "Example" in command.help, f"{' '.join(path)} help shows no example"
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output


def test_top_level_help_lists_every_noun():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for noun in NOUNS:
        assert noun in result.output


def test_the_architecture_picture_is_drawn_from_todays_code():
    """docs/architecture.md shows the rooms `tools/rooms.py` reads from the code
    (`make rooms` redraws it)."""
    import sys

    root = Path(__file__).resolve().parents[2]
    sys.path.insert(0, str(root / "tools"))
    import rooms

    assert rooms.doc_picture(root) == rooms.mermaid(root)
    assert rooms.mermaid(root).count("-->") > 10
