"""CloudStack's GarbageCollectingStoragePoolAllocator, the last of the chain.

When no allocator found a pool, CloudStack runs storage cleanup (the template copies
no volume uses, `StorageManagerImpl.cleanupStorage`) and asks the chain again. Here
the retry is pure: `collect_garbage` judges the pools as if those copies were gone,
and the caller destroys them only on the pool that retry takes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from ledger.allocation.chain import allocate
from ledger.allocation.views import Decision, PoolView, Request, Verdict
from ledger.values import format_size


def collect_garbage(
    request: Request,
    pools: Sequence[PoolView],
    reclaimable: Mapping[str, int],
    threshold: float,
    refused: Decision,
    algorithm: str = "firstfit",
    seed: int = 0,
    used_threshold: float = 0.85,
) -> Decision:
    """Run the chain again as if every unused template copy (`reclaimable`: bytes
    per pool) were cleaned up. Only a pool that cleanup would free can change its
    verdict; the verdicts of the others stand as `refused` gave them."""
    if refused.chosen is not None or not reclaimable:
        return refused
    freed = [
        replace(p, allocated=max(0, p.allocated - reclaimable[p.id]))
        for p in pools
        if reclaimable.get(p.id, 0) > 0
    ]
    retry = allocate(request, freed, threshold, algorithm, seed, used_threshold)
    if retry.chosen is None:
        return refused
    size = format_size(reclaimable[retry.chosen])
    verdicts = [
        Verdict(
            v.pool_id,
            v.pool,
            "garbage",
            taken=True,
            reason=f"taken after cleaning up unused template copies ({size})",
        )
        if v.pool_id == retry.chosen
        else v
        for v in refused.verdicts
    ]
    return Decision(request=request, verdicts=verdicts, chosen=retry.chosen)
