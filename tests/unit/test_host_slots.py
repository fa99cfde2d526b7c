"""Host slots in the database (`executors.host_slots`), on SQLite and PostgreSQL:
dispatchers on their own connections racing for a host's slots never take more
than the threshold; a slot goes at its wait's end, with its holder, or when given
back; what is queued is read back with what it waits behind."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from itertools import count

import pytest

from executors.host_slots import Ask, Slots, read, waiting
from executors.lease import Leases
from ledger.app import Ledger
from ledger.host_limits import COMMANDS, QUEUED, RUNNING, SNAPSHOTS, Limits
from ledger.store.database import parse_db


@pytest.fixture
def leases(ledger: Ledger, db_url: str) -> Iterator[Leases]:
    """The lease table's connection on a ledger's database (its schema made)."""
    made = Leases(parse_db(db_url))
    yield made
    made.close()


def ask(request: int, *, host: str = "h1", snapshot: bool = False,
        run_for: float = 60.0) -> Ask:  # fmt: skip
    return Ask(request, host, snapshot, f"job-{request}", "CopyCommand", run_for)


def test_racing_dispatchers_never_take_more_than_the_threshold(
    leases: Leases, db_url: str
) -> None:
    limits = Limits(commands=2, snapshots=0)
    requests = count(1)
    lock = threading.Lock()
    in_hand = 0
    most = 0
    started = 0
    errors: list[BaseException] = []

    def dispatcher(name: str) -> None:
        nonlocal in_hand, most, started
        own = Leases(parse_db(db_url))  # its own connection, as a process has
        slots = Slots(own, name)
        try:
            for _ in range(15):
                with lock:
                    request = next(requests)
                while not slots.claim([ask(request)], limits)[request].start:
                    pass  # asked again, as a dispatcher's next round does
                with lock:
                    in_hand += 1
                    started += 1
                    most = max(most, in_hand)
                running = [s for s in read(own) if s.state == RUNNING]
                assert len(running) <= limits.commands
                with lock:
                    in_hand -= 1
                slots.release([request])
        except BaseException as e:  # surfaced below
            errors.append(e)
        finally:
            own.close()

    threads = [threading.Thread(target=dispatcher, args=(f"d{i}",)) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert started == 75
    assert 1 <= most <= limits.commands
    assert [s for s in read(leases) if s.state == RUNNING] == []


def test_a_slot_goes_at_its_wait_with_its_holder_or_when_given_back(
    leases: Leases,
) -> None:
    now = [1000.0]
    dead: set[str] = set()
    one = Slots(leases, "one", clock=lambda: now[0],
                alive=lambda h: h[2] not in dead)  # fmt: skip
    two = Slots(leases, "two", clock=lambda: now[0],
                alive=lambda h: h[2] not in dead)  # fmt: skip
    limits = Limits(commands=1, snapshots=0)
    assert one.claim([ask(1, run_for=5)], limits)[1].start
    queued = two.claim([ask(2)], limits)[2]
    assert not queued.start
    assert queued.key == COMMANDS
    assert [s.request for s in queued.behind] == [1]
    now[0] += 5  # request 1's wait is over: its slot with it
    assert two.claim([ask(2)], limits)[2].start
    dead.add("two")  # its worker was killed: request 2's slot goes with it
    assert one.claim([ask(3)], limits)[3].start
    three = Slots(leases, "three", clock=lambda: now[0])
    assert not three.claim([ask(4)], limits)[4].start
    one.release([3])
    assert three.claim([ask(4)], limits)[4].start
    # a release only frees the holder's own slot
    one.release([4])
    assert not one.claim([ask(5)], limits)[5].start


def test_queued_commands_are_read_back_with_what_holds_them(leases: Leases) -> None:
    one, two = Slots(leases, "one"), Slots(leases, "two")
    limits = Limits(commands=5, snapshots=1)
    assert one.claim([ask(1, snapshot=True)], limits)[1].start
    verdicts = two.claim(
        [ask(2, snapshot=True), ask(3), ask(4, host="h2", snapshot=True)], limits
    )
    assert [verdicts[r].start for r in (2, 3, 4)] == [False, True, True]
    slots = read(leases)
    assert {(s.request, s.state) for s in slots} == {
        (1, RUNNING), (2, QUEUED), (3, RUNNING), (4, RUNNING),
    }  # fmt: skip
    shown = waiting(slots, limits)
    assert set(shown) == {"job-2"}
    assert shown["job-2"].host == "h1"
    assert shown["job-2"].key == SNAPSHOTS
    assert shown["job-2"].behind == ("job-1",)
    two.drop_queued()  # a dispatcher that stops leaves its queue to others
    assert waiting(read(leases), limits) == {}
    one.release([1])
    assert two.claim([ask(2, snapshot=True)], limits)[2].start
