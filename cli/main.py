"""`storctl`'s entry point: the click group, loaded as late as it can be.

Exit codes (docs/cli.md): 0 done; 1 a bug (traceback); 2 refused, nothing written;
3 the operation ran and failed, the failure recorded. The click group lives in
`cli.group` and each noun in its own module, imported only when its command runs
(or is completed); a read command on a caught-up SQLite ledger imports neither the
write side nor psycopg (`cli.context`). Help, completion and the usage errors are
click's own: speed comes from those lazy imports, not from answering anything here.
"""

from __future__ import annotations

import os
from typing import Any

from cli.nouns import NOUNS

__all__ = ["NOUNS", "main"]


def main() -> None:
    os.environ.setdefault("PYTHONIOENCODING", "utf-8")
    from cli.group import cli

    cli(prog_name="storctl")


def __getattr__(name: str) -> Any:
    """`cli`, `ExitError`, ... where callers have always found them, loaded late."""
    if name in ("cli", "ExitError", "StorctlGroup", "one_line"):
        from cli import group

        return getattr(group, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
