"""Providers: one module or package per backend, CloudStack's `DataStoreProvider`.

A provider (`provider.Provider`) says which stores it serves (primary pools, image
stores), which locations it takes and how it checks one before anything is written,
what it can do, and which driver executes commands on it (`driver.Driver`). The
registry (`registry`) finds them through the entry-point group `storctl.providers`,
so `pip install` adds one. Built in: `filesystem`, `sharedmountpoint`,
`networkfilesystem` and `nfs` (mounted directories, one `directory` driver),
`simulator` (no disk I/O), `iscsi` (managed LUNs on tgtd), and `s3` and `swift`
(object stores, staged through a cache store); `docs/providers.md` says how each
behaves.

`locate` is the door the CLI (and later the ledger's use cases, through a port)
uses: the location checked by its provider, in the form the ledger records.
"""

from __future__ import annotations

from executors.providers.provider import Location, Provider, Role
from executors.providers.registry import installed, locate

__all__ = ["Location", "Provider", "Role", "installed", "locate"]
