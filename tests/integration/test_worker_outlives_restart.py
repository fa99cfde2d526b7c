"""`storctl executor run` outlives a PostgreSQL restart (issue 19's soak saw a
worker cut by the restart exit 3): on a private cluster stopped as a crash would
(`-m immediate`), the worker logs the failure, backs off, and once the server is
back it works a job submitted after the restart, still the same process.

The server stays down until the worker has logged a failure, so the test runs the
worker's own recovery (a new engine on a new pool), not only the library's retries,
which ride out a short restart unseen."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .conftest import Storctl, simulator_zone
from .pg_cluster import PgCluster, pg_bin, private_cluster

DEADLINE = 90.0  # seconds any one condition below may take, at the most


@pytest.fixture
def cluster() -> Iterator[PgCluster]:
    try:
        pg_bin("pg_ctl")
    except RuntimeError as e:
        if os.environ.get("CI"):
            pytest.fail(f"{e} (CI must run the restart test)")
        pytest.skip(str(e))
    with private_cluster("storctl-restart-") as pg:
        pg.init()
        pg.start()
        yield pg


def until(what: str, check: Callable[[], bool]) -> None:
    """Poll `check` until it holds, or fail after DEADLINE."""
    deadline = time.monotonic() + DEADLINE
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {DEADLINE:.0f} s: {what}")
        time.sleep(0.2)


def settled(cli: Storctl, job_id: str) -> Callable[[], bool]:
    def check() -> bool:
        shown = cli.run("job", "show", job_id)
        return shown.code == 0 and shown.json["status"] != "pending"

    return check


@pytest.mark.postgres
def test_a_worker_outlives_a_postgres_restart(
    cluster: PgCluster, tmp_path: Path
) -> None:
    cli = Storctl(cluster.url(), subprocess=True)
    simulator_zone(cli)
    log = tmp_path / "worker.err"
    with log.open("w") as err:
        worker = subprocess.Popen(
            cli.argv("executor", "run"),
            stdout=subprocess.DEVNULL,
            stderr=err,
            text=True,
            # the library's wait for a pooled connection (30 s by default, each of
            # its 10 tries): short, so the failure reaches the worker's loop soon
            env=cli.environ({"POSTGRES_CONNECT_TIMEOUT": "2"}),
        )
    try:
        # it works: a job submitted (not driven) is settled by the worker
        before = cli.ok("volume", "create", "a", "--zone", "z1", "--size", "1G",
                        "--pool", "p1", run_async=True)  # fmt: skip
        until("the worker settles a job", settled(cli, before["jobid"]))
        assert cli.job(before["jobid"])["status"] == "succeeded"

        cluster.crash()
        until(
            "the worker logs the database failing",
            lambda: "starting again in" in log.read_text(),
        )
        assert worker.poll() is None, log.read_text()
        cluster.start()

        after = cli.ok("volume", "create", "b", "--zone", "z1", "--size", "1G",
                       "--pool", "p1", run_async=True)  # fmt: skip
        until("the worker settles a job after the restart",
              settled(cli, after["jobid"]))  # fmt: skip
        assert cli.job(after["jobid"])["status"] == "succeeded"
        assert cli.volume("b")["state"] == "Ready"
        assert worker.poll() is None, log.read_text()  # the same process, alive
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=60)
    text = log.read_text()
    assert code == 0, text
    failures = [ln for ln in text.splitlines() if "starting again in" in ln]
    assert failures, text
    # one line per failure, naming the database, never a traceback
    assert all(ln.startswith("executor: the ledger's database failed:")
               for ln in failures), text  # fmt: skip
    assert "Traceback" not in text
