"""What one process remembers of the ledger (the aggregate cache, the ids it found
absent) never hides another process's writes, nor its own unsaved changes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ledger.aggregate import Ctx
from ledger.app import Ledger
from ledger.config import CONFIG_ID, Config
from ledger.errors import NotFound
from ledger.host import Host
from ledger.simulator_plan import SimulatorPlan, plan_id
from ledger.store.database import parse_db
from ledger.usecases import infrastructure, simulator
from ledger.values import Hypervisor


def ctx() -> Ctx:
    return Ctx.new("t")


@pytest.fixture
def other(ledger: Ledger, db_url: str) -> Iterator[Ledger]:
    """A second Ledger on the same database: another CLI, with its own cache."""
    app = Ledger(env=parse_db(db_url).env)
    yield app
    app.close()


def test_settings_set_by_another_process_are_seen_after_a_remembered_miss(
    ledger: Ledger, other: Ledger
) -> None:
    factor = "storage.overprovisioning.factor"
    assert ledger.settings().get(factor) == 2.0
    assert ledger.settings().get(factor) == 2.0  # the remembered miss
    infrastructure.set_config(other, ctx(), factor, "3.5")
    assert ledger.settings().get(factor) == 3.5
    infrastructure.set_config(other, ctx(), factor, "4")
    assert ledger.settings().get(factor) == 4.0


def test_config_first_set_here_after_a_miss_is_kept_by_the_next_set_elsewhere(
    ledger: Ledger, other: Ledger
) -> None:
    """Both processes remembered the miss; the second `config set` finds the
    first one's Config instead of starting another."""
    ledger.settings()
    other.settings()
    infrastructure.set_config(ledger, ctx(), "wait", "60")
    infrastructure.set_config(other, ctx(), "copy.volume.wait", "120")
    for app in (ledger, other):
        assert app.settings().get("wait") == 60
        assert app.settings().get("copy.volume.wait") == 120
    assert len(ledger.load(Config, CONFIG_ID).values) == 2


def test_a_simulator_plan_configured_elsewhere_is_found_after_a_miss(
    ledger: Ledger, other: Ledger
) -> None:
    infrastructure.register_host(
        ledger, ctx(), "sim1", "z1", "c1", Hypervisor.Simulator
    )
    host_id = ledger.resolve(Host, "sim1").id
    assert ledger.find(SimulatorPlan, plan_id(host_id)) is None
    assert ledger.find(SimulatorPlan, plan_id(host_id)) is None
    simulator.configure_simulator(
        other, ctx(), "sim1", "CopyCommand", "fail", details="boom"
    )
    plan = ledger.find(SimulatorPlan, plan_id(host_id))
    assert plan is not None
    assert plan.faults["CopyCommand"]["details"] == "boom"


def test_an_aggregate_saved_here_then_changed_elsewhere_loads_with_the_change(
    ledger: Ledger, other: Ledger
) -> None:
    config = Config.start(ctx())
    config.set(ctx(), "wait", "60")
    ledger.save(config)
    theirs = other.load(Config, CONFIG_ID)
    theirs.set(ctx(), "wait", "90")
    other.save(theirs)
    assert ledger.load(Config, CONFIG_ID).get("wait") == 90


def test_changes_made_after_a_save_and_not_saved_are_not_loaded(
    ledger: Ledger,
) -> None:
    config = Config.start(ctx())
    config.set(ctx(), "wait", "60")
    ledger.save(config)
    config.set(ctx(), "wait", "99")  # never saved
    assert ledger.load(Config, CONFIG_ID).get("wait") == 60
    assert ledger.settings().get("wait") == 60


def test_an_id_never_saved_stays_not_found(ledger: Ledger) -> None:
    for _ in range(2):
        with pytest.raises(NotFound):
            ledger.load(Config, CONFIG_ID)


def test_peek_many_sees_other_processes_changes_to_cached_aggregates(
    ledger: Ledger, other: Ledger
) -> None:
    infrastructure.register_host(
        ledger, ctx(), "sim1", "z1", "c1", Hypervisor.Simulator
    )
    infrastructure.set_config(ledger, ctx(), "wait", "60")
    host_id = ledger.resolve(Host, "sim1").id
    absent = plan_id(host_id)
    first = ledger.peek_many([CONFIG_ID, host_id, absent])
    assert set(first) == {CONFIG_ID, host_id}
    infrastructure.set_config(other, ctx(), "wait", "61")
    infrastructure.set_config(other, ctx(), "copy.volume.wait", "62")
    infrastructure.register_host(other, ctx(), "sim2", "z1", "c1", Hypervisor.Simulator)
    simulator.configure_simulator(other, ctx(), "sim1", "CopyCommand", "fail")
    again = ledger.peek_many([CONFIG_ID, host_id, absent])
    config = again[CONFIG_ID]
    assert isinstance(config, Config)
    assert (config.get("wait"), config.get("copy.volume.wait")) == (61, 62)
    assert config.version == other.load(Config, CONFIG_ID).version
    assert isinstance(again[absent], SimulatorPlan)
    assert ledger.load(Config, CONFIG_ID).get("wait") == 61
