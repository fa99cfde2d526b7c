"""CloudStack's StoragePoolAllocator chain, pure, with every verdict kept.

CloudStack tries `LocalStoragePoolAllocator` (host-scope pools of the VM's host, when
the offering asks for local storage), `ClusterScopeStoragePoolAllocator`, then
`ZoneWideStoragePoolAllocator`; the first that returns any pool wins. When none does,
`GarbageCollectingStoragePoolAllocator` cleans up the template copies no volume uses
and tries again. Each allocator asks small questions in order (avoid set, `Up`,
storage tags, capacity) and, unlike CloudStack, says why a pool was refused in words
an operator understands, so "No suitable pool" is explained from the ledger alone:
every pool of the zone gets a verdict.

The rooms, Cinder's scheduler shape:

- `views`: what the allocators read (`PoolView`, `Request`) and write (`Verdict`,
  `Group`, `Decision`), and what the read side hands over (`Suitable`).
- `filters`: one filter per question, each returning why it refuses or None;
  `refusal` and `scope_refusal` apply them in CloudStack's order. The read side's
  SQL twin of each (`projections.placement`) is keyed by the filter's `name`.
- `chain`: the allocators in CloudStack's order, `vm.allocation.algorithm`'s `pick`,
  and the verdict texts of a whole decision.
- `cleanup`: the GarbageCollectingStoragePoolAllocator, last of the chain.
"""
