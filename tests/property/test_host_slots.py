"""Never more than the thresholds in flight per host, whatever the interleaving
(issue 19): dispatchers ask for slots, queue, ask again, see their commands
return or time out, and die, in any order, against the real slot table
(`executors.host_slots` on SQLite, its clock and its holders' lives in the
test's hands). After every step the commands the model knows to be running
(started, not returned, wait not over, holder alive) stay within both
thresholds on every host; and a host with nothing running never keeps a live
dispatcher's command queued once every dispatcher has asked again."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from executors.host_slots import Ask, Slots
from executors.lease import Leases
from ledger.host_limits import Limits
from ledger.store.database import parse_db

HOSTS = ("h1", "h2")
DISPATCHERS = ("d0", "d1", "d2")


class HostSlots(RuleBasedStateMachine):
    @initialize(
        commands=st.integers(min_value=0, max_value=3),
        snapshots=st.integers(min_value=0, max_value=2),
    )
    def start(self, commands: int, snapshots: int) -> None:
        self.dir = tempfile.TemporaryDirectory()
        self.leases = Leases(parse_db(str(Path(self.dir.name) / "ledger.db")))
        self.limits = Limits(commands, snapshots)
        self.now = 1000.0
        self.dead: set[str] = set()
        self.slots = {
            d: Slots(self.leases, d, clock=self._clock, alive=self._alive)
            for d in DISPATCHERS
        }
        self.next_request = 1
        #: request -> (dispatcher, host, snapshot, expires) of every command
        #: started and not returned
        self.running: dict[int, tuple[str, str, bool, float]] = {}
        self.queued: dict[int, tuple[str, Ask]] = {}  # request -> (dispatcher, ask)

    def _clock(self) -> float:
        return self.now

    def _alive(self, holder: tuple[str, int, str]) -> bool:
        return holder[2] not in self.dead

    def teardown(self) -> None:
        if hasattr(self, "leases"):
            self.leases.close()
            self.dir.cleanup()

    def _claim(self, dispatcher: str, asks: list[Ask]) -> None:
        verdicts = self.slots[dispatcher].claim(asks, self.limits)
        for a in asks:
            if verdicts[a.request].start:
                self.queued.pop(a.request, None)
                expires = self.now + a.run_for
                self.running[a.request] = (dispatcher, a.host, a.snapshot, expires)
            else:
                self.queued[a.request] = (dispatcher, a)

    @rule(
        dispatcher=st.sampled_from(DISPATCHERS),
        host=st.sampled_from(HOSTS),
        snapshot=st.booleans(),
        run_for=st.sampled_from([1.0, 5.0, 60.0]),
    )
    def ask(self, dispatcher: str, host: str, snapshot: bool, run_for: float) -> None:
        if dispatcher in self.dead:
            return
        request = self.next_request
        self.next_request += 1
        self._claim(
            dispatcher, [Ask(request, host, snapshot, f"job-{request}", "C", run_for)]
        )

    @rule(dispatcher=st.sampled_from(DISPATCHERS))
    def ask_again(self, dispatcher: str) -> None:
        """A dispatcher's next round: its queued commands, in order."""
        ordered = sorted(self.queued.values(), key=_request)
        mine = [a for d, a in ordered if d == dispatcher]
        if mine and dispatcher not in self.dead:
            self._claim(dispatcher, mine)

    @precondition(lambda self: bool(self.running))
    @rule(data=st.data())
    def returns(self, data: st.DataObject) -> None:
        request = data.draw(st.sampled_from(sorted(self.running)))
        dispatcher = self.running.pop(request)[0]
        self.slots[dispatcher].release([request])

    @rule(seconds=st.sampled_from([0.5, 2.0, 10.0, 100.0]))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds  # commands past their wait have timed out
        self.running = {r: v for r, v in self.running.items() if v[3] > self.now}

    @rule(dispatcher=st.sampled_from(DISPATCHERS))
    def killed(self, dispatcher: str) -> None:
        self.dead.add(dispatcher)
        self.running = {r: v for r, v in self.running.items() if v[0] != dispatcher}
        self.queued = {r: v for r, v in self.queued.items() if v[0] != dispatcher}

    @invariant()
    def within_thresholds(self) -> None:
        if not hasattr(self, "running"):
            return
        for host in HOSTS:
            here = [v for v in self.running.values() if v[1] == host]
            if self.limits.commands:
                assert len(here) <= self.limits.commands, (host, here)
            if self.limits.snapshots:
                snaps = [v for v in here if v[2]]
                assert len(snaps) <= self.limits.snapshots, (host, snaps)

    @invariant()
    def an_idle_host_starts_its_queue(self) -> None:
        if not hasattr(self, "running"):
            return
        idle = {h for h in HOSTS if not any(v[1] == h for v in self.running.values())}
        if not any(a.host in idle for _, a in self.queued.values()):
            return
        for dispatcher in DISPATCHERS:
            self.ask_again(dispatcher)
        for host in idle:
            waiting = [a for _, a in self.queued.values() if a.host == host]
            started = [v for v in self.running.values() if v[1] == host]
            assert started or not waiting, (host, waiting)


def _request(entry: tuple[str, Ask]) -> int:
    return entry[1].request


TestHostSlots = HostSlots.TestCase
TestHostSlots.settings = settings(
    max_examples=40, stateful_step_count=25, deadline=None
)
