"""The nouns of `storctl` and the top-level help, answered without importing click.

`storctl`, `storctl --help` and `-h` are answered from `NOUNS` and `_GROUP_HELP`
(about half of the start-up time is click's import): a unit test holds the text
equal to click's own rendering, so the two can't drift. `cli.group` reads `NOUNS`
to load each noun's module only when its command runs.
"""

from __future__ import annotations

import os
import sys

#: noun -> (module, short help). Help text lives here so listing needs no import.
NOUNS: dict[str, tuple[str, str]] = {
    "host": ("cli.host", "Hypervisor hosts: the endpoints that run agent commands."),
    "pool": ("cli.pool", "Primary storage pools and their capacity."),
    "store": ("cli.store", "Image stores (secondary storage)."),
    "provider": (
        "cli.provider",
        "Storage providers: what each backend takes and does.",
    ),
    "template": ("cli.template", "Templates: register, list, delete."),
    "vm": ("cli.vm", "Virtual machines, as far as storage needs them."),
    "volume": (
        "cli.volume",
        "Volumes: create, attach, detach, delete, recover, expunge.",
    ),
    "snapshot": ("cli.snapshot", "Snapshots: create, revert, delete (chains kept)."),
    "job": ("cli.job", "Async jobs: every operation is one."),
    "executor": (
        "cli.executor",
        "Run the followers (workflows, dispatcher, projections).",
    ),
    "projection": ("cli.projection", "Projected tables: status and rebuild."),
    "fsm": ("cli.fsm", "CloudStack's state machines: tables and pictures."),
    "config": ("cli.config", "Global configuration keys (CloudStack's defaults)."),
    "simulator": ("cli.simulator", "Fault injection on simulator hosts."),
    "history": ("cli.audit", "One object's timeline (and its incident picture)."),
    "audit": ("cli.audit", "The event journal across objects, filtered."),
    "replay": ("cli.replay", "The ledger as it was then, in a new file; verify."),
    "export": ("cli.replay", "The event log as JSON lines."),
    "import": ("cli.replay", "A JSON-lines log into an empty database."),
    "why": ("cli.why", "Why a volume's pool was chosen, or why none was."),
    "doctor": ("cli.doctor", "Objects stuck in a transitional state, and the fix."),
    "reconcile": ("cli.reconcile", "Files on a pool against the ledger."),
    "ledger": ("cli.ledger", "The event log itself: verify its hash chain."),
    "admin": ("cli.admin", "PostgreSQL roles for operators and auditors."),
}

# What click renders above the command list at its usual width (78 columns: any
# terminal of 80 or more, or no terminal). `test_fast_help_is_clicks_own_help` fails
# when an option or the group's docstring changes without this text.
_GROUP_HELP = """\
Usage: storctl [OPTIONS] COMMAND [ARGS]...

  Event-sourced CloudStack storage: pools, templates, volumes, snapshots.

  Every change is an append-only event guarded by CloudStack's state machines;
  the tables you know (volumes, storage_pool, ...) are projections of them.

  Example:
    storctl --db /tmp/lab.db host add kvm-01 --zone z1 --cluster c1
    storctl --db /tmp/lab.db pool add gold --zone z1 --cluster c1 \\
            --path /srv/gold --capacity 100G
    storctl --db /tmp/lab.db -o json pool list

Options:
  --db URL                       sqlite:///path/file.db, a file path, or
                                 postgresql://user@host:port/db [env
                                 STORCTL_DB; default
                                 $XDG_DATA_HOME/storctl/ledger.db]
  -o, --output [table|json|csv]  Output format (default: table on a terminal,
                                 json otherwise).
  --actor NAME                   Who is asking (default: login name).
  --async                        Operations return {"jobid": ...} at once
                                 instead of waiting.
  --version                      Show the version and exit.
  -h, --help                     Show this message and exit.
"""
_WIDTH = 78  # click's: min(terminal columns, 80) - 2


def fast_help(columns: int) -> str | None:
    """The group's help as click renders it, or None where only click can say.

    None for a terminal narrower than 80 columns (click wraps to it) and for a noun
    whose help would wrap; click's `write_dl` layout otherwise: the names in a
    column as wide as the longest plus two, indented by two.
    """
    if min(columns, 80) - 2 != _WIDTH:
        return None
    first = max(len(name) for name in NOUNS) + 2
    rows = []
    for name in sorted(NOUNS):
        text = NOUNS[name][1]
        if len(text) > _WIDTH - first - 2 or not text.isascii():
            return None
        rows.append(f"  {name:<{first}}{text}")
    return _GROUP_HELP + "\nCommands:\n" + "\n".join(rows)


def _columns() -> int:
    """`shutil.get_terminal_size().columns`, which click asks, without shutil."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0 and sys.__stdout__ is not None:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80
