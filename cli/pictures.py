"""Graphviz source into pictures, and the `--png FILE` / `--svg FILE` options.

`fsm show`, `history` and `report incident` all draw with graphviz's `dot`; the
options are spelled once here so every picture command takes the same ones.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ledger.errors import InvalidInput

F = TypeVar("F", bound=Callable[..., Any])


def _dot(option: str, target: str) -> str:
    exe = shutil.which("dot")
    if exe is None:
        raise InvalidInput(option, target, "graphviz `dot` is not installed")
    return exe


def render(source: str, fmt: str, target: Path) -> None:
    """Graphviz `dot` turns the source into `fmt` (png or svg) at `target`."""
    exe = _dot(f"--{fmt}", str(target))
    # argv list, fixed executable: no shell, no user text in the command line.
    done = subprocess.run(
        [exe, f"-T{fmt}", "-o", str(target)], input=source.encode(), capture_output=True
    )
    if done.returncode != 0:
        why = done.stderr.decode(errors="replace").strip().splitlines()
        raise InvalidInput(f"--{fmt}", str(target), f"dot failed: {why[:1]}")


def svg_of(source: str) -> str:
    """The `<svg>` element alone (no XML prologue), to inline in a page."""
    exe = _dot("--html", "")
    done = subprocess.run(
        [exe, "-Tsvg"], input=source.encode(), check=True, capture_output=True
    )
    text = done.stdout.decode()
    return text[text.find("<svg") :]


def picture_options(what: str) -> Callable[[F], F]:
    """`--png FILE` and `--svg FILE`, both optional, for a command that draws `what`."""

    def add(command: F) -> F:
        for name in ("svg", "png"):
            command = click.option(
                f"--{name}",
                f"{name}_file",
                metavar="FILE",
                type=click.Path(dir_okay=False, path_type=Path),
                help=f"Draw {what} to this {name.upper()} file.",
            )(command)
        return command

    return add


def draw(source: str, png: Path | None, svg: Path | None) -> list[Path]:
    """Each picture asked for, drawn; the files written, for the caller to name."""
    done = []
    for fmt, target in (("png", png), ("svg", svg)):
        if target is not None:
            render(source, fmt, target)
            done.append(target)
    return done


def write_page(
    r: Any, timeline: list[dict[str, Any]], title: str, target: Path
) -> None:
    """The incident page (`projections.incident_page`) for these rows, at `target`."""
    from projections.incident import dot, names
    from projections.incident_page import page

    svg = svg_of(dot(r, timeline, title, links=True))
    target.write_text(page(title, svg, timeline, names(r, timeline)), encoding="utf-8")
