"""Every agent command storctl sends, built once: the command, then the request.

CloudStack builds each command where it is needed (`VolumeServiceImpl`,
`SnapshotServiceImpl`, the `*DataMotionStrategy`s); here each is built in one
function that fills the CloudStack-named command from the aggregates it concerns
(`transfer` makes their TOs) and records it on the object that waits for its answer
(`aggregate.request_*`, which guards the transition). Use cases and workflow steps
load what a command needs, then call one of these. Pure: no loading, no I/O.

Command ids derive from the causing event or request (`transfer.command_id`), so a
workflow decided again (replay verify) asks for the very same command. `wait` is the
command's timeout in seconds (`Ledger.wait(key)`).
"""

from ledger.requests.snapshots import (
    back_up_snapshot,
    delete_backup,
    delete_on_primary,
    restore_volume,
    revert_snapshot,
    take_snapshot,
)
from ledger.requests.templates import (
    cache_template,
    delete_template_copy,
    download_template,
    evict_template,
    stage_template,
    template_from,
)
from ledger.requests.volumes import (
    attach_volume,
    clone_volume,
    copy_template_to_volume,
    create_volume,
    detach_volume,
    expunge_volume,
    migrate_volume,
    remove_leftover,
    remove_stage,
    resize_volume,
    stage_volume,
    unstage_volume,
)

__all__ = [
    "attach_volume",
    "back_up_snapshot",
    "cache_template",
    "clone_volume",
    "copy_template_to_volume",
    "create_volume",
    "delete_backup",
    "delete_on_primary",
    "delete_template_copy",
    "detach_volume",
    "download_template",
    "evict_template",
    "expunge_volume",
    "migrate_volume",
    "remove_leftover",
    "remove_stage",
    "resize_volume",
    "restore_volume",
    "revert_snapshot",
    "stage_template",
    "stage_volume",
    "take_snapshot",
    "template_from",
    "unstage_volume",
]
