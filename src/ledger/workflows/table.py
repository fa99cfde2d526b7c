"""The one table from an answer event's class to the workflow step that follows it.

Events not in the table cause no decision. `decide` is what the engine's workflow
follower and `replay verify` call for every event of the log, in order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ledger.aggregate import Ctx
from ledger.app import Ledger
from ledger.copies import DataObjectInStore
from ledger.snapshot import Snapshot
from ledger.volume import Volume
from ledger.workflows.answers import Decided, context_of
from ledger.workflows.copies import copy_answered, copy_destroyed
from ledger.workflows.snapshots import (
    snapshot_destroyed,
    snapshot_taken,
    volume_reverted,
)
from ledger.workflows.templates import template_downloaded
from ledger.workflows.volumes import (
    volume_attached,
    volume_copied,
    volume_created,
    volume_detached,
    volume_expunged,
    volume_resized,
)

Step = Callable[[Ledger, Any, Ctx], Decided]

STEPS: dict[type[Any], Step] = {
    DataObjectInStore.DownloadAnswered: template_downloaded,
    DataObjectInStore.CopyAnswered: copy_answered,
    DataObjectInStore.DestroyAnswered: copy_destroyed,
    Snapshot.CreateAnswered: snapshot_taken,
    Snapshot.DestroyAnswered: snapshot_destroyed,
    Volume.RevertAnswered: volume_reverted,
    Volume.ResizeAnswered: volume_resized,
    Volume.CreateAnswered: volume_created,
    Volume.CopyAnswered: volume_copied,
    Volume.AttachAnswered: volume_attached,
    Volume.DetachAnswered: volume_detached,
    Volume.ExpungeAnswered: volume_expunged,
}


def decide(ledger: Ledger, event: Any) -> Decided:
    """What follows `event`: the aggregates to save (maybe none)."""
    step = STEPS.get(type(event))
    if step is None:
        return []
    return step(ledger, event, context_of(event))
