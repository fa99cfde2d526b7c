"""Agent faults on a simulator host, through the CLI, on SQLite and PostgreSQL.

What CLI.md promises for exit 3: the agent's words on stderr (one line), the failure
recorded, the object back in the state CloudStack's table names, and its reservation
on the pool given back, so that the next attempt starts from a clean slate.
"""

from __future__ import annotations

from .conftest import SimZone, assert_answered_at_most_once


def _vm_and_volume(sim: SimZone) -> tuple[dict, dict]:
    cli = sim.cli
    vm = cli.ok("vm", "deploy", "vm1", "--template", "t1", "--zone", "z1")
    assert vm["state"] == "Running"
    vol = cli.ok("volume", "create", "data1", "--zone", "z1", "--size", "1G")
    assert vol["state"] == "Allocated"
    assert vol["storageid"] is None
    return vm, vol


def test_create_failure_on_attach_leaves_volume_allocated(sim: SimZone) -> None:
    cli = sim.cli
    vm, _ = _vm_and_volume(sim)
    before = cli.pool("p1")["disksizeallocated"]
    assert before > 0  # the ROOT volume and the template's copy
    cli.ok("simulator", "configure", "--host", "sim1",
           "--command", "CreateObjectCommand",
           "--fail", "insufficient space", "--count", "1")  # fmt: skip

    failed = cli.run("volume", "attach", "data1", "--vm", "vm1")
    assert failed.code == 3, failed
    assert "insufficient space" in failed.err, failed
    assert len(failed.err.strip().splitlines()) == 1, failed
    assert failed.out.strip() == "", failed

    after = cli.volume("data1")
    assert after["state"] == "Allocated"
    assert after["storageid"] is None
    assert after["storage"] is None
    assert after["path"] is None
    assert after["virtualmachineid"] is None
    assert cli.pool("p1")["disksizeallocated"] == before
    jobs = [j for j in cli.ok("job", "list") if j["cmd"] == "volume.attach"]
    assert [j["status"] for j in jobs] == ["failed"]
    assert "insufficient space" in jobs[0]["error"]

    # the fault was for one command only: the second attempt goes through
    attached = cli.ok("volume", "attach", "data1", "--vm", "vm1")
    assert attached["state"] == "Ready"
    assert attached["virtualmachineid"] == vm["id"]
    assert attached["storage"] == "p1"
    assert attached["deviceid"] == 1
    assert cli.pool("p1")["disksizeallocated"] == before + (1 << 30)
    assert_answered_at_most_once(cli.db)


def test_no_endpoint_when_every_host_is_disabled(sim: SimZone) -> None:
    cli = sim.cli
    before = cli.pool("p1")["disksizeallocated"]
    cli.ok("host", "disable", "sim1")

    failed = cli.run("volume", "create", "v1", "--zone", "z1", "--size", "1G",
                     "--pool", "p1")  # fmt: skip
    assert failed.code == 3, failed
    assert "No remote endpoint" in failed.err, failed
    assert len(failed.err.strip().splitlines()) == 1, failed

    # nothing was made: the volume is gone, its name free (the failure kept)
    vol = cli.failed("volume.create")
    assert vol["state"] == "Expunged"
    assert vol["storageid"] is None
    assert cli.pool("p1")["disksizeallocated"] == before

    # with the host back, the retry is the one volume by that name
    cli.ok("host", "enable", "sim1")
    again = cli.ok("volume", "create", "v1", "--zone", "z1", "--size", "1G",
                   "--pool", "p1")  # fmt: skip
    assert again["state"] == "Ready"
    assert cli.volume("v1")["id"] == again["id"] != vol["id"]


def test_hung_create_times_out_and_rolls_back(sim: SimZone) -> None:
    cli = sim.cli
    before = cli.pool("p1")["disksizeallocated"]
    cli.ok("config", "set", "wait", "2")
    cli.ok("simulator", "configure", "--host", "sim1",
           "--command", "CreateObjectCommand", "--hang", "--count", "1")  # fmt: skip

    failed = cli.run("volume", "create", "v1", "--zone", "z1", "--size", "1G",
                     "--pool", "p1", timeout=30)  # fmt: skip
    assert failed.code == 3, failed
    assert "timed out after 2 s" in failed.err, failed

    vol = cli.failed("volume.create")
    assert vol["state"] == "Expunged"
    assert vol["storageid"] is None
    assert cli.pool("p1")["disksizeallocated"] == before


def test_hung_attach_times_out_and_volume_stays_ready(sim: SimZone) -> None:
    cli = sim.cli
    vm, _ = _vm_and_volume(sim)
    created = cli.ok("volume", "create", "data2", "--zone", "z1", "--size", "1G",
                     "--pool", "p1")  # fmt: skip
    assert created["state"] == "Ready"
    allocated = cli.pool("p1")["disksizeallocated"]
    cli.ok("config", "set", "wait", "2")
    cli.ok("simulator", "configure", "--host", "sim1",
           "--command", "AttachCommand", "--hang", "--count", "1")  # fmt: skip

    failed = cli.run("volume", "attach", "data2", "--vm", "vm1", timeout=30)
    assert failed.code == 3, failed
    assert "timed out after 2 s" in failed.err, failed

    vol = cli.volume("data2")
    assert vol["state"] == "Ready"
    assert vol["virtualmachineid"] is None
    assert vol["storage"] == "p1"
    assert cli.pool("p1")["disksizeallocated"] == allocated

    # the device the failed attach reserved is free again
    again = cli.ok("volume", "attach", "data2", "--vm", "vm1")
    assert again["virtualmachineid"] == vm["id"]
    assert again["deviceid"] == 1
