"""What a template download may read, checked again by the agent when it fetches:
the policy the ledger recorded (`allowedRoots`, `allowedInternalSites`) holds at the
moment the bytes are read, through symbolic links and HTTP redirects, so a link
planted under an allowed directory or a server that redirects inward reads nothing.
"""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.kvm.commands import download
from tests.unit.kvm.helpers import files_under


@contextlib.contextmanager
def redirecting(to: str) -> Iterator[tuple[str, list[str]]]:
    """An HTTP server on 127.0.0.1 whose every answer is a redirect to `to`, and
    the paths it was asked for."""
    hits: list[str] = []

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(302)
            self.send_header("Location", to)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.mark.qemu
class TestTheAgentChecksAgain:
    def test_a_file_outside_the_allowed_roots_is_not_read(
        self, agent, source, image_store, tmp_path: Path
    ) -> None:
        elsewhere = tmp_path / "allowed"
        elsewhere.mkdir()
        command = download(source.as_uri(), image_store, allowedRoots=[str(elsewhere)])
        answer = agent.handle(command)
        assert not answer.result
        assert "template.url.allowed.roots" in answer.details
        assert not files_under(tmp_path / "secondary")

    def test_no_roots_reads_no_file(self, agent, source, image_store, tmp_path):
        answer = agent.handle(download(source.as_uri(), image_store, allowedRoots=[]))
        assert not answer.result
        assert "no directory (the default)" in answer.details
        assert not files_under(tmp_path / "secondary")

    def test_a_link_under_an_allowed_root_cannot_reach_out_of_it(
        self, agent, source, image_store, tmp_path: Path
    ) -> None:
        root = tmp_path / "allowed"
        root.mkdir()
        (root / "tmpl.qcow2").symlink_to(source)  # source lies outside `root`
        answer = agent.handle(
            download(
                (root / "tmpl.qcow2").as_uri(), image_store, allowedRoots=[str(root)]
            )
        )
        assert not answer.result
        assert "leads out of the allowed roots" in answer.details
        assert not files_under(tmp_path / "secondary")

    def test_an_internal_host_not_allowed_is_not_contacted(
        self, agent, image_store, tmp_path: Path
    ) -> None:
        with redirecting("http://example.invalid/") as (base, hits):
            command = download(
                f"{base}/tmpl.qcow2", image_store, allowedInternalSites=[]
            )
            answer = agent.handle(command)
        assert not answer.result
        assert "127.0.0.1 is an internal address" in answer.details
        assert hits == []
        assert not files_under(tmp_path / "secondary")

    @pytest.mark.parametrize(
        ("inward", "reason"),
        [
            ("http://127.0.0.2:5432/", "127.0.0.2 is an internal address"),
            ("http://169.254.169.254/latest/", "169.254.169.254 is an internal"),
            ("file:///etc/passwd", "is not allowed"),
            ("http://user:secret@example.org/x", "no user or password"),
        ],
    )
    def test_a_redirect_inward_is_not_followed(
        self, agent, image_store, tmp_path: Path, inward: str, reason: str
    ) -> None:
        # 127.0.0.1 (the test's server) is allowed; where it redirects is not
        with redirecting(inward) as (base, hits):
            answer = agent.handle(download(f"{base}/tmpl.qcow2", image_store))
        assert not answer.result
        assert reason in answer.details
        assert "secret" not in answer.details
        assert hits == ["/tmpl.qcow2"]
        assert files_under(tmp_path / "secondary") == set()
