"""`storctl`'s entry point: the top-level help without click, then the click group.

Exit codes (CLI.md): 0 done; 1 a bug (traceback); 2 refused, nothing written; 3 the
operation ran and failed, the failure recorded. The click group lives in `cli.group`
and each noun in its own module, imported only when its command runs. `storctl`,
`storctl --help` and `-h` are answered from `cli.nouns` without importing click.
"""

from __future__ import annotations

import os
import sys

from cli.nouns import NOUNS, _columns, fast_help

__all__ = ["NOUNS", "fast_help", "main"]

TYPE_CHECKING = False  # `typing` alone costs ~5 ms of a start that must stay short
if TYPE_CHECKING:
    from typing import Any


def main() -> None:
    os.environ.setdefault("PYTHONIOENCODING", "utf-8")
    args = sys.argv[1:]
    if args in ([], ["--help"], ["-h"]):
        text = fast_help(_columns())
        if text is not None:
            if args:
                sys.stdout.write(text + "\n")
                sys.exit(0)
            sys.stderr.write(text + "\n")  # bare `storctl`, as click: a usage error
            sys.exit(2)
    from cli.group import cli

    cli(prog_name="storctl")


def __getattr__(name: str) -> Any:
    """`cli`, `ExitError`, ... where callers have always found them, loaded late."""
    if name in ("cli", "ExitError", "StorctlGroup", "one_line"):
        from cli import group

        return getattr(group, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
