"""The hash chain's heads as this process last committed them: what spares a
sealing recorder its look-ups on most appends.

To seal an append a recorder needs the log's newest hash and the newest stream hash
of each object the append continues. Reading them is a query per save (and on
SQLite one more per object), as much as the insert itself. Two facts make a cache
of them safe across processes without asking the database anything:

- a stream hash, once recorded for (object, version), never changes (history is
  append-only; an edit is what `ledger verify` reports). So a cached stream head is
  used only when its version is the one just before the new event's, and is right
  whoever appended since;
- the log head changes with every append, by anyone. It is used only when the new
  events' first position follows the position this process last sealed: positions
  are handed out under the insert's own lock (SQLite's write lock, PostgreSQL's
  table lock and sequence), so another process's committed append would have taken
  a position in between. A gap (another writer, PostgreSQL's rolled-back sequence
  values) is a miss, and the head is read as before.

What a transaction sealed becomes the cache only after it committed (`stage`, then
`commit`): a rolled-back append must not leave a head nobody recorded. The
recorder is shared by threads (the host commands' pool saves fault plans), so the
staged heads are per thread and the cache itself is updated under a lock; a stale
entry only ever causes a miss.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

from ledger.hashchain import Sealed

#: stream heads kept; beyond it the cache starts again (a miss costs one query)
LIMIT = 20_000


class ChainHeads:
    """The log head and stream heads of this process's last committed appends."""

    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._log: tuple[int, bytes] | None = None  # (position, log hash)
        self._streams: dict[str, tuple[int, bytes]] = {}  # key -> (version, hash)
        self._staged = threading.local()
        self.hits = self.misses = 0  # log-head look-ups spared and made

    def log_head(self, first_position: int) -> bytes | None:
        """The log hash just before `first_position`, when it is the last one this
        process committed (nobody appended since); None: read it."""
        known = self._log
        if known is not None and known[0] + 1 == first_position:
            self.hits += 1
            return known[1]
        self.misses += 1
        return None

    def stream_heads(
        self, continued: Mapping[str, int]
    ) -> tuple[dict[str, bytes], dict[str, int]]:
        """For objects continued after (key -> version): the heads known, and the
        ones to read."""
        known: dict[str, bytes] = {}
        missing: dict[str, int] = {}
        streams = self._streams
        for key, version in continued.items():
            cached = streams.get(key)
            if cached is not None and cached[0] == version:
                known[key] = cached[1]
            else:
                missing[key] = version
        return known, missing

    def stage(self, sealed: Sequence[Sealed]) -> None:
        """What this thread's open transaction sealed (kept if it commits)."""
        self._staged.sealed = list(sealed)

    def discard(self) -> None:
        self._staged.sealed = None

    def commit(self) -> None:
        """This thread's transaction committed: its heads are the newest it knows."""
        sealed: list[Sealed] | None = getattr(self._staged, "sealed", None)
        self._staged.sealed = None
        if not sealed:
            return
        last = sealed[-1]
        with self._lock:
            if self._log is None or self._log[0] < last.notification_id:
                self._log = (last.notification_id, last.log)
            if len(self._streams) + len(sealed) > self.limit:
                self._streams = {}
            streams = self._streams
            for s in sealed:
                cached = streams.get(s.originator_id)
                if cached is None or cached[0] < s.originator_version:
                    streams[s.originator_id] = (s.originator_version, s.stream)

    def forget(self) -> None:
        """Start again (nothing cached)."""
        with self._lock:
            self._log, self._streams = None, {}
