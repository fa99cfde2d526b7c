"""Shell completion: `storctl completion SHELL` prints click's script, and `names`
completes the names of the ledger's objects for the arguments that take one.

Completion is click's own (`_STORCTL_COMPLETE=bash_complete ...`, which the script
sets). Nouns complete from `cli.nouns` without importing their modules (the group
does that), verbs and options from the noun's click group. A name is read from the
projected tables as they are (no catch-up, nothing written): on SQLite through a
query-only connection to an existing file, on PostgreSQL with a short connect
timeout. Anything that goes wrong (no database yet, a bad `--db`, a server down)
completes nothing rather than printing an error into the operator's prompt.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

#: kind -> (table, column completed, whether removed rows are left out)
TABLES: dict[str, tuple[str, str, bool]] = {
    "volume": ("volumes", "name", True),
    "pool": ("storage_pool", "name", True),
    "vm": ("vm_instance", "name", True),
    "template": ("vm_template", "name", True),
    "snapshot": ("snapshots", "name", True),
    "job": ("async_job", "id", False),
    "host": ("host", "name", False),
    "store": ("image_store", "name", False),
}
#: at most this many are offered (a shell lists them all)
LIMIT = 500

Completer = Callable[[click.Context, click.Parameter, str], list[str]]


def names(kind: str | None = None) -> Completer:
    """A `shell_complete` callback offering the names of the existing objects of
    `kind` that start with what was typed; with no kind, the kind is the
    command's `kind` argument (`history KIND REF`)."""

    def complete(
        ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[str]:
        which = kind or str(ctx.params.get("kind") or "").lower()
        if which not in TABLES:
            return []
        url = ctx.find_root().params.get("db")
        try:
            found = ledger_names(url, which)
        except Exception:  # completion must never fail loudly: offer nothing
            return []
        return [n for n in found if n.startswith(incomplete)]

    return complete


def ledger_names(url: str | None, kind: str) -> list[str]:
    """The names (ids, for jobs) of the live objects of `kind` in the ledger at
    `url`, sorted; empty where there is no ledger yet."""
    from ledger.store.database import parse_db

    table, column, live = TABLES[kind]
    sql = f"SELECT DISTINCT {column} AS v FROM {table}"
    if live:
        sql += " WHERE removed IS NULL"
    sql += f" ORDER BY {column} LIMIT {LIMIT}"
    db = parse_db(url)
    if db.path is not None:
        from projections.reader import connect_existing

        conn = connect_existing(db.path, timeout=1)
        if conn is None:
            return []
        try:
            rows: list[Any] = conn.execute(sql).fetchall()
        finally:
            conn.close()
        return [str(row[0]) for row in rows if row[0] is not None]
    return _postgres_names(db, sql)


def _postgres_names(db: Any, sql: str) -> list[str]:
    """The same query on PostgreSQL, in the ledger's schema."""
    import psycopg
    from psycopg.sql import SQL, Identifier

    from ledger.store.database import pg_connect_args

    with psycopg.connect(**pg_connect_args(db), connect_timeout=2) as conn:
        if db.schema:
            conn.execute(SQL("SET search_path TO {0}").format(Identifier(db.schema)))
        rows = conn.execute(sql.encode()).fetchall()  # our own text, no input in it
    return [str(row[0]) for row in rows if row[0] is not None]


@click.command("completion")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
@click.pass_context
def cli(ctx: click.Context, shell: str) -> None:
    """Print the shell completion script for SHELL: nouns, verbs, options and the
    names of existing volumes, pools, VMs, templates, snapshots and jobs.

    \b
    Install it once (then open a new shell):
      bash:  echo 'eval "$(storctl completion bash)"' >> ~/.bashrc
      zsh:   echo 'eval "$(storctl completion zsh)"' >> ~/.zshrc
      fish:  storctl completion fish > ~/.config/fish/completions/storctl.fish

    \b
    Example:
      storctl completion bash > ~/.local/share/bash-completion/completions/storctl
      eval "$(storctl completion zsh)"
    """
    from click.shell_completion import get_completion_class

    root = ctx.find_root()
    complete = get_completion_class(shell)
    assert complete is not None, "click completes bash, zsh and fish"
    script = complete(
        root.command,
        {},
        root.info_name or "storctl",
        "_STORCTL_COMPLETE",
    ).source()
    click.echo(script)
