"""How the CLI takes a reference: a full id, a name, or a unique id prefix.

Through `CliRunner` on a simulator zone: a job's first eight characters work for
`job show`, `job wait` and `audit --job`; a VM's prefix works for a write
(`vm stop`, resolved by the ledger); a repeated volume name is refused with exit 2
and one line naming each match with its short id, and that short id then works.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import SimZone, Storctl, simulator_zone


@pytest.fixture
def sim(tmp_path: Path) -> SimZone:
    return simulator_zone(Storctl(str(tmp_path / "ledger.db")))


def test_a_job_id_prefix_works_for_show_wait_and_audit(sim: SimZone) -> None:
    cli = sim.cli
    create = ("volume", "create", "d1", "--zone", "z1", "--size", "1G")
    job = cli.ok(*create, run_async=True)
    full = job["jobid"]
    assert cli.ok("job", "show", full[:8])["jobid"] == full
    assert cli.ok("job", "wait", full[:8])["status"] == "succeeded"
    rows = cli.ok("audit", "--job", full[:8])
    assert rows, "the job's events"
    assert {row["jobid"] for row in rows} == {full}


def test_a_vm_id_prefix_works_for_a_write(sim: SimZone) -> None:
    cli = sim.cli
    vm = cli.ok("vm", "deploy", "web-1", "--template", "t1", "--zone", "z1")
    cli.ok("vm", "stop", vm["id"][:6])
    assert cli.ok("vm", "show", "web-1")["state"] == "Stopped"


def test_an_unknown_prefix_is_not_found(sim: SimZone) -> None:
    result = sim.cli.run("job", "show", "ffffffff")
    assert result.code == 2, result
    assert result.err.strip() == "storctl: job 'ffffffff' not found"


def test_a_repeated_name_is_refused_listing_names_and_short_ids(sim: SimZone) -> None:
    cli = sim.cli
    ids = [
        cli.ok("volume", "create", "dup", "--zone", "z1", "--size", "1G")["id"]
        for _ in range(2)
    ]
    result = cli.run("volume", "show", "dup")
    assert result.code == 2, result
    assert result.out == ""
    assert result.err.count("\n") == 1, result
    head = "storctl: volume 'dup' is ambiguous: 2 match ("
    assert result.err.startswith(head), result
    for vid in ids:
        assert f"dup ({vid[:8]})" in result.err
        assert cli.ok("volume", "show", vid[:8])["id"] == vid
