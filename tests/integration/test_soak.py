"""The soak, test-suite sized (issue 19): 35 s of 3 workers, 4 CLI loops, random
simulator faults, workers SIGKILLed and PostgreSQL restarted once, on a cluster of
its own; then the books (`soak_books`), `replay verify`, `doctor` and a rebuild.
`make soak` runs the same for minutes (`tools/soak.py`)."""

from __future__ import annotations

import os
import sys

import pytest

from .pg_cluster import PgCluster, pg_bin, private_cluster
from .soak import Soak

SECONDS = float(os.environ.get("STORCTL_SOAK_SECONDS", "35"))


@pytest.fixture
def cluster():
    """A private PostgreSQL cluster; the test needs PostgreSQL's own binaries."""
    try:
        pg_bin("pg_ctl")
    except RuntimeError as e:
        if os.environ.get("CI"):
            pytest.fail(f"{e} (CI must run the soak)")
        pytest.skip(str(e))
    with private_cluster("storctl-soak-") as pg:
        yield pg


@pytest.mark.postgres
def test_soak_with_kills_faults_and_a_postgres_restart(cluster: PgCluster) -> None:
    soak = Soak(
        cluster, seconds=SECONDS, seed=int(os.environ.get("STORCTL_SOAK_SEED", "7"))
    )
    report = soak.run()
    soak.check()
    sys.stdout.write(report.json() + "\n")  # shown with -s
    # the run did what it says, or its zeros mean nothing
    assert report.kills >= 3, report
    assert report.pg_restarts == 1, report
    assert sum(report.faults.values()) >= 5, report
    assert report.jobs.get("succeeded", 0) >= 10, report
    assert report.lost == report.doubled == report.overbooked == 0
