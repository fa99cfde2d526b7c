"""`storctl describe KIND NAME`: the object, its last `why`, its last events, and
the commands its state machine allows next."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.describe import COMMANDS, KINDS, LAST, next_steps
from ledger.fsm import SPECS
from tests.integration.conftest import SimZone, Storctl, simulator_zone


@pytest.fixture
def zone(tmp_path: Path) -> SimZone:
    return simulator_zone(Storctl(str(tmp_path / "ledger.db")))


def test_a_ready_volume_says_where_it_went_what_happened_and_what_next(zone):
    cli = zone.cli
    cli.ok("volume", "create", "d1", "--zone", "z1", "--size", "1G", "--pool", "p1")
    doc = cli.ok("describe", "volume", "d1")
    assert (doc["kind"], doc["name"], doc["state"]) == ("volume", "d1", "Ready")
    assert doc["why"].startswith("pool p1 taken")
    assert [e["event"] for e in doc["events"]][-1] == "CreateAnswered"
    assert len(doc["events"]) == LAST
    commands = [step["command"] for step in doc["next"]]
    assert "storctl volume attach d1 --vm VM" in commands
    assert "storctl volume delete d1" in commands
    assert "storctl vm start d1" not in commands
    assert len(commands) == len(set(commands))  # one row per command


def test_the_next_steps_follow_the_state(zone):
    cli = zone.cli
    cli.ok("vm", "deploy", "web-1", "--template", "t1", "--zone", "z1")
    running = [s["command"] for s in cli.ok("describe", "vm", "web-1")["next"]]
    assert "storctl vm stop web-1" in running
    assert "storctl vm start web-1" not in running
    cli.ok("vm", "stop", "web-1")
    stopped = cli.ok("describe", "vm", "web-1")
    assert stopped["state"] == "Stopped"
    commands = [s["command"] for s in stopped["next"]]
    assert "storctl vm start web-1" in commands
    assert "storctl vm stop web-1" not in commands
    assert stopped["why"] is None  # only volumes have an allocation decision


def test_an_unknown_name_is_refused_in_one_line(zone):
    result = zone.cli.run("describe", "volume", "nope")
    assert result.code == 2
    assert result.err.strip() == "storctl: volume 'nope' not found"


@pytest.mark.parametrize("kind", KINDS)
def test_every_step_offered_is_one_the_state_machine_allows(kind):
    """From every state of every kind: each step is a transition of the table
    from that state, to the state the table says, with a storctl command."""
    spec = SPECS[kind]
    offered = 0
    for state in spec.states:
        for step in next_steps(kind, state.name, "x"):
            assert spec.lookup[(state.name, step["trigger"])] == step["to"]
            assert step["trigger"] in COMMANDS[kind]
            assert step["command"].startswith("storctl ")
            offered += 1
    assert offered > 0 or not COMMANDS[kind]
