"""Several `storctl` processes at once on one database (SQLite and PostgreSQL).

Each CLI drives the engine for its own job, or waits while another holds the engine
lease; either way every job settles once, every request is answered once, and the
pool's books add up: no reservation lost or counted twice in the races.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ledger.store.database import parse_db
from tests.conftest import drop_pg_schema, fresh_pg_url

from .conftest import Storctl, assert_answered_at_most_once, finish

GiB = 1 << 30


def test_four_creates_and_two_deploys_at_once(sim) -> None:
    cli: Storctl = sim.cli
    template_size = sim.template["size"]
    assert cli.pool("p1")["disksizeallocated"] == 0

    commands = {
        f"vol{n}": ["volume", "create", f"vol{n}", "--zone", "z1", "--size", "1G",
                    "--pool", "p1"]
        for n in range(1, 5)
    } | {
        f"vm{n}": ["vm", "deploy", f"vm{n}", "--template", "t1", "--zone", "z1"]
        for n in range(1, 3)
    }  # fmt: skip
    procs = {name: cli.popen(*argv) for name, argv in commands.items()}
    results = {name: finish(proc, timeout=60) for name, proc in procs.items()}
    failed = {name: str(r) for name, r in results.items() if r.code != 0}
    assert not failed, "\n\n".join(f"{k}: {v}" for k, v in failed.items())

    for n in range(1, 5):
        assert results[f"vol{n}"].json["state"] == "Ready"
        vol = cli.volume(f"vol{n}")
        assert vol["state"] == "Ready"
        assert vol["storage"] == "p1"
        assert vol["size"] == GiB
    for n in range(1, 3):
        assert results[f"vm{n}"].json["state"] == "Running"
        root = cli.volume(f"ROOT-vm{n}")
        assert root["state"] == "Ready"
        assert root["storage"] == "p1"
        assert root["size"] == template_size

    jobs = cli.ok("job", "list")
    assert len(jobs) == 1 + 4 + 2  # the template's registration, then ours
    assert {j["status"] for j in jobs} == {"succeeded"}, jobs
    assert sorted(j["cmd"] for j in jobs if j["cmd"] != "template.register") == [
        *["vm.deploy"] * 2,
        *["volume.create"] * 4,
    ]

    pairs = assert_answered_at_most_once(cli.db)
    unanswered = [req.kind for req, answers in pairs.values() if not answers]
    assert unanswered == []
    template_copies = {
        req.originator_id
        for req, _ in pairs.values()
        if req.kind == "DataObjectInStore.CopyRequested"
    }
    assert len(template_copies) == 1, "the template is copied to the pool once"

    # four data volumes, two ROOT volumes, one cached template copy
    expected = 4 * GiB + 2 * template_size + template_size
    assert cli.pool("p1")["disksizeallocated"] == expected
    volumes = cli.ok("volume", "list", "--pool", "p1")
    assert len(volumes) == 6
    assert sum(v["size"] for v in volumes) == 4 * GiB + 2 * template_size


@pytest.fixture
def pg_cli() -> Iterator[Storctl]:
    url = fresh_pg_url()
    yield Storctl(url)
    drop_pg_schema(parse_db(url))


@pytest.mark.postgres
def test_concurrent_startups_on_postgres(pg_cli: Storctl) -> None:
    """Opening the ledger is safe in parallel: several `storctl pool list` at once on
    an existing schema all succeed. Each process runs the store's DDL at startup
    (CREATE OR REPLACE FUNCTION, CREATE INDEX IF NOT EXISTS), which PostgreSQL does
    not make safe against itself: "tuple concurrently updated", deadlocks."""
    cli = pg_cli
    cli.ok("host", "add", "h1", "--zone", "z1", "--cluster", "c1")
    cli.ok("pool", "add", "p1", "--zone", "z1", "--cluster", "c1",
           "--path", "/sim/p1", "--capacity", "10G", "--type", "simulator")  # fmt: skip
    for _ in range(2):
        procs = [cli.popen("pool", "list") for _ in range(6)]
        results = [finish(p, timeout=60) for p in procs]
        failed = [str(r) for r in results if r.code != 0]
        assert not failed, "\n\n".join(failed)
        assert all([p["name"] for p in r.json] == ["p1"] for r in results)
