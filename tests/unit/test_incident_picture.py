"""The incident picture and page (`projections.incident`, `incident_page`) and the
commands that draw them: `history --png/--svg/--html --job/--since/--until` and
`report incident`, on a simulator session whose first attach fails."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli


def run(db: str, *args: str, code: int = 0):
    result = CliRunner().invoke(cli, ["--db", db, "-o", "json", *args])
    assert result.exit_code == code, (result.output, result.stderr)
    return result


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> str:
    db = str(tmp_path_factory.mktemp("incident") / "ledger.db")
    run(db, "host", "add", "sim1", "--zone", "z1", "--cluster", "c1",
        "--hypervisor", "simulator")  # fmt: skip
    run(db, "pool", "add", "p1", "--zone", "z1", "--cluster", "c1", "--path",
        "/sim/p1", "--capacity", "100G", "--type", "simulator")  # fmt: skip
    run(db, "store", "add", "s1", "--zone", "z1", "--path", "/sim/s1",
        "--provider", "simulator")  # fmt: skip
    run(db, "template", "register", "t1", "--zone", "z1", "--url",
        "http://example.invalid/t1.qcow2", "--format", "qcow2")  # fmt: skip
    run(db, "vm", "deploy", "vm1", "--template", "t1", "--zone", "z1")
    run(db, "volume", "create", "data1", "--zone", "z1", "--size", "1G")
    run(db, "simulator", "configure", "--host", "sim1", "--command",
        "AttachCommand", "--fail", "disk bus full", "--count", "1")  # fmt: skip
    run(db, "volume", "attach", "data1", "--vm", "vm1", code=3)
    run(db, "volume", "attach", "data1", "--vm", "vm1")
    return db


def failed_job(db: str) -> str:
    rows = json.loads(run(db, "history", "volume", "data1").stdout)
    return next(
        r["jobid"]
        for r in rows
        if r["event"] == "AttachAnswered" and not r["details"]["answer"]["result"]
    )


def source(db: str, tmp_path: Path, *args: str) -> str:
    out = tmp_path / "t.dot"
    run(db, "history", "volume", "data1", "--dot", str(out), *args)
    return out.read_text()


def node_line(dot: str, event: str, marker: str = "") -> str:
    return next(
        line
        for line in dot.splitlines()
        if f" {event}\\n" in line and marker in line and "[label=" in line
    )


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


class TestPicture:
    def test_a_failed_answer_is_red_and_says_why(self, session, tmp_path):
        dot = source(session, tmp_path)
        failed = node_line(dot, "AttachAnswered", "disk bus full")
        assert 'fillcolor="#ffd9d9"' in failed
        assert 'color="#c00000"' in failed
        assert "✗ disk bus full" in failed
        ok = [
            line
            for line in dot.splitlines()
            if " AttachAnswered\\n" in line and "disk bus full" not in line
        ]
        assert ok, "the retried attach answered too"
        assert all("#c00000" not in line for line in ok)

    def test_the_command_arrow_names_the_host_and_the_seconds(self, session, tmp_path):
        dot = source(session, tmp_path)
        arrows = [
            line for line in dot.splitlines() if "AttachCommand\\non sim1\\n" in line
        ]
        assert len(arrows) == 2
        assert any('color="#c00000"' in a for a in arrows)
        assert any('color="blue"' in a for a in arrows)

    def test_time_axis_ranks_every_event_and_a_lane_never_doubles_up(
        self, session, tmp_path
    ):
        from projections.incident import time_rows

        dot = source(session, tmp_path)
        assert 'thead [label="time (UTC)"]' in dot
        ranks = [line for line in dot.splitlines() if "{rank=same; t" in line]
        events = {
            line.split()[0] for line in dot.splitlines() if line.startswith("    e")
        }
        ranked = [word.rstrip("};") for line in ranks for word in line.split()[2:]]
        assert sorted(w for w in ranked if w.startswith("e")) == sorted(events)
        rows = [{"objectid": o, "timestamp": "2026-01-01T00:00:00.000Z"} for o in "aab"]
        assert [[r["objectid"] for r in step] for step in time_rows(rows)] == [
            ["a"],
            ["a", "b"],
        ]

    def test_legend_and_lane_titles_top_and_bottom(self, session, tmp_path):
        from projections.incident import LEGEND

        dot = source(session, tmp_path)
        assert LEGEND in dot
        assert "{rank=same; thead; h0" in dot
        assert "{rank=same; tfoot; f0" in dot
        head = next(line for line in dot.splitlines() if line.startswith("    h0 "))
        foot = next(line for line in dot.splitlines() if line.startswith("    f0 "))
        assert "Volume data1" in head
        assert head.split("[", 1)[1] == foot.split("[", 1)[1]

    def test_twenty_events_stay_within_a_screen_or_two_wide(self, session, tmp_path):
        png = tmp_path / "t.png"
        rows = json.loads(
            run(session, "history", "volume", "data1", "--png", str(png)).stdout
        )
        assert len(rows) >= 9
        width, height = png_size(png)
        assert width <= 2000, (width, height)  # was 6,133 px for 20 events

    def test_job_and_time_bound_the_rows_and_the_picture(self, session, tmp_path):
        job = failed_job(session)
        rows = json.loads(
            run(session, "history", "volume", "data1", "--job", job[:8]).stdout
        )
        assert rows
        assert {r["jobid"] for r in rows} == {job}
        dot = source(session, tmp_path, "--job", job)
        assert "disk bus full" in dot
        assert " Allocated\\n" not in dot  # the create's job is outside the bound
        last = rows[-1]["timestamp"]
        late = json.loads(
            run(session, "history", "volume", "data1", "--since", last).stdout
        )
        assert [r["timestamp"] >= last for r in late] == [True] * len(late)
        assert late
        assert len(late) < len(
            json.loads(run(session, "history", "volume", "data1").stdout)
        )

    def test_svg_option_writes_an_svg(self, session, tmp_path):
        svg = tmp_path / "t.svg"
        result = run(session, "history", "volume", "data1", "--svg", str(svg))
        assert f"timeline drawn to {svg}" in result.stderr
        assert "<svg" in svg.read_text()


class TestPage:
    def test_report_page_is_responsive_and_links_rows_and_nodes(
        self, session, tmp_path
    ):
        page = tmp_path / "r.html"
        job = failed_job(session)
        result = run(
            session, "report", "incident", "--job", job[:8], "--html", str(page)
        )
        assert f"report written to {page}" in result.stderr
        text = page.read_text()
        tag = text[text.find("<svg") : text.find(">", text.find("<svg"))]
        assert 'width="100%"' in tag
        assert "viewBox=" in tag
        assert "pt" not in tag.split("viewBox")[0]  # no fixed size in points left
        positions = [int(p) for p in re.findall(r'id="row-(\d+)"', text)]
        assert positions
        for p in positions:
            assert f'<g id="e{p}"' in text  # the row's node
            assert f'xlink:href="#row-{p}"' in text  # node -> row
            assert f'<a href="#e{p}">#{p}</a>' in text  # row -> node
        failed = [line for line in text.splitlines() if 'class="failed"' in line]
        assert any("disk bus full" in line for line in failed)

    def test_every_placement_has_its_why(self, session, tmp_path):
        page = tmp_path / "r.html"
        rows = json.loads(run(session, "history", "volume", "data1").stdout)
        decided = next(r for r in rows if r["event"] == "AllocationDecided")
        run(
            session,
            "report",
            "incident",
            "--job",
            decided["jobid"],
            "--html",
            str(page),
        )
        text = page.read_text()
        assert f'<h3 id="why-{decided["position"]}">' in text
        assert '<td class="taken">taken</td>' in text
        assert "pool StoragePool p1 taken" in text

    def test_responsive_refuses_an_svg_without_a_viewbox(self):
        from projections.incident_page import responsive

        assert responsive(
            '<svg width="10pt" height="5pt" viewBox="0 0 10 5"><g/></svg>'
        ) == ('<svg viewBox="0 0 10 5" width="100%"><g/></svg>')
        with pytest.raises(ValueError, match="viewBox"):
            responsive('<svg width="10pt"></svg>')

    def test_report_needs_somewhere_to_go(self, session):
        result = run(
            session, "report", "incident", "--job", failed_job(session), code=2
        )
        assert "--html" in result.stderr
