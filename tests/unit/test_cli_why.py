"""`storctl why` reads the decisions from the projected journal and shows exactly
what it showed when it read the volume's events, and, as a read command, imports
none of the write side on a caught-up SQLite ledger."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any
from uuid import UUID

import pytest
from click.testing import CliRunner

from cli.main import cli
from ledger.aggregate import Ctx
from ledger.usecases import infrastructure, volumes
from ledger.values import GiB, Hypervisor, PoolType, Scope
from ledger.volume import Volume
from projections.projector import catch_up
from tests.conftest import open_ledger


def event_doc(volume_id: str, event: Any) -> dict[str, Any]:
    """`why`'s document as it was made from the event itself (before the journal)."""
    return {
        "volumeid": volume_id,
        "decided": event.timestamp.isoformat().replace("+00:00", "Z"),
        "jobid": event.job_id,
        "request": event.request,
        "chosen": str(event.chosen) if event.chosen else None,
        "verdicts": event.verdicts,
    }


@pytest.fixture
def decided(tmp_path):
    """A ledger where `v1` was placed on p1 and `big` was refused by every pool."""
    db = str(tmp_path / "ledger.db")
    ledger = open_ledger(db)
    try:
        infrastructure.register_host(
            ledger, Ctx.new("t"), "kvm1", "z1", "c1", Hypervisor.KVM
        )
        for name, tags in (("p1", ["ssd"]), ("p2", [])):
            infrastructure.register_pool(
                ledger, Ctx.new("t"), name=name, zone="z1", path=f"/srv/{name}",
                capacity=10 * GiB, scope=Scope.CLUSTER,
                pool_type=PoolType.Filesystem, cluster="c1", tags=tags,
            )  # fmt: skip
        ids = {}
        for name, size in (("v1", GiB), ("big", 500 * GiB)):
            job = volumes.create_volume(
                ledger, Ctx.new("t"), name=name, zone="z1", size=size, pool_ref="p1"
            )
            ids[name] = str(job.object_id)
        catch_up(ledger)
        expected = {
            name: [
                json.loads(json.dumps(event_doc(vid, e), default=str))
                for e in ledger.events.get(UUID(vid))
                if isinstance(e, Volume.AllocationDecided)
            ]
            for name, vid in ids.items()
        }
    finally:
        ledger.close()
    return db, expected


@pytest.mark.parametrize("name", ["v1", "big"])
def test_why_shows_what_the_events_hold(decided, name):
    db, expected = decided
    assert expected[name], "the volume has a decision"
    result = CliRunner().invoke(cli, ["--db", db, "-o", "json", "why", name, "--all"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == expected[name]
    result = CliRunner().invoke(cli, ["--db", db, "-o", "json", "why", name])
    assert json.loads(result.stdout) == expected[name][-1]


def test_a_refusal_names_every_pool_and_its_reason(decided):
    db, expected = decided
    (doc,) = expected["big"]
    assert doc["chosen"] is None
    assert {v.get("pool") for v in doc["verdicts"]} >= {"p1"}
    result = CliRunner().invoke(cli, ["--db", db, "-o", "table", "why", "big"])
    assert result.exit_code == 0, result.output
    assert "no suitable pool" in result.output


def test_why_imports_no_write_side(decided, tmp_path):
    db, _ = decided
    out = tmp_path / "modules.json"
    script = (
        "import json, sys\n"
        "out = sys.argv.pop(1)\n"
        "sys.argv[0] = 'storctl'\n"
        "try:\n"
        "    from cli.main import main\n"
        "    main()\n"
        "finally:\n"
        "    json.dump(sorted(sys.modules), open(out, 'w'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(out), "--db", db, "-o", "json", "why", "v1"],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "STORCTL_DB"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["verdicts"]
    modules = json.loads(out.read_text())
    heavy = ("eventsourcing", "psycopg", "executors", "ledger.app", "ledger.volume")
    assert [m for m in modules if m.split(".")[0] in heavy or m in heavy] == []
