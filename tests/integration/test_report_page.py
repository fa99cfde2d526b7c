"""`storctl report incident --html` opened in a real headless Chromium (Debian's
`chromium`, installed by `make chromium`): what renders, not only what is written.

The page itself has no script; the test adds a probe to a copy of it that, once
the page has loaded and laid out, measures the SVG against the window, counts the
drawn nodes, reads the failure's computed colour and follows a row's anchor, and
writes the result into the DOM that `--dump-dom` prints.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from tests.unit.test_incident_picture import failed_job, run, session  # noqa: F401

PROBE = """<script>
addEventListener("load", () => {
  const svg = document.querySelector("svg");
  const link = document.querySelector('tr.failed a[href^="#e"]');
  const target = document.getElementById(link.getAttribute("href").slice(1));
  const why = [...svg.querySelectorAll("g.node text")]
    .find((t) => t.textContent.includes("disk bus full"));
  const out = {
    svgWidth: svg.getBoundingClientRect().width,
    bodyWidth: document.body.clientWidth,
    nodes: svg.querySelectorAll("g.node").length,
    rowColor: getComputedStyle(document.querySelector("tr.failed td")).color,
    rowText: document.querySelector("tr.failed").textContent,
    svgWhyFill: why ? getComputedStyle(why).fill : null,
    linkTarget: target ? target.tagName + "#" + target.id : null,
    targetDrawn: target ? target.getBoundingClientRect().width > 0 : false,
  };
  const pre = document.createElement("pre");
  pre.id = "probe";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""
RED = "rgb(192, 0, 0)"  # incident.FAILED_LINE, #c00000


def chromium() -> str:
    exe = shutil.which("chromium")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing on CI (make chromium installs it)")
        pytest.skip("chromium is not installed (make chromium)")
    return exe


def browse(*args: str) -> str:
    done = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu",
         "--window-size=1000,900", *args],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return done.stdout


@pytest.fixture(scope="module")
def page(session, tmp_path_factory) -> Path:  # noqa: F811
    target = tmp_path_factory.mktemp("page") / "incident.html"
    run(session, "report", "incident", "--job", failed_job(session), "--html",
        str(target))  # fmt: skip
    return target


def test_the_page_renders_fitted_linked_and_red_where_it_failed(page, tmp_path):
    probed = tmp_path / "probed.html"
    probed.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    dom = browse("--dump-dom", probed.as_uri())
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom)
    assert found, dom[-2000:]
    seen = json.loads(found.group(1))
    assert seen["nodes"] >= 6
    assert 0 < seen["svgWidth"] <= seen["bodyWidth"]  # fits the window
    assert seen["svgWidth"] >= 0.9 * seen["bodyWidth"]  # and uses it
    assert seen["rowColor"] == RED
    assert "disk bus full" in seen["rowText"]
    assert seen["svgWhyFill"] == RED
    assert seen["linkTarget"].startswith("g#e")
    assert seen["targetDrawn"] is True


def test_a_screenshot_shows_the_page(page, tmp_path):
    shot = tmp_path / "shot.png"
    browse(f"--screenshot={shot}", page.as_uri())
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (1000, 900)
    keep = os.environ.get("STORCTL_SCREENSHOT")  # docs/incident-page.png is made so
    if keep:
        shutil.copyfile(shot, keep)
