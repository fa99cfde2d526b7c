"""Output shapes: tables fitted to the terminal's width, names for ids, one
spelling of booleans and times in every format, `-o` and `-c` after the verb,
and colour only where it is wanted (never under NO_COLOR).

Through `CliRunner` on one simulator zone per module: two VMs, a data volume
attached, a snapshot, a second pool with tags.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from cli import tables
from cli.main import cli
from cli.spelling import spell
from tests.integration.conftest import Storctl, simulator_zone

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
COLOUR = re.compile(r"\x1b\[[0-9;]*m")
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture(scope="module")
def zone(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    db = str(tmp_path_factory.mktemp("tables") / "ledger.db")
    sim = simulator_zone(Storctl(db))
    run = sim.cli.ok
    run(
        "pool",
        "add",
        "silver-with-a-long-name",
        "--zone",
        "z1",
        "--cluster",
        "c1",
        "--path",
        "/sim/p2",
        "--capacity",
        "5G",
        "--type",
        "simulator",
        "--tags",
        "ssd,fast",
    )
    vms = [
        run(
            "vm",
            "deploy",
            f"web-server-production-{i}",
            "--template",
            "t1",
            "--zone",
            "z1",
        )
        for i in (1, 2)
    ]
    run("volume", "create", "data-disk-for-analytics", "--zone", "z1", "--size", "700M")
    run("volume", "attach", "data-disk-for-analytics", "--vm", vms[0]["name"])
    run("snapshot", "create", "data-disk-for-analytics", "--name", "nightly")
    return {"db": db, "vms": vms}


def storctl(zone: dict[str, Any], *args: str, code: int = 0, **env: str) -> Any:
    environ = {"STORCTL_DB": None, "NO_COLOR": None, "FORCE_COLOR": None, **env}
    result = CliRunner(env=environ).invoke(
        cli, ["--db", zone["db"], *args], catch_exceptions=False
    )
    assert result.exit_code == code, result.output
    return result


def table(zone: dict[str, Any], *args: str, width: int) -> list[str]:
    out = storctl(zone, *args, "-o", "table", COLUMNS=str(width)).stdout
    return out.rstrip("\n").splitlines()


class TestFittedTables:
    @pytest.mark.parametrize(
        "args",
        [
            ("volume", "list"),
            ("pool", "list"),
            ("vm", "list"),
            ("job", "list"),
            ("history", "volume", "data-disk-for-analytics"),
            ("audit",),
        ],
    )
    @pytest.mark.parametrize("width", [100, 200])
    def test_no_line_is_wider_than_the_terminal(self, zone, args, width):
        lines = table(zone, *args, width=width)
        assert len(lines) > 1
        too_wide = [line for line in lines if len(line) > width]
        assert too_wide == []

    def test_volume_list_names_vms_and_pools_and_never_prints_a_uuid(self, zone):
        lines = table(zone, "volume", "list", width=100)
        assert lines[0].split()[:2] == ["ID", "NAME"]
        assert "VM" in lines[0].split()
        text = "\n".join(lines)
        assert UUID.search(text) is None
        assert "web-server-produc" in text  # the VM by name (cut to fit)
        assert "silver-with-a-long" in text or " p1 " in text  # a pool by name

    def test_a_wider_terminal_shows_more_columns(self, zone):
        narrow = table(zone, "volume", "list", width=100)[0].split()
        wide = table(zone, "volume", "list", width=200)[0].split()
        assert set(narrow) < set(wide)
        assert "PATH" in wide
        assert "PATH" not in narrow

    def test_a_volume_path_that_is_its_id_is_not_repeated(self, zone):
        lines = table(zone, "volume", "list", width=200)
        path = lines[0].index("PATH")
        assert {line[path:].strip() for line in lines[1:]} == {"= id"}

    def test_pool_list_shows_allocation_against_overprovisioned_capacity(self, zone):
        pools = {p["name"]: p for p in json.loads(storctl(zone, "pool", "list").stdout)}
        p1 = pools["p1"]
        lines = table(zone, "pool", "list", width=100)
        head = lines[0]
        assert "ALLOCATED" in head.split()
        row = next(line for line in lines if line.split()[1] == "p1")
        cell = row[head.index("ALLOCATED") :].split("  ")[0]
        capacity = p1["disksizetotal"] * p1["overprovisionfactor"]
        percent = round(100 * p1["disksizeallocated"] / capacity)
        assert cell.endswith(f"{percent}%"), cell
        assert "/" in cell

    def test_wide_shows_every_column_and_full_ids(self, zone):
        out = storctl(zone, "volume", "list", "-o", "wide", COLUMNS="100").stdout
        head = out.splitlines()[0].split()
        assert head == [
            "ID",
            "NAME",
            "TYPE",
            "SIZE",
            "STATE",
            "STORAGE",
            "VM",
            "DEV",
            "PATH",
        ]
        ids = {v["id"] for v in json.loads(storctl(zone, "volume", "list").stdout)}
        assert ids <= set(UUID.findall(out))

    def test_short_ids_on_a_terminal(self, zone, monkeypatch):
        monkeypatch.setattr(tables, "on_terminal", lambda: True)
        lines = table(zone, "vm", "list", width=120)
        shown = {line.split()[0] for line in lines[1:]}
        assert shown == {vm["id"][:8] for vm in zone["vms"]}

    def test_history_details_show_no_python(self, zone):
        text = "\n".join(
            table(zone, "history", "volume", "data-disk-for-analytics", width=200)
        )
        assert "None" not in text
        assert "['" not in text
        assert "734003200" not in text
        assert "700 MiB" in text


class TestOptionsAfterTheVerb:
    def test_output_after_the_verb_is_the_same_as_before(self, zone):
        before = storctl(zone, "-o", "json", "volume", "list").stdout
        after = storctl(zone, "volume", "list", "-o", "json").stdout
        assert json.loads(after) == json.loads(before)
        assert len(json.loads(after)) == 3

    def test_an_output_after_the_verb_wins(self, zone):
        out = storctl(zone, "-o", "json", "pool", "list", "--output", "csv").stdout
        assert out.splitlines()[0].startswith("id,name,")

    def test_columns_choose_fields_in_every_format(self, zone):
        chosen = ("-c", "name,state")
        rows = json.loads(storctl(zone, "volume", "list", *chosen).stdout)
        assert rows
        assert all(list(r) == ["name", "state"] for r in rows)
        got = list(
            csv.reader(
                io.StringIO(
                    storctl(zone, "volume", "list", *chosen, "-o", "csv").stdout
                )
            )
        )
        assert got[0] == ["name", "state"]
        assert len(got) == 4
        head = table(zone, "-c", "name,storageid", "volume", "list", width=100)[0]
        assert head.split() == ["NAME", "POOL"]

    def test_an_unknown_column_is_refused_naming_the_known_ones(self, zone):
        result = storctl(zone, "volume", "list", "-c", "name,colour", code=2)
        assert result.stdout == ""
        assert "'colour'" in result.stderr
        assert "virtualmachineid" in result.stderr

    def test_yaml_keeps_the_json_shape(self, zone):
        as_json = json.loads(storctl(zone, "template", "list").stdout)
        as_yaml = yaml.safe_load(storctl(zone, "template", "list", "-o", "yaml").stdout)
        assert as_yaml == as_json

    def test_fsm_takes_the_one_output_option(self, zone):
        out = storctl(zone, "fsm", "list", "-o", "csv").stdout
        assert out.splitlines()[0] == "kind,name,source,states,triggers,transitions"


class TestSpellings:
    def test_booleans_are_true_and_false_in_every_format(self, zone):
        assert (
            json.loads(storctl(zone, "template", "list").stdout)[0]["isready"] is True
        )
        row = next(
            csv.DictReader(
                io.StringIO(storctl(zone, "template", "list", "-o", "csv").stdout)
            )
        )
        assert row["isready"] == "true"
        lines = table(zone, "template", "list", width=200)
        at = lines[0].index("ISREADY")
        assert lines[1][at:].split()[0] == "true"
        shown = storctl(zone, "template", "show", "t1", "-o", "table").stdout
        assert re.search(r"^isready\s+true$", shown, re.M)

    def test_times_are_utc_with_z_in_every_format(self, zone):
        snap = json.loads(storctl(zone, "snapshot", "list").stdout)[0]
        assert snap["created"].endswith("Z")
        row = next(
            csv.DictReader(
                io.StringIO(storctl(zone, "snapshot", "list", "-o", "csv").stdout)
            )
        )
        assert row["created"] == snap["created"]
        why = json.loads(storctl(zone, "why", "data-disk-for-analytics").stdout)
        assert why["decided"].endswith("Z")
        assert "+00:00" not in why["decided"]
        shown = storctl(zone, "snapshot", "show", "nightly", "-o", "table").stdout
        created = re.search(r"^created\s+(\S+)$", shown, re.M)
        assert created is not None
        assert TIME.match(created.group(1))
        assert snap["created"].startswith(created.group(1)[:-1])


class TestColour:
    def test_states_are_coloured_when_colour_is_forced(self, zone):
        out = storctl(zone, "-o", "table", "vm", "list", FORCE_COLOR="1").stdout
        assert COLOUR.search(out)

    def test_no_color_leaves_no_escape_at_all(self, zone):
        out = storctl(
            zone, "-o", "table", "vm", "list", FORCE_COLOR="1", NO_COLOR="1"
        ).stdout
        assert "\x1b" not in out
        assert "Running" in out

    def test_off_a_terminal_a_table_has_no_escape(self, zone):
        out = storctl(zone, "-o", "table", "vm", "list").stdout
        assert "\x1b" not in out


SCALARS = (
    st.booleans()
    | st.none()
    | st.integers()
    | st.datetimes(timezones=st.just(datetime.UTC)).map(
        lambda t: t.isoformat().replace("+00:00", st_suffix(t))
    )
    | st.text(max_size=20)
)


def st_suffix(t: Any) -> str:
    """Both spellings the ledger ever wrote: `Z`, and `isoformat`'s `+00:00`."""
    return "Z" if t.microsecond % 2 else "+00:00"


@given(
    rows=st.lists(
        st.dictionaries(st.sampled_from(["a", "b", "state"]), SCALARS),
        min_size=1,
        max_size=5,
    )
)
def test_a_value_is_spelled_alike_in_csv_and_tables(rows):
    for row in rows:
        for key, value in row.items():
            text = spell(value)
            shown = tables.cell(key, value, row, {}, full_ids=True)
            if isinstance(value, bool):
                assert text == shown == ("true" if value else "false")
            elif value is None:
                assert (text, shown) == ("", "-")
            elif isinstance(value, str) and re.match(r"^\d{4}-.*(Z|\+00:00)$", value):
                assert text.endswith("Z")
                assert "+00:00" not in text
                assert TIME.match(shown)
                assert text.startswith(shown[:-1])


@given(
    widths=st.lists(st.integers(min_value=1, max_value=60), min_size=2, max_size=12),
    limit=st.integers(min_value=40, max_value=240),
)
def test_fitted_columns_fit_whenever_the_undroppable_ones_do(widths, limit):
    cols = ["id", "name", *(f"c{i}" for i in range(len(widths) - 2))]
    cells = [["x" * w for w in widths]]
    shown, sized = tables.fit(cols, cells, limit)
    assert shown[:2] == ["id", "name"]
    assert [c for c in cols if c in shown] == shown
    undroppable = max(widths[0], 2) + min(max(widths[1], 4), 12) + 2
    if undroppable <= limit:
        assert sum(sized[c] for c in shown) + 2 * (len(shown) - 1) <= limit


def test_fit_leaves_every_column_when_there_is_no_limit():
    shown, sized = tables.fit(["id", "path"], [["abc", "/srv/gold"]], None)
    assert shown == ["id", "path"]
    assert sized == {"id": 3, "path": 9}


def test_the_table_modules_are_not_needed_for_json(tmp_path: Path):
    """`-o json` never draws a table: rich stays unimported on the read path."""
    import subprocess
    import sys

    script = (
        "import sys\nsys.argv = ['storctl', '--db', sys.argv[1], '-o', 'json',"
        " 'fsm', 'list']\nfrom cli.main import main\ntry:\n    main()\n"
        "except SystemExit:\n    pass\nprint('rich' in sys.modules, file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "x.db")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stderr.strip().splitlines()[-1] == "False"
