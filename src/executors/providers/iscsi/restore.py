"""Every target of an iSCSI pool made again: what `storctl pool targets POOL` runs.

tgtd keeps nothing across a restart. Each command on a volume re-makes that volume's
target when it finds it missing (`targets.Targets.ensure`); this makes them all at
once, for the volumes the ledger says are on the pool (the caller reads them from
the projected tables), so initiators (VMs) can log in again before any command
touches their volumes. Nothing is made for a volume whose LUN file is gone: that is
reported, not invented.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from executors.providers.command_run import CommandRun
from executors.providers.driver import AgentFailure
from executors.providers.iscsi.volumes import Volumes
from ledger.commands import PrimaryDataStoreTO
from ledger.errors import InvalidInput

COLUMNS = ["volume", "name", "target", "tid", "status"]


@dataclass(frozen=True)
class Restored:
    """One volume's target after the pass: `present` (it was whole), `made`
    (made again from its LUN file), `missing` (no LUN file), or `failed: why`."""

    volume: str
    name: str
    target: str
    tid: int | None
    status: str

    def row(self) -> dict[str, object]:
        return {
            "volume": self.volume,
            "name": self.name,
            "target": self.target,
            "tid": self.tid,
            "status": self.status,
        }


def restore(
    run: CommandRun, store: PrimaryDataStoreTO, volumes: Iterable[tuple[str, str]]
) -> list[Restored]:
    """The targets of `volumes` (uuid, name) on the pool `store`, made whole."""
    pool = Volumes(run).pool(store)
    out: list[Restored] = []
    for uuid, name in volumes:
        try:
            lun = pool.lun(uuid)
        except InvalidInput as exc:
            out.append(Restored(uuid, name, "", None, f"failed: {exc}"))
            continue
        if not lun.file.is_file():
            out.append(Restored(uuid, name, lun.iqn, None, "missing"))
            continue
        try:
            before = pool.targets.find(lun)
            target = pool.targets.ensure(lun)
        except AgentFailure as exc:
            out.append(Restored(uuid, name, lun.iqn, None, f"failed: {exc}"))
            continue
        status = "present" if before == target else "made"
        out.append(Restored(uuid, name, lun.iqn, target.tid, status))
    return out
