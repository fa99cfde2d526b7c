"""The nouns of `storctl`: each one's module and its one-line help.

`cli.group` reads `NOUNS` to load a noun's module only when its command runs, and
to list and complete the nouns (with their help) without importing any of them.
"""

from __future__ import annotations

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
    "report": ("cli.report", "Reports to attach to a ticket: a job's incident page."),
    "replay": ("cli.replay", "The ledger as it was then, in a new file; verify."),
    "export": ("cli.replay", "The event log as JSON lines."),
    "import": ("cli.replay", "A JSON-lines log into an empty database."),
    "why": ("cli.why", "Why a volume's pool was chosen, or why none was."),
    "describe": ("cli.describe", "One object, its last events, what can be done next."),
    "doctor": ("cli.doctor", "Objects stuck in a transitional state, and the fix."),
    "reconcile": ("cli.reconcile", "Files on a pool against the ledger."),
    "ledger": ("cli.ledger", "The event log itself: verify its hash chain."),
    "admin": ("cli.admin", "PostgreSQL roles for operators and auditors."),
    "completion": ("cli.completion", "The shell completion script: bash, zsh, fish."),
}
