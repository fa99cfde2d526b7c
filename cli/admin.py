"""`storctl admin roles`: the PostgreSQL roles that make "who did it" the server's
word. The grants are in `ledger.store.grants`; this opens the ledger (so its tables
exist) and runs them as the schema's owner."""

from __future__ import annotations

import re
from typing import Any

import click

from cli.context import app
from cli.output import emit, say
from ledger.errors import InvalidInput


@click.group("admin")
def cli() -> None:
    """Administration of the ledger's database.

    \b
    Example:
      storctl --db postgresql://postgres@db/storctl admin roles --prefix prod_
    """


@cli.command("roles")
@click.option(
    "--prefix",
    default="storctl_",
    show_default=True,
    metavar="P",
    help="Role names are P + operator and P + auditor.",
)
@click.option("--drop", is_flag=True, help="Drop the two roles instead.")
def roles(prefix: str, *, drop: bool) -> None:
    """Create two login roles on this PostgreSQL ledger's schema: `operator`
    (append and read) and `auditor` (read only). Neither can UPDATE or DELETE a
    stored event. Run as the schema's owner.

    \b
    Example:
      storctl --db postgresql://postgres@db/storctl?schema=prod admin roles
      psql -U storctl_auditor ...   # reads; every write refused by the server
    """
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,40}", prefix):
        raise InvalidInput("--prefix", prefix, "lower-case letters, digits and _ only")
    a = app()
    db = a.db
    if db.kind != "postgres":
        raise InvalidInput("--db", db.display, "roles need a PostgreSQL ledger")
    import psycopg

    from ledger.store.database import pg_connect_args
    from ledger.store.grants import create_roles, drop_roles

    if drop:
        with psycopg.connect(**pg_connect_args(db)) as conn:
            names = drop_roles(conn, prefix)
        emit(a.output, {"dropped": names})
        return
    recorder: Any = a.ledger.recorder  # tables made, as the owner
    schema = db.schema or "public"
    with psycopg.connect(**pg_connect_args(db)) as conn:
        try:
            made = create_roles(conn, schema, recorder.events_table_name, prefix)
        except psycopg.errors.InsufficientPrivilege:
            raise InvalidInput(
                "--db",
                db.display,
                "needs a role that may create roles and own the schema",
            ) from None
    emit(a.output, {"schema": schema, **made})
    say(f"roles {made['operator']} (append, read) and {made['auditor']} (read) ready")
