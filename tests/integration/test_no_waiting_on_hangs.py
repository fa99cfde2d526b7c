"""Commands never wait on each other's hangs (issue 19): a command hung on one host
at a 60 s wait, and another CLI's own job still settles at once; the hung one
settles by its own wait, whoever drives it next."""

from __future__ import annotations

import time

from .conftest import SimZone


def test_a_second_cli_finishes_its_own_job_whatever_hangs(sim: SimZone) -> None:
    cli = sim.cli
    cli.ok("config", "set", "wait", "60")
    # aimed at volume a: of the two CreateObjectCommands the engine sends together,
    # b's may reach the simulator first, and must not be the one that hangs
    cli.ok("simulator", "configure", "--host", "sim1",
           "--command", "CreateObjectCommand", "--hang", "--count", "1",
           "--target", "a")  # fmt: skip
    hung = cli.ok("volume", "create", "a", "--zone", "z1", "--size", "1G",
                  "--pool", "p1", run_async=True)  # fmt: skip
    began = time.monotonic()
    done = cli.run("volume", "create", "b", "--zone", "z1", "--size", "1G",
                   "--pool", "p1", timeout=120)  # fmt: skip
    took = time.monotonic() - began
    assert done.code == 0, done
    assert done.json["state"] == "Ready"
    # it did not sit out the other command's 60 s wait
    assert took < 30, f"waited {took:.1f} s on another command's hang"
    # the hung command is still unanswered (its request stays in flight)
    assert cli.volume("a")["state"] == "Creating"
    assert cli.job(hung["jobid"])["status"] == "pending"


def test_a_hung_command_still_times_out_by_its_own_wait(sim: SimZone) -> None:
    cli = sim.cli
    cli.ok("config", "set", "wait", "2")
    cli.ok("simulator", "configure", "--host", "sim1",
           "--command", "CreateObjectCommand", "--hang", "--count", "1")  # fmt: skip
    failed = cli.run("volume", "create", "a", "--zone", "z1", "--size", "1G",
                     "--pool", "p1", timeout=60)  # fmt: skip
    assert failed.code == 3, failed
    assert "timed out after 2 s" in failed.err
    # the next one, with nothing hung, is created
    assert cli.ok("volume", "create", "b", "--zone", "z1", "--size", "1G",
                  "--pool", "p1")["state"] == "Ready"  # fmt: skip
