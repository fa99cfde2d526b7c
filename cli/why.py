"""`storctl why VOL`: the allocation decision, each pool taken or refused, and why.

CloudStack's "Unable to find suitable primary storage" keeps its reasons in debug log
lines; here they are an event on the volume (`AllocationDecided`), read back from the
projected journal (`event_journal`, every field of the event but its columns), so
`why` is a read command like the others: on a caught-up SQLite ledger it imports
none of the write side.
"""

from __future__ import annotations

from typing import Any

import click

from cli.completion import names
from cli.context import app
from cli.output import emit, say
from cli.spelling import spell_time


@click.command()
@click.argument("ref", metavar="VOL", shell_complete=names("volume"))
@click.option(
    "--all", "show_all", is_flag=True, help="Every decision, not only the last."
)
def cli(ref: str, show_all: bool) -> None:  # noqa: FBT001 - click passes flags so
    """The allocation decision for a volume: every pool, taken or refused, and why.

    Pools the database found suitable together (all but the one taken, or those a
    later allocator would have judged) are one row that counts them; the JSON lists
    their ids under `pool_ids`.

    \b
    Example:
      storctl why data-1
      storctl -o json why data-1 | jq '.verdicts[] | select(.taken | not)'
    """
    from cli.volume import volume_id
    from projections.queries import list_events

    a = app()
    vid = volume_id(a, ref, or_gone=True)
    with a.reader() as r:
        decisions = list_events(r, object_id=str(vid), event="AllocationDecided")
    if not decisions:
        say(f"volume {ref}: no allocation decided yet (it waits for an attach)")
        emit(a.output, [] if show_all else {"volumeid": str(vid), "verdicts": []})
        return
    shown = decisions if show_all else decisions[-1:]
    docs = [_doc(str(vid), d) for d in shown]
    _name_groups(a, docs)
    if a.output == "json":
        emit(a.output, docs if show_all else docs[0])
        return
    from ledger.values import format_size

    for doc in docs:
        req = doc["request"]
        tags = ",".join(req["tags"]) or "-"
        say(
            f"{spell_time(doc['decided'], seconds=True)}: "
            f"{format_size(req['size'])}, tags {tags}, "
            f"zone {req['zone_id']}, cluster {req['cluster_id'] or '-'}: "
            + (f"pool {_taken(doc)} taken" if doc["chosen"] else "no suitable pool")
        )
        rows = [_row(v) for v in doc["verdicts"]]
        emit(a.output, rows, ["pool", "allocator", "taken", "reason"])


def _row(verdict: dict[str, Any]) -> dict[str, Any]:
    """A table row; pools judged together are one row that names a few or counts
    many (the JSON has every id in `pool_ids` and name in `pool_names`)."""
    if "pool_ids" not in verdict:
        return verdict
    names = verdict.get("pool_names") or []
    shown = ", ".join(names) if 0 < len(names) <= 3 else f"{verdict['pools']:,} pools"
    return {**verdict, "pool": shown}


def _name_groups(a: Any, docs: list[dict[str, Any]]) -> None:
    """The names of grouped pools, from the projected `storage_pool` table (the
    event keeps ids only, to stay small with 10,000 pools)."""
    groups = [v for doc in docs for v in doc["verdicts"] if "pool_ids" in v]
    if not groups:
        return
    with a.reader() as r:
        names = {
            row["uuid"]: row["name"]
            for row in r.all("SELECT uuid, name FROM storage_pool", [])
        }
    for doc in docs:
        doc["verdicts"] = [
            {**v, "pool_names": [names.get(i, i) for i in v["pool_ids"]]}
            if "pool_ids" in v
            else v
            for v in doc["verdicts"]
        ]


def _taken(doc: dict[str, Any]) -> str:
    return next(
        (v["pool"] for v in doc["verdicts"] if v["taken"] and "pool" in v),
        str(doc["chosen"]),
    )


def _doc(volume_id: str, row: dict[str, Any]) -> dict[str, Any]:
    """A decision as `why` has always shown it, from its journal row (the time
    in the one style of every output, `Z`)."""
    details = row["details"]
    return {
        "volumeid": volume_id,
        "decided": spell_time(row["timestamp"]),
        "jobid": row["jobid"],
        "request": details["request"],
        "chosen": details["chosen"] or None,
        "verdicts": details["verdicts"],
    }
