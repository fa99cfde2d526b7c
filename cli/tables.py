"""Tables for people, drawn with `rich`: fitted to the terminal, names for ids.

`table` fits the terminal's width: the columns an operator needs least go first
(`DROP`), long cells are cut with `…`, ids are short on a terminal, and an id of
another object is shown by that object's name. `wide` shows every column and
every id in full. Colour (states) only on a terminal, and never under `NO_COLOR`
(rich's own rule). The cells never show Python: `true`/`false`, sizes with units,
times to the second with `Z`, lists joined, `details` summarised.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
from collections.abc import Sequence
from typing import Any

from cli.spelling import SIZE_FIELDS, Names, spell, spell_time

#: headers shorter than the field names where the name is a mouthful
HEADERS = {
    "virtualmachineid": "VM",
    "storageid": "POOL",
    "hostid": "HOST",
    "templateid": "TEMPLATE",
    "volumeid": "VOLUME",
    "snapshotid": "SNAPSHOT",
    "parentid": "PARENT",
    "disksizetotal": "TOTAL",
    "disksizeallocated": "ALLOCATED",
    "disksizeused": "USED",
    "overprovisionfactor": "OVERPROV",
    "objectid": "OBJECT",
    "deviceid": "DEV",
    "physicalsize": "PHYSICAL",
}

#: the higher, the sooner a column goes when the table does not fit (others: 50;
#: 0 never goes)
DROP = {
    "id": 0,
    "name": 0,
    "kind": 0,
    "event": 0,
    "position": 5,
    "state": 10,
    "status": 10,
    "tostate": 12,
    "details": 8,
    "reason": 8,
    "storage": 20,
    "virtualmachineid": 25,
    "objectid": 73,
    "path": 100,
    "overprovisionfactor": 96,
    "checksum": 95,
    "url": 94,
    "snapshotid": 92,
    "templateid": 91,
    "parentid": 90,
    "clusterid": 88,
    "zoneid": 87,
    "locationtype": 86,
    "threshold": 85,
    "queuedon": 84,
    "description": 83,
    "physicalsize": 82,
    "scope": 80,
    "deviceid": 79,
    "objecttype": 78,
    "fromstate": 77,
    "actor": 76,
    "duration": 75,
    "jobid": 74,
    "disksizetotal": 70,
    "hypervisor": 69,
    "tags": 60,
}

#: columns dropped before any cell is cut short
_OPTIONAL = 75

#: cells that may be cut short (with `…`) rather than their column dropped
SHRINK = frozenset(
    {
        *("name", "details", "reason", "path", "description", "error", "url"),
        *("pool", "storage", "virtualmachineid", "hostid", "objectid", "cmd"),
    }
)
_SHRUNK = 12  # the narrowest a shrinkable column is cut to

_GREEN = {"Ready", "Up", "Running", "Active", "BackedUp", "Enabled", "succeeded"}
_RED = {"Error", "Failed", "failed", "Down", "Disconnected", "Alert"}
_RED_SUFFIX = ("Failed", "Error")
_DIM = {"Destroy", "Expunged", "Removed", "Stopped", "Disabled", "Inactive"}
_STATE_KEYS = frozenset({"state", "status", "tostate", "fromstate"})


def on_terminal() -> bool:
    """Whether stdout is a terminal (short ids, colour); tests pretend it is."""
    return sys.stdout.isatty()


def coloured() -> bool:
    """Colour when on a terminal or `FORCE_COLOR` asks, never under `NO_COLOR`."""
    if os.environ.get("NO_COLOR"):
        return False
    return on_terminal() or bool(os.environ.get("FORCE_COLOR"))


def width() -> int | None:
    """The width to fit: `COLUMNS`, else the terminal's; None (no limit) when
    stdout is a pipe, so `-o table | grep` sees whole lines."""
    if os.environ.get("COLUMNS", "").isdigit():
        return int(os.environ["COLUMNS"])
    if on_terminal():
        return shutil.get_terminal_size().columns
    return None


def header(key: str) -> str:
    return HEADERS.get(key, key.upper())


def style(key: str, value: Any) -> str:
    """The colour of a state (rich style name), or none."""
    if key not in _STATE_KEYS or not isinstance(value, str):
        return ""
    if value in _GREEN:
        return "green"
    if value in _RED or value.endswith(_RED_SUFFIX):
        return "red"
    if value in _DIM:
        return "dim"
    if value.endswith("ing") or value in {"Allocated", "queued", "pending"}:
        return "yellow"
    return ""


def short(ident: str) -> str:
    """The first 8 hex digits of a UUID (any unique prefix works as a reference)."""
    return ident[:8] if len(ident) == 36 and ident.count("-") == 4 else ident


def cell(
    key: str,
    value: Any,
    row: dict[str, Any],
    names: dict[str, str],
    *,
    full_ids: bool,
) -> str:
    """One value as a table shows it."""
    if value is None or value == []:
        return "-"
    if isinstance(value, bool):
        return spell(value)
    if key in SIZE_FIELDS and isinstance(value, int):
        return _size(key, value, row)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return summary(value, names)
    if isinstance(value, list):
        return ",".join(_ref(str(v), names, full_ids=full_ids) for v in value)
    text = str(value)
    if key == "path" and text == row.get("id"):
        return "= id"
    if key == "id" or key == "jobid":
        return text if full_ids else short(text)
    if key.endswith("id") or key in {"chosen", "pool", "queuedon"}:
        return _ref(text, names, full_ids=full_ids)
    return spell_time(text, seconds=True)


def _ref(text: str, names: dict[str, str], *, full_ids: bool) -> str:
    """Another object: its name when known, else its (short) id."""
    named = names.get(text)
    if named is not None:
        return named
    return text if full_ids else short(text)


def _size(key: str, value: int, row: dict[str, Any]) -> str:
    """Sizes with units; a pool's allocation against its over-provisioned
    capacity and its use against its total, with percentages."""
    from ledger.values import format_size

    text = format_size(value)
    total = row.get("disksizetotal")
    if not isinstance(total, int) or total <= 0:
        return text
    if key == "disksizeallocated":
        factor = row.get("overprovisionfactor") or 1.0
        capacity = int(total * float(factor))
        return f"{text}/{format_size(capacity)} {_percent(value, capacity)}"
    if key == "disksizeused":
        return f"{text} {_percent(value, total)}"
    return text


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "-"


def summary(details: dict[str, Any], names: dict[str, str]) -> str:
    """A journal row's details in a line: the command sent, the answer
    received, or its fields, without nulls, with units and names."""
    command = details.get("command")
    answer = details.get("answer")
    if isinstance(command, dict):
        return f"{command.get('kind')} {short(str(command.get('commandId', '')))}"
    if isinstance(answer, dict):
        verdict = "ok" if answer.get("result") else "FAILED"
        text = answer.get("details") or ""
        return f"{answer.get('kind')} {verdict} {text}".strip()
    if "error" in details:
        return f"error: {details['error']}"
    parts = []
    for key, value in details.items():
        if value is None or value == [] or isinstance(value, dict):
            continue
        if isinstance(value, list) and not all(isinstance(v, str) for v in value):
            continue
        parts.append(f"{key}={cell(key, value, details, names, full_ids=False)}")
    return " ".join(parts)


def fit(
    cols: Sequence[str],
    cells: list[list[str]],
    limit: int | None,
) -> tuple[list[str], dict[str, int]]:
    """The columns that fit in `limit`, in their order, and the width of each:
    optional columns go (highest `DROP` first) rather than cut a cell; then
    others, until the rest fit with every shrinkable one cut to `_SHRUNK`;
    then the widest shrinkable ones are cut just enough."""
    natural = {
        c: max([len(header(c)), *(len(r[i]) for r in cells)])
        for i, c in enumerate(cols)
    }
    least = {c: min(natural[c], _SHRUNK) if c in SHRINK else natural[c] for c in cols}
    shown = list(cols)
    if limit is None:
        return shown, natural

    def gaps() -> int:
        return 2 * (len(shown) - 1)

    # first the optional columns, while the others do not fit uncut
    while sum(natural[c] for c in shown) + gaps() > limit:
        optional = [c for c in shown if DROP.get(c, 50) >= _OPTIONAL]
        if not optional:
            break
        shown.remove(max(optional, key=lambda c: (DROP.get(c, 50), shown.index(c))))
    while sum(least[c] for c in shown) + gaps() > limit:
        droppable = [c for c in shown if DROP.get(c, 50) > 0]
        if not droppable:
            break
        shown.remove(max(droppable, key=lambda c: (DROP.get(c, 50), shown.index(c))))
    widths = {c: natural[c] for c in shown}
    # cut the widest shrinkable column by one until the table fits
    while sum(widths.values()) + gaps() > limit:
        cuttable = [c for c in shown if widths[c] > least[c]]
        if not cuttable:
            break
        widest = max(cuttable, key=lambda c: widths[c])
        widths[widest] -= 1
    return shown, widths


def draw(
    rows: Sequence[dict[str, Any]],
    cols: Sequence[str],
    *,
    names: Names | None = None,
    wide: bool = False,
    chosen: Sequence[str] | None = None,
) -> str:
    """Rows as a table: every column (`wide`, or those `-c` chose), else those
    that fit the terminal's width."""
    from rich.table import Table

    by_id = _names(names)
    limit = None if wide else width()
    full = limit is None  # fitted to a width, ids are short (a prefix works)
    cells = [
        [cell(c, row.get(c), row, by_id, full_ids=full) for c in cols] for row in rows
    ]
    shown, widths = fit(cols, cells, None if chosen else limit)
    table = Table(
        box=None,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1),
        header_style="bold",
        collapse_padding=False,
    )
    for c in shown:
        table.add_column(
            header(c),
            no_wrap=True,
            overflow="ellipsis",
            width=widths[c],
        )
    index = [(c, list(cols).index(c)) for c in shown]
    for row, texts in zip(rows, cells, strict=True):
        table.add_row(*(_styled(c, row.get(c), texts[i]) for c, i in index))
    out = _render(table, limit)
    if not rows:
        out += "\n(none)"
    return out


def _names(names: Names | None) -> dict[str, str]:
    if names is None:
        return {}
    if callable(names):
        return dict(names())
    from projections.queries import names_by_id

    return names_by_id(names)


def _styled(key: str, value: Any, text: str) -> Any:
    colour = style(key, value)
    if not colour:
        return text
    from rich.text import Text

    return Text(text, style=colour)


def _render(renderable: Any, limit: int | None) -> str:
    from rich.console import Console

    buf = io.StringIO()
    console = Console(
        file=buf,
        width=limit or 100_000,
        force_terminal=coloured(),
        no_color=not coloured(),
        color_system="standard" if coloured() else None,
        highlight=False,
        soft_wrap=False,
    )
    console.print(renderable)
    return "\n".join(line.rstrip() for line in buf.getvalue().rstrip("\n").split("\n"))


def record(
    data: dict[str, Any], *, names: Names | None = None, wide: bool = False
) -> str:
    """One object as `key  value` lines; another object's id is shown as its
    name with its (short) id."""
    by_id = _names(names)
    full = wide or not on_terminal()
    keyw = max((len(k) for k in data), default=0)
    lines = []
    for key, value in data.items():
        text = cell(key, value, data, {}, full_ids=full)
        named = key != "id" and key.endswith("id")
        if named and isinstance(value, str) and value in by_id:
            text = f"{by_id[value]} ({text})"
        colour = style(key, value)
        if colour and coloured():
            from rich.console import Console

            text = _paint(text, colour, Console)
        lines.append(f"{key:<{keyw}}  {text}")
    return "\n".join(lines)


def _paint(text: str, colour: str, console: Any) -> str:
    buf = io.StringIO()
    console(file=buf, force_terminal=True, color_system="standard").print(
        text, style=colour, end="", highlight=False
    )
    return buf.getvalue()
