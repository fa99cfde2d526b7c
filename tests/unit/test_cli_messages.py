"""Refusals and failures name things and say what to do next (issue 20, item 6).

On a simulator zone: an agent's failed answer names the object, the command, the
host and the job (and the job's short id then works); a refused transition names
the VM, not its UUID, and gives the command that clears the way.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.integration.conftest import SimZone, Storctl, simulator_zone


@pytest.fixture
def sim(tmp_path: Path) -> SimZone:
    return simulator_zone(Storctl(str(tmp_path / "ledger.db")))


FAILED = re.compile(
    r"storctl: volume sv1: CreateObjectCommand on sim1 failed: insufficient space"
    r" \(job (?P<job>[0-9a-f]{8}); storctl job show (?P=job)\)\n"
)


@pytest.mark.parametrize("subprocess", [False, True], ids=["clirunner", "process"])
def test_a_failed_agent_command_names_volume_command_host_and_job(
    sim: SimZone, subprocess: bool
) -> None:
    cli = Storctl(sim.cli.db, subprocess=subprocess)
    fault = ("--command", "CreateObjectCommand", "--fail", "insufficient space")
    cli.ok("simulator", "configure", "--host", "sim1", *fault)
    result = cli.run("volume", "create", "sv1", "--zone", "z1", "--size", "1G",
                     "--pool", "p1")  # fmt: skip
    assert result.code == 3, result
    found = FAILED.fullmatch(result.err)
    assert found, result
    job = cli.ok("job", "show", found["job"])
    assert job["status"] == "failed"
    assert job["error"] == "insufficient space"


def test_a_running_vm_is_named_with_the_command_that_stops_it(sim: SimZone) -> None:
    cli = sim.cli
    vm = cli.ok("vm", "deploy", "web-1", "--template", "t1", "--zone", "z1")
    cli.ok("snapshot", "create", "ROOT-web-1", "--name", "nightly")
    result = cli.run("snapshot", "revert", "nightly")
    assert result.code == 2, result
    assert result.err == (
        "storctl: VM web-1 is Running: RevertSnapshotRequested is not allowed;"
        " stop it first (storctl vm stop web-1)\n"
    )
    assert vm["id"] not in result.err


def test_a_vm_with_data_disks_names_them_in_the_way_out(sim: SimZone) -> None:
    cli = sim.cli
    cli.ok("vm", "deploy", "web-1", "--template", "t1", "--zone", "z1")
    cli.ok("volume", "create", "d1", "--zone", "z1", "--size", "1G")
    cli.ok("volume", "attach", "d1", "--vm", "web-1")
    result = cli.run("vm", "destroy", "web-1")
    assert result.code == 2, result
    assert result.err.endswith(
        "(1 data volumes attached); detach them first (storctl volume detach d1)\n"
    ), result
