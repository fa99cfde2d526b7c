"""The host, pool and store commands end to end, on SQLite and PostgreSQL:
JSON fields exactly as CLI.md names them, and refusals that write nothing."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli.main import cli
from ledger.app import Ledger
from ledger.store.database import parse_db

POOL_FIELDS = {
    "id",
    "name",
    "zoneid",
    "clusterid",
    "hostid",
    "scope",
    "type",
    "path",
    "state",
    "disksizetotal",
    "disksizeallocated",
    "disksizeused",
    "overprovisionfactor",
    "tags",
}
HOST_FIELDS = {"id", "name", "zoneid", "clusterid", "hypervisor", "state"}
STORE_FIELDS = {"id", "name", "zoneid", "providername", "path", "readonly"}


def run(db_url, *args, code=0):
    result = CliRunner().invoke(cli, ["--db", db_url, "-o", "json", *args])
    assert result.exit_code == code, (result.output, result.stderr)
    return json.loads(result.stdout) if code == 0 and result.stdout.strip() else result


def event_count(db_url) -> int:
    app = Ledger(env=parse_db(db_url).env)
    try:
        return app.recorder.max_notification_id() or 0
    finally:
        app.close()


@pytest.fixture
def lab(db_url, tmp_path):
    for d in ("gold", "silver", "sec"):
        (tmp_path / d).mkdir()
    run(db_url, "host", "add", "kvm-01", "--zone", "z1", "--cluster", "c1")
    run(
        db_url,
        "pool",
        "add",
        "gold",
        "--zone",
        "z1",
        "--cluster",
        "c1",
        "--path",
        str(tmp_path / "gold"),
        "--capacity",
        "10G",
        "--tags",
        "ssd,fast",
    )
    run(
        db_url, "store", "add", "sec-1", "--zone", "z1", "--path", str(tmp_path / "sec")
    )
    return db_url


def test_pool_json_has_exactly_the_contract_fields(lab, tmp_path):
    pools = run(lab, "pool", "list")
    assert len(pools) == 1
    pool = pools[0]
    assert set(pool) == POOL_FIELDS
    assert pool["name"] == "gold"
    assert pool["zoneid"] == "z1"
    assert pool["clusterid"] == "c1"
    assert pool["scope"] == "CLUSTER"
    assert pool["type"] == "Filesystem"
    assert pool["state"] == "Up"
    assert pool["disksizetotal"] == 10 << 30
    assert pool["disksizeallocated"] == 0
    assert pool["tags"] == ["fast", "ssd"]  # sorted, whatever order they were given
    assert pool["path"] == str(tmp_path / "gold")
    assert run(lab, "pool", "show", "gold") == pool
    assert run(lab, "pool", "show", pool["id"]) == pool


def test_host_and_store_json_fields(lab):
    host = run(lab, "host", "show", "kvm-01")
    assert set(host) == HOST_FIELDS
    assert (host["hypervisor"], host["state"]) == ("KVM", "Up")
    store = run(lab, "store", "show", "sec-1")
    assert set(store) == STORE_FIELDS
    assert store["providername"] == "NFS"
    assert store["readonly"] is False


def test_disable_and_enable_move_state(lab):
    assert run(lab, "pool", "disable", "gold")["state"] == "Disabled"
    assert run(lab, "pool", "enable", "gold")["state"] == "Up"
    assert run(lab, "host", "disable", "kvm-01")["state"] == "Disabled"
    assert run(lab, "host", "enable", "kvm-01")["state"] == "Up"


def test_maintenance_then_cancel_then_delete_rules(lab):
    assert run(lab, "pool", "maintenance", "enable", "gold")["state"] == "Maintenance"
    assert run(lab, "pool", "maintenance", "cancel", "gold")["state"] == "Up"
    result = run(lab, "pool", "delete", "gold", code=2)
    assert "Remove is not allowed" in result.stderr
    run(lab, "pool", "maintenance", "enable", "gold")
    assert run(lab, "pool", "delete", "gold")["state"] == "Removed"
    assert run(lab, "pool", "list") == []


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--capacity", "-10G"], "invalid capacity"),
        (["--capacity", "0"], "invalid capacity"),
        (["--capacity", "ten"], "invalid capacity"),
        (["--name-dup"], "already exists"),
        (["--cluster", "nope"], "cluster 'nope"),
        (["--scope", "host", "--host", "ghost"], "host 'ghost' not found"),
        (["--scope", "host"], "needs --host"),
        (["--overprovision", "-1"], "invalid overprovision"),
        (["--tags", "a b"], "invalid tag"),
        (["--zone", "nowhere", "--scope", "zone"], "zone 'nowhere"),
    ],
)
def test_bad_pool_add_exits_2_with_one_line_and_writes_nothing(
    lab, tmp_path, args, says
):
    before = event_count(lab)
    base = {
        "name": "silver",
        "--zone": "z1",
        "--cluster": "c1",
        "--path": str(tmp_path / "silver"),
        "--capacity": "5G",
    }
    if args == ["--name-dup"]:
        base["name"], args = "gold", []
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    argv = ["pool", "add", base.pop("name")]
    for flag, value in base.items():
        argv += [flag, value]
    result = run(lab, *argv, code=2)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert says in lines[0]
    assert result.stdout == ""
    assert event_count(lab) == before


def test_unknown_ids_exit_2(lab):
    for noun in ("pool", "host", "store"):
        result = run(lab, noun, "show", "no-such-thing", code=2)
        assert "not found" in result.stderr


def test_duplicate_host_name_is_refused(lab):
    before = event_count(lab)
    result = run(
        lab, "host", "add", "kvm-01", "--zone", "z1", "--cluster", "c1", code=2
    )
    assert "already exists" in result.stderr
    assert event_count(lab) == before


def test_fsm_show_json_holds_every_reference_transition(tmp_path):
    reference = json.loads(
        (
            __import__("pathlib").Path(__file__).parent.parent
            / "data"
            / "cloudstack_fsm.json"
        ).read_text()
    )
    db = str(tmp_path / "x.db")
    for kind, key in (
        ("volume", "Volume"),
        ("snapshot", "Snapshot"),
        ("objectinstore", "ObjectInDataStore"),
        ("template", "Template"),
    ):
        shown = run(db, "fsm", "show", kind, "-o", "json")
        assert {tuple(t) for t in shown["transitions"]} == {
            tuple(t) for t in reference[key]["transitions"]
        }
        assert shown["states"] == reference[key]["states"]


def test_fsm_show_dot_and_png(tmp_path):
    db = str(tmp_path / "x.db")
    args = ["--db", db, "fsm", "show", "volume", "--dot", "-"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0
    assert '"Allocated" -> "Creating" [label="CreateRequested"]' in result.stdout
    png = tmp_path / "volume.png"
    result = CliRunner().invoke(
        cli, ["--db", db, "fsm", "show", "volume", "--png", str(png)]
    )
    assert result.exit_code == 0, result.output
    assert f"drawn to {png}" in result.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_executor_run_in_process_gives_back_the_callers_signal_handlers(
    tmp_path,
) -> None:
    """`executor run` stops on SIGTERM and Ctrl-C; run in-process (a script, a test
    runner), it must give those signals back to the caller when it returns."""
    import signal

    def mine(signum: int, frame: object) -> None:  # pragma: no cover - never sent
        pass

    before = {s: signal.signal(s, mine) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        db = str(tmp_path / "ledger.db")
        result = CliRunner().invoke(cli, ["--db", db, "executor", "run", "--once"])
        assert result.exit_code == 0, result.output
        assert signal.getsignal(signal.SIGTERM) is mine
        assert signal.getsignal(signal.SIGINT) is mine
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)
