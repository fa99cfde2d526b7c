"""Host slots: the commands in flight on each host, and those queued, in the
database, so that every dispatcher of every process counts the same ones.

A dispatcher claims a slot before it sends a command (`claim`: one short
transaction, `BEGIN IMMEDIATE` on SQLite, a per-host advisory lock on
PostgreSQL, so two processes cannot both take the last slot), and gives it back
when the command returns (`release`). The rule is `ledger.host_limits`: a slot
is stale once its command's wait is over or its holder's process is gone, and a
command beyond `concurrent.commands.threshold.perhost` or
`concurrent.snapshots.threshold.perhost` is recorded queued, to start at its
dispatcher's next round after room comes free. `waiting` is what `job list`
shows: which jobs are queued, on which host, and behind which jobs.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from executors.lease import Leases, process_alive
from ledger.host_limits import (
    QUEUED,
    RUNNING,
    Holder,
    Limits,
    Slot,
    Verdict,
    decide,
    stale,
)
from ledger.host_limits import waiting as waiting_on

TABLE = "storctl_host_slot"
#: seconds a queued slot lasts unless its dispatcher asks again (every round)
QUEUED_TTL = 30.0

_DDL = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} ("
    " request BIGINT PRIMARY KEY, host TEXT NOT NULL, snapshot INTEGER NOT NULL,"
    " state TEXT NOT NULL, job_id TEXT NOT NULL, command TEXT NOT NULL,"
    " holder_host TEXT NOT NULL, holder_pid INTEGER NOT NULL,"
    " holder_token TEXT NOT NULL, expires DOUBLE PRECISION NOT NULL)"
)
_COLUMNS = (
    "request, host, snapshot, state, job_id, command,"
    " holder_host, holder_pid, holder_token, expires"
)


def _slot(row: Sequence[Any]) -> Slot:
    request, host, snapshot, state, job_id, command, h_host, h_pid, token, exp = row
    return Slot(
        int(request),
        host,
        bool(snapshot),
        state,
        job_id,
        command,
        (h_host, int(h_pid), token),
        float(exp),
    )


@dataclass(frozen=True)
class Ask:
    """A command a dispatcher wants to send: its slot-to-be and how long it may
    run (what is left of its wait), after which the slot is stale."""

    request: int
    host: str
    snapshot: bool
    job_id: str
    command: str
    run_for: float


@dataclass(frozen=True)
class Queued:
    """A queued command as `job list` shows it."""

    job_id: str
    host: str
    command: str
    key: str | None  # the threshold that holds it (None: room just came free)
    behind: tuple[str, ...]  # the jobs whose commands hold the host's slots


class Slots:
    """Claim, release and read host slots through the lease table's kept
    connection (`Leases.transact`)."""

    def __init__(
        self,
        leases: Leases,
        token: str,
        *,
        clock: Callable[[], float] = time.time,
        alive: Callable[[Holder], bool] | None = None,
    ) -> None:
        self.leases = leases
        self.db = leases.db
        self.me: Holder = (socket.gethostname(), leases.me[1], token)
        self.clock = clock  # epoch seconds (tests move it)
        self.alive = alive or holder_alive
        self._made = False

    def _ensure(self, cur: Any) -> None:
        if self._made:
            return
        if self.db.kind == "postgres":
            # Concurrent CREATE TABLE IF NOT EXISTS can fail on PostgreSQL.
            cur.execute(f"SELECT pg_advisory_xact_lock(hashtext('{TABLE}'))")
        cur.execute(_DDL)
        self._made = True

    def _lock_host(self, cur: Any, host: str) -> None:
        if self.db.kind == "postgres":  # SQLite: BEGIN IMMEDIATE holds the file
            key = f"{TABLE}:{host}"
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (key,))

    def _live(self, cur: Any, host: str, now: float) -> list[Slot]:
        """The host's slots, the stale ones deleted."""
        cur.execute(f"SELECT {_COLUMNS} FROM {TABLE} WHERE host = %s", (host,))
        live: list[Slot] = []
        for slot in map(_slot, cur.fetchall()):
            if stale(slot, now, self.alive):
                cur.execute(
                    f"DELETE FROM {TABLE} WHERE request = %s AND holder_token = %s",
                    (slot.request, slot.holder[2]),
                )
            else:
                live.append(slot)
        return live

    def claim(self, asks: Sequence[Ask], limits: Limits) -> dict[int, Verdict]:
        """Decide every ask, in request order, host by host, in one transaction:
        a slot taken (`start`), or the ask recorded queued (or running elsewhere)."""
        verdicts: dict[int, Verdict] = {}

        def work(cur: Any) -> None:
            verdicts.clear()
            self._ensure(cur)
            now = self.clock()
            for host in sorted({a.host for a in asks}):
                self._lock_host(cur, host)
                live = self._live(cur, host, now)
                mine = sorted((a for a in asks if a.host == host), key=_by_request)
                for ask in mine:
                    verdict = self._decide(cur, live, ask, limits, now)
                    verdicts[ask.request] = verdict

        self.leases.transact(work)
        return verdicts

    def _decide(
        self, cur: Any, live: list[Slot], ask: Ask, limits: Limits, now: float
    ) -> Verdict:
        candidate = Slot(
            ask.request, ask.host, ask.snapshot, QUEUED, ask.job_id, ask.command,
            self.me, now + QUEUED_TTL,
        )  # fmt: skip
        verdict = decide(live, candidate, limits)
        if verdict.elsewhere:
            return verdict
        if verdict.start:
            candidate = Slot(
                ask.request, ask.host, ask.snapshot, RUNNING, ask.job_id,
                ask.command, self.me, now + max(ask.run_for, 0.0),
            )  # fmt: skip
        cur.execute(
            f"INSERT INTO {TABLE} ({_COLUMNS})"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (request) DO UPDATE SET host = excluded.host,"
            " snapshot = excluded.snapshot, state = excluded.state,"
            " job_id = excluded.job_id, command = excluded.command,"
            " holder_host = excluded.holder_host, holder_pid = excluded.holder_pid,"
            " holder_token = excluded.holder_token, expires = excluded.expires",
            (
                candidate.request, candidate.host, int(candidate.snapshot),
                candidate.state, candidate.job_id, candidate.command,
                *candidate.holder, candidate.expires,
            ),
        )  # fmt: skip
        live[:] = [s for s in live if s.request != ask.request] + [candidate]
        return verdict

    def release(self, requests: Sequence[int]) -> None:
        """These commands returned (or will never be sent by us): their slots go."""
        if not requests:
            return

        def work(cur: Any) -> None:
            self._ensure(cur)
            for request in requests:
                cur.execute(
                    f"DELETE FROM {TABLE} WHERE request = %s AND holder_token = %s",
                    (request, self.me[2]),
                )

        self.leases.transact(work)

    def drop_queued(self) -> None:
        """This dispatcher stops: its queued commands are another's to send."""

        def work(cur: Any) -> None:
            self._ensure(cur)
            cur.execute(
                f"DELETE FROM {TABLE} WHERE holder_token = %s AND state = %s",
                (self.me[2], QUEUED),
            )

        self.leases.transact(work)


def _by_request(ask: Ask) -> int:
    return ask.request


def holder_alive(holder: Holder) -> bool:
    return process_alive(holder[0], holder[1])


def read(
    leases: Leases,
    *,
    clock: Callable[[], float] = time.time,
    alive: Callable[[Holder], bool] = holder_alive,
) -> list[Slot]:
    """Every live slot (read only: no table made, nothing deleted)."""
    db = leases.db

    def work(cur: Any) -> list[Slot]:
        if db.kind == "postgres":
            cur.execute("SELECT to_regclass(%s)", (TABLE,))
        else:
            cur.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name = %s",
                (TABLE,),
            )
        row = cur.fetchone()
        if row is None or row[0] is None:
            return []
        cur.execute(f"SELECT {_COLUMNS} FROM {TABLE} ORDER BY request")
        return [_slot(r) for r in cur.fetchall()]

    now = clock()
    slots = leases.transact(work, write=False)
    return [s for s in slots if not stale(s, now, alive)]


def waiting(slots: Sequence[Slot], limits: Limits) -> dict[str, Queued]:
    """job id -> what its queued command waits behind (the earliest queued
    command of the job, when it has several)."""
    by_job = {s.request: s.job_id for s in slots}
    out: dict[str, Queued] = {}
    for host in sorted({s.host for s in slots}):
        mine = [s for s in slots if s.host == host]
        for request, verdict in sorted(waiting_on(mine, limits).items()):
            slot = next(s for s in mine if s.request == request)
            if slot.job_id in out:
                continue
            behind = tuple(dict.fromkeys(by_job[s.request] for s in verdict.behind))
            out[slot.job_id] = Queued(
                slot.job_id, host, slot.command, verdict.key, behind
            )
    return out
