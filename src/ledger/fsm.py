"""CloudStack's state machines as tables, and the guard every aggregate asks.

Four tables are copied verbatim from CloudStack's source (`Volume.State.s_fsm`,
`SnapshotStateMachineManagerImpl`, `ObjectInDataStoreStateMachine`,
`VirtualMachineTemplate.State`) as `(from, trigger, to)` rows; a unit test compares
them with `shared/reference/cloudstack_fsm.json`. Four more are storctl's own, written
in the same shape so that every state an object can be in is guarded, shown
(`storctl fsm show`) and re-checked (`storctl replay verify`) the same way:
StoragePool, VirtualMachine, Host and Job. CloudStack has no machine (or a much
larger one) for those; each table's comment says where its names come from.

Each table builds one model-less `transitions.Machine` at import; aggregates never
carry a machine (it would break aggregate snapshots), they ask `next_state()` in their
command methods and record the answer in the event, so stored streams load whatever
later code says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from transitions import Machine

from ledger.errors import IllegalTransition
from ledger.values import (
    HostState,
    JobStatus,
    ObjectInStoreState,
    PoolStatus,
    SnapshotState,
    TemplateState,
    VmState,
    VolumeState,
)

Table = tuple[tuple[str, str, str], ...]

VOLUME_TABLE: Table = (
    ("Allocated", "CreateRequested", "Creating"),
    ("Allocated", "DestroyRequested", "Destroy"),
    ("Allocated", "OperationFailed", "Allocated"),
    ("Allocated", "OperationSucceeded", "Allocated"),
    ("Creating", "OperationRetry", "Creating"),
    ("Creating", "OperationFailed", "Allocated"),
    ("Creating", "OperationSucceeded", "Ready"),
    ("Creating", "DestroyRequested", "Destroy"),
    ("Creating", "CreateRequested", "Creating"),
    ("Ready", "CreateRequested", "Creating"),
    ("Ready", "ResizeRequested", "Resizing"),
    ("Resizing", "OperationSucceeded", "Ready"),
    ("Resizing", "OperationFailed", "Ready"),
    ("Allocated", "UploadRequested", "UploadOp"),
    ("Uploaded", "CopyRequested", "Copying"),
    ("Ready", "OperationSucceeded", "Ready"),
    ("Ready", "OperationFailed", "Ready"),
    ("Copying", "OperationSucceeded", "Ready"),
    ("Copying", "OperationFailed", "Uploaded"),
    ("UploadOp", "DestroyRequested", "Destroy"),
    ("Ready", "DestroyRequested", "Destroy"),
    ("Destroy", "ExpungingRequested", "Expunging"),
    ("Expunging", "ExpungingRequested", "Expunging"),
    ("Expunging", "OperationSucceeded", "Expunged"),
    ("Expunging", "OperationFailed", "Destroy"),
    ("Ready", "SnapshotRequested", "Snapshotting"),
    ("Snapshotting", "OperationSucceeded", "Ready"),
    ("Snapshotting", "OperationFailed", "Ready"),
    ("Ready", "RevertSnapshotRequested", "RevertSnapshotting"),
    ("RevertSnapshotting", "OperationSucceeded", "Ready"),
    ("RevertSnapshotting", "OperationFailed", "Ready"),
    ("Allocated", "MigrationCopyRequested", "Creating"),
    ("Creating", "MigrationCopyFailed", "Allocated"),
    ("Creating", "MigrationCopySucceeded", "Ready"),
    ("Ready", "MigrationRequested", "Migrating"),
    ("Migrating", "OperationSucceeded", "Ready"),
    ("Migrating", "OperationFailed", "Ready"),
    ("Destroy", "OperationSucceeded", "Destroy"),
    ("Destroy", "OperationFailed", "Destroy"),
    ("UploadOp", "OperationSucceeded", "Uploaded"),
    ("UploadOp", "OperationFailed", "Allocated"),
    ("Uploaded", "DestroyRequested", "Destroy"),
    ("Expunged", "ExpungingRequested", "Expunged"),
    ("Expunged", "OperationSucceeded", "Expunged"),
    ("Expunged", "OperationFailed", "Expunged"),
    ("NotUploaded", "OperationTimeout", "UploadAbandoned"),
    ("NotUploaded", "UploadRequested", "UploadInProgress"),
    ("NotUploaded", "OperationSucceeded", "Uploaded"),
    ("NotUploaded", "OperationFailed", "UploadError"),
    ("UploadInProgress", "OperationSucceeded", "Uploaded"),
    ("UploadInProgress", "OperationFailed", "UploadError"),
    ("UploadInProgress", "OperationTimeout", "UploadError"),
    ("UploadError", "DestroyRequested", "Destroy"),
    ("UploadAbandoned", "DestroyRequested", "Destroy"),
    ("Ready", "AttachRequested", "Attaching"),
    ("Attaching", "OperationSucceeded", "Ready"),
    ("Attaching", "OperationFailed", "Ready"),
    ("Destroy", "RecoverRequested", "Ready"),
    ("Ready", "RestoreRequested", "Restoring"),
    ("Expunged", "RestoreRequested", "Restoring"),
    ("Destroy", "RestoreRequested", "Restoring"),
    ("Restoring", "RestoreSucceeded", "Ready"),
    ("Restoring", "RestoreFailed", "Ready"),
)

SNAPSHOT_TABLE: Table = (
    ("Allocated", "CreateRequested", "Creating"),
    ("Creating", "OperationSucceeded", "CreatedOnPrimary"),
    ("Creating", "OperationNotPerformed", "BackedUp"),
    ("Creating", "OperationFailed", "Error"),
    ("CreatedOnPrimary", "BackupToSecondary", "BackingUp"),
    ("CreatedOnPrimary", "OperationNotPerformed", "BackedUp"),
    ("BackingUp", "OperationSucceeded", "BackedUp"),
    ("BackingUp", "OperationFailed", "Error"),
    ("BackingUp", "OperationNotPerformed", "BackedUp"),
    ("BackedUp", "DestroyRequested", "Destroying"),
    ("BackedUp", "CopyingRequested", "Copying"),
    ("BackedUp", "BackupToSecondary", "BackingUp"),
    ("Copying", "OperationSucceeded", "BackedUp"),
    ("Copying", "OperationFailed", "BackedUp"),
    ("Destroying", "OperationSucceeded", "Destroyed"),
    ("Destroying", "OperationFailed", "BackedUp"),
    ("Destroying", "DestroyRequested", "Destroying"),
    ("BackingUp", "BackupToSecondary", "BackingUp"),
)

OBJECTINDATASTORE_TABLE: Table = (
    ("Allocated", "CreateOnlyRequested", "Creating"),
    ("Allocated", "DestroyRequested", "Destroying"),
    ("Allocated", "OperationFailed", "Failed"),
    ("Allocated", "OperationSuccessed", "Ready"),
    ("Creating", "OperationFailed", "Allocated"),
    ("Creating", "OperationSuccessed", "Ready"),
    ("Ready", "CopyingRequested", "Copying"),
    ("Copying", "OperationSuccessed", "Ready"),
    ("Copying", "OperationFailed", "Ready"),
    ("Ready", "DestroyRequested", "Destroying"),
    ("Destroying", "DestroyRequested", "Destroying"),
    ("Destroying", "OperationSuccessed", "Destroyed"),
    ("Destroying", "OperationFailed", "Destroying"),
    ("Failed", "DestroyRequested", "Destroying"),
    ("Ready", "OperationSuccessed", "Ready"),
    ("Ready", "MigrateDataRequested", "Migrating"),
    ("Ready", "CopyRequested", "Copying"),
    ("Allocated", "MigrateDataRequested", "Migrating"),
    ("Migrating", "MigrationFailed", "Failed"),
    ("Migrating", "MigrationSucceeded", "Destroyed"),
    ("Migrating", "OperationSuccessed", "Ready"),
    ("Migrating", "OperationFailed", "Ready"),
    ("Hidden", "DestroyRequested", "Destroying"),
)

TEMPLATE_TABLE: Table = (
    ("NotUploaded", "OperationTimeout", "UploadAbandoned"),
    ("NotUploaded", "UploadRequested", "UploadInProgress"),
    ("NotUploaded", "OperationSucceeded", "Active"),
    ("NotUploaded", "OperationFailed", "UploadError"),
    ("UploadInProgress", "OperationSucceeded", "Active"),
    ("UploadInProgress", "OperationFailed", "UploadError"),
    ("UploadInProgress", "OperationTimeout", "UploadError"),
)


#: StoragePoolStatus: CloudStack keeps only the values and moves a pool with plain
#: `setStatus` calls (`StoragePoolAutomationImpl.maintain`, `cancelMaintain`,
#: `PrimaryDataStoreHelper`, `disable`/`enable`), so the triggers are storctl's names
#: for those calls, and the rows are the moves storctl allows: maintenance from Up,
#: Disabled or a failed attempt; Remove only from Maintenance. storctl never sets
#: Initial, Initialized, Creating, Attaching or CancelMaintenance (no rows).
POOL_TABLE: Table = (
    ("Up", "Disable", "Disabled"),
    ("Disabled", "Enable", "Up"),
    ("Up", "PrepareForMaintenance", "PrepareForMaintenance"),
    ("Disabled", "PrepareForMaintenance", "PrepareForMaintenance"),
    ("ErrorInMaintenance", "PrepareForMaintenance", "PrepareForMaintenance"),
    ("PrepareForMaintenance", "MaintenanceReached", "Maintenance"),
    ("PrepareForMaintenance", "MaintenanceFailed", "ErrorInMaintenance"),
    ("Maintenance", "CancelMaintenance", "Up"),
    ("PrepareForMaintenance", "CancelMaintenance", "Up"),
    ("ErrorInMaintenance", "CancelMaintenance", "Up"),
    ("Maintenance", "Remove", "Removed"),
)

#: VirtualMachine.State, the part storage needs. The triggers StartRequested,
#: StopRequested and DestroyRequested are CloudStack's; storctl does no hypervisor work
#: it would wait on, so it skips Starting and Stopping (a start lands in Running in the
#: same save) and lets a Running VM be destroyed in one step (CloudStack stops it
#: first). `ExpungeRequested` is storctl's name for CloudStack's `ExpungeOperation`,
#: kept because stored events carry it; Expunging is where a VM ends here.
VM_TABLE: Table = (
    ("Stopped", "StartRequested", "Running"),
    ("Running", "StopRequested", "Stopped"),
    ("Stopped", "DestroyRequested", "Destroyed"),
    ("Running", "DestroyRequested", "Destroyed"),
    ("Destroyed", "ExpungeRequested", "Expunging"),
)

#: storctl's own: its Up/Disabled/Down is one column for what CloudStack keeps in two,
#: the agent's `Status` (Up, Down, ...: a machine of 51 rows driven by the agent's
#: connection) and the operator's `ResourceState` (Enabled, Disabled, ...). One trigger
#: leads to each state from both others: CloudStack's ResourceState events `Enable` and
#: `Disable` (`storctl host enable|disable`) and its Status event `HostDown`. A host is
#: never moved to the state it is in.
HOST_TABLE: Table = (
    ("Disabled", "Enable", "Up"),
    ("Down", "Enable", "Up"),
    ("Up", "Disable", "Disabled"),
    ("Down", "Disable", "Disabled"),
    ("Up", "HostDown", "Down"),
    ("Disabled", "HostDown", "Down"),
)

#: CloudStack's AsyncJob status (`JobInfo.Status`: IN_PROGRESS, SUCCEEDED, FAILED,
#: CANCELLED) has no machine: `completeAsyncJob` sets the outcome once. storctl's
#: states keep the CLI contract's names (`pending|succeeded|failed`), storctl never
#: cancels, and a job settles once, from pending.
JOB_TABLE: Table = (
    ("pending", "Succeeded", "succeeded"),
    ("pending", "Failed", "failed"),
)


@dataclass(frozen=True)
class Spec:
    """One kind's machine: the table, its `transitions.Machine`, and a lookup.
    `source` says whose table it is: CloudStack's verbatim, or storctl's own."""

    kind: str
    states: type[Enum]
    table: Table
    transitional: frozenset[str]
    machine: Any = field(repr=False, compare=False)
    lookup: dict[tuple[str, str], str] = field(repr=False, compare=False)
    source: str = "CloudStack"

    def next_state(
        self, obj_id: object, state: Enum, trigger: str, name: str | None = None
    ) -> Any:
        """The state `trigger` leads to from `state`, or `IllegalTransition`
        (naming the object by `name` where it has one)."""
        dest = self.lookup.get((state.name, trigger))
        if dest is None:
            raise IllegalTransition(
                self.kind, str(obj_id), state.name, trigger, name=name
            )
        return self.states[dest]

    def allows(self, state: Enum, trigger: str) -> bool:
        return (state.name, trigger) in self.lookup

    def triggers_from(self, state: Enum) -> list[str]:
        return sorted(t for (s, t) in self.lookup if s == state.name)

    def is_transitional(self, state: Enum) -> bool:
        return state.name in self.transitional


def build(
    kind: str,
    states: type[Enum],
    table: Table,
    transitional: set[str],
    source: str = "CloudStack",
) -> Spec:
    machine = Machine(
        model=None,
        states=[s.name for s in states],
        transitions=[{"trigger": e, "source": f, "dest": t} for f, e, t in table],
        initial=None,
        auto_transitions=False,
        name=kind,
    )
    # The lookup is read off the machine, not the table, so the guard is exactly what
    # `transitions` would do (first match wins; CloudStack keys are unique).
    lookup: dict[tuple[str, str], str] = {}
    for trigger, event in machine.events.items():
        for from_state, transitions_ in event.transitions.items():
            lookup.setdefault((from_state, trigger), str(transitions_[0].dest))
    return Spec(kind, states, table, frozenset(transitional), machine, lookup, source)


VOLUME = build(
    "Volume",
    VolumeState,
    VOLUME_TABLE,
    {
        "Creating",
        "Migrating",
        "Snapshotting",
        "RevertSnapshotting",
        "Resizing",
        "Expunging",
        "UploadOp",
        "Copying",
        "NotUploaded",
        "UploadInProgress",
        "Attaching",
        "Restoring",
    },
)
SNAPSHOT = build(
    "Snapshot",
    SnapshotState,
    SNAPSHOT_TABLE,
    {"Creating", "BackingUp", "Copying", "Destroying"},
)
OBJECT_IN_STORE = build(
    "ObjectInDataStore",
    ObjectInStoreState,
    OBJECTINDATASTORE_TABLE,
    {"Creating", "Creating2", "Copying", "Migrating", "Destroying"},
)
TEMPLATE = build("Template", TemplateState, TEMPLATE_TABLE, {"UploadInProgress"})
# Transitional, as `doctor` and the pictures mean it (work under way, not a resting
# state): a pool preparing for maintenance, a job not yet settled. storctl's VMs and
# hosts wait on no work: each of their states is a resting one.
POOL = build(
    "StoragePool", PoolStatus, POOL_TABLE, {"PrepareForMaintenance"}, "storctl"
)
VM = build("VirtualMachine", VmState, VM_TABLE, set(), "storctl")
HOST = build("Host", HostState, HOST_TABLE, set(), "storctl")
JOB = build("Job", JobStatus, JOB_TABLE, {"pending"}, "storctl")

#: every kind, by the name `storctl fsm show KIND` takes (`history`'s names for the
#: new four)
SPECS: dict[str, Spec] = {
    "volume": VOLUME,
    "snapshot": SNAPSHOT,
    "objectinstore": OBJECT_IN_STORE,
    "template": TEMPLATE,
    "pool": POOL,
    "vm": VM,
    "host": HOST,
    "job": JOB,
}
