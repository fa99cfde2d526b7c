"""`storctl ledger verify`: the stored history checked against its hash chain.

Every event was sealed when it was appended (`ledger.store.sealing`); this walks
the log and the hashes side by side (`ledger.hashchain.first_break`) and names the
first event edited, deleted, moved or inserted by hand: one line, exit 3. A clean
ledger prints its event count and head hash, the anchor to keep elsewhere: a later
`--head` proves that nothing up to it was rewritten or cut off its end.
"""

from __future__ import annotations

import click

from cli.context import app
from cli.output import emit, say
from ledger.errors import InvalidInput, Tampered


@click.group("ledger")
def cli() -> None:
    """The event log itself: its hash chain.

    \b
    Example:
      storctl ledger verify
    """


@cli.command("verify")
@click.option(
    "--head",
    metavar="HEX",
    help="A head hash printed by an earlier verify: it must still be in the chain.",
)
def verify(head: str | None) -> None:
    """Walk the hash chain: exit 3 naming the first event edited, deleted,
    reordered or inserted by hand (on PostgreSQL, also an event whose actor is
    not the role that appended it); exit 0 with the count and head when clean.

    \b
    Example:
      storctl ledger verify
      storctl ledger verify --head 3f9a...e1
    """
    from ledger.hashchain import Break
    from ledger.store.chain_reads import holds_head, walk

    anchor = None
    if head is not None:
        try:
            anchor = bytes.fromhex(head)
        except ValueError:
            anchor = None
        if anchor is None or len(anchor) != 32:
            raise InvalidInput("--head", head, "64 hex digits, as verify printed it")
    a = app()
    recorder = a.ledger.recorder
    if not hasattr(recorder, "hashes_table_name"):
        raise InvalidInput(
            "--db", a.db.display, "not a sealed SQLite or PostgreSQL ledger"
        )
    result = walk(recorder)
    if isinstance(result, Break):
        raise Tampered(result.line())
    if anchor is not None and not holds_head(recorder, anchor):
        raise Tampered(
            f"head {head} is not in the chain: events up to it were rewritten or "
            "removed from its end"
        )
    emit(a.output, {"events": result.count, "head": result.head.hex()})
    say(f"verified {result.count} events: the hash chain holds")
