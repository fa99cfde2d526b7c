"""Pool statistics: ask a host that reaches the pool how much of it is in use.

CloudStack's StatsCollector sends `GetStorageStatsCommand` synchronously and stores
the answer in `storage_pool.used_bytes`; the allocators then refuse a pool whose
physical use reaches `pool.storage.capacity.disablethreshold`. Here the answer is an
event on the pool (`StatsReported`), so the figure the allocator used is on record.
Nothing waits on a job: the command is read-only, and it runs where it is asked.
"""

from __future__ import annotations

import uuid

from executors import endpoints
from executors.agents import Agents
from executors.dispatcher import Dispatcher
from ledger import transfer
from ledger.aggregate import Ctx
from ledger.app import Ledger
from ledger.commands import GetStorageStatsCommand
from ledger.errors import OperationFailed
from ledger.pool import StoragePool
from ledger.usecases.infrastructure import record_pool_stats


def collect(ledger: Ledger, agents: Agents, ctx: Ctx, ref: str) -> StoragePool:
    """Measure one pool through an endpoint and record what it reported."""
    pool = ledger.resolve(StoragePool, ref)
    command = GetStorageStatsCommand(
        commandId=str(uuid.uuid4()), store=transfer.primary_to(pool)
    )
    choice = endpoints.select(ledger, command)
    if choice.host is None:
        raise OperationFailed("", choice.reason, subject=f"pool {pool.name}")
    answer = Dispatcher(ledger, agents).run(choice.host, command)
    if not answer.result:  # no job: pool stats runs its command itself
        raise OperationFailed(
            "",
            str(answer.details),
            subject=f"pool {pool.name}",
            command=type(command).__name__,
            host=choice.host.name,
        )
    used = int(getattr(answer, "usedBytes", 0))
    return record_pool_stats(ledger, ctx, pool.id, used, choice.host.name)
