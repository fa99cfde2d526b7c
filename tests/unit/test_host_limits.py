"""The per-host thresholds, pure (`ledger.host_limits`): which commands count as
snapshots, when a command may start, what a queued one waits behind."""

from __future__ import annotations

import pytest

from ledger.commands import (
    CopyCommand,
    CreateObjectCommand,
    DeleteCommand,
    SnapshotObjectTO,
    VolumeObjectTO,
)
from ledger.config import DEFAULTS, Settings, parse_value
from ledger.errors import InvalidInput
from ledger.host_limits import (
    COMMANDS,
    QUEUED,
    RUNNING,
    SNAPSHOTS,
    Limits,
    Slot,
    decide,
    is_snapshot,
    stale,
    waiting,
)

SNAP = SnapshotObjectTO(uuid="s", name="s", volume=None, dataStore=None)
VOL = VolumeObjectTO(uuid="v", name="v", volumeType="DATADISK", size=1, dataStore=None)
ME = ("m", 1, "me")
OTHER = ("m", 2, "other")


def slot(
    request: int,
    state: str,
    *,
    snapshot: bool = False,
    host: str = "h1",
    holder: tuple[str, int, str] = OTHER,
    expires: float = 100.0,
) -> Slot:
    return Slot(request, host, snapshot, state, f"job-{request}", "C", holder, expires)


def test_taking_and_backing_up_a_snapshot_count_as_snapshots() -> None:
    assert is_snapshot(CreateObjectCommand(commandId="1", data=SNAP))
    assert is_snapshot(CopyCommand(commandId="2", srcTO=SNAP, destTO=SNAP))
    assert not is_snapshot(CreateObjectCommand(commandId="3", data=VOL))
    # a volume made from a snapshot, a snapshot's delete: not throttled as snapshots
    assert not is_snapshot(CopyCommand(commandId="4", srcTO=SNAP, destTO=VOL))
    assert not is_snapshot(DeleteCommand(commandId="5", data=SNAP))


def test_the_keys_and_their_defaults() -> None:
    assert DEFAULTS[COMMANDS][0] == 5  # an agent's workers
    assert DEFAULTS[SNAPSHOTS][0] == 2
    assert Limits.of(Settings()) == Limits(commands=5, snapshots=2)
    assert Limits.of(Settings({SNAPSHOTS: 0})) == Limits(commands=5, snapshots=0)
    assert parse_value(SNAPSHOTS, "1") == 1
    for bad in ("-1", "two", "1.5"):
        with pytest.raises(InvalidInput):
            parse_value(COMMANDS, bad)


def test_a_command_starts_while_the_host_has_room() -> None:
    limits = Limits(commands=2, snapshots=1)
    assert decide([], slot(1, QUEUED, holder=ME), limits).start
    assert decide([slot(1, RUNNING)], slot(2, QUEUED, holder=ME), limits).start
    full = decide([slot(1, RUNNING), slot(2, RUNNING)], slot(3, QUEUED, holder=ME),
                  limits)  # fmt: skip
    assert not full.start
    assert full.key == COMMANDS
    assert [s.request for s in full.behind] == [1, 2]


def test_the_snapshot_threshold_holds_back_snapshots_only() -> None:
    limits = Limits(commands=5, snapshots=1)
    running = [slot(1, RUNNING, snapshot=True), slot(2, RUNNING)]
    second = decide(running, slot(3, QUEUED, snapshot=True, holder=ME), limits)
    assert not second.start
    assert second.key == SNAPSHOTS
    assert [s.request for s in second.behind] == [1]  # not the volume create
    assert decide(running, slot(4, QUEUED, holder=ME), limits).start


def test_zero_is_no_limit() -> None:
    running = [slot(i, RUNNING, snapshot=True) for i in range(50)]
    assert decide(running, slot(99, QUEUED, snapshot=True, holder=ME),
                  Limits(0, 0)).start  # fmt: skip


def test_an_earlier_queued_command_goes_first_but_holds_back_no_other_kind() -> None:
    limits = Limits(commands=2, snapshots=1)
    slots = [slot(1, RUNNING), slot(2, QUEUED)]  # room for one: request 2's
    assert not decide(slots, slot(3, QUEUED, holder=ME), limits).start
    assert decide(slots, slot(2, QUEUED, holder=OTHER), limits).start
    # a snapshot the snapshot threshold holds does not hold back a volume create
    snaps = [slot(1, RUNNING, snapshot=True), slot(2, QUEUED, snapshot=True)]
    assert decide(snaps, slot(3, QUEUED, holder=ME), limits).start


def test_a_request_running_under_another_holder_is_not_sent_twice() -> None:
    limits = Limits(commands=5, snapshots=5)
    verdict = decide([slot(7, RUNNING, holder=OTHER)], slot(7, QUEUED, holder=ME),
                     limits)  # fmt: skip
    assert verdict.elsewhere
    assert not verdict.start
    assert decide([slot(7, RUNNING, holder=ME)], slot(7, QUEUED, holder=ME),
                  limits).start  # fmt: skip


def test_a_slot_is_stale_at_its_wait_or_with_its_holder_gone() -> None:
    def alive(holder: tuple[str, int, str]) -> bool:
        return holder != OTHER

    assert not stale(slot(1, RUNNING, holder=ME, expires=10.0), 9.9, alive)
    assert stale(slot(1, RUNNING, holder=ME, expires=10.0), 10.0, alive)
    assert stale(slot(1, RUNNING, holder=OTHER, expires=10.0), 0.0, alive)


def test_waiting_names_what_each_queued_command_waits_behind() -> None:
    limits = Limits(commands=5, snapshots=1)
    slots = [
        slot(1, RUNNING, snapshot=True),
        slot(2, RUNNING),
        slot(3, QUEUED, snapshot=True),
        slot(4, QUEUED, snapshot=True),
    ]
    queued = waiting(slots, limits)
    assert set(queued) == {3, 4}
    assert [s.request for s in queued[3].behind] == [1]
    assert queued[4].key == SNAPSHOTS
    # room came free: it is shown as about to start, behind nothing
    free = waiting([slot(3, QUEUED, snapshot=True)], limits)
    assert free[3].behind == ()
    assert free[3].key is None
