"""A Swift upload the server cuts: it answers (404: the container is gone) and
closes before the body is sent, so the sender sees a broken pipe, never the
answer. The failure must still carry the server's words, asked again."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from executors.providers.driver import AgentFailure
from executors.providers.s3.location import SwiftLocation
from executors.providers.s3.objects import Secrets
from executors.providers.swift.container import Container


def _serve(listener: socket.socket, stop: threading.Event) -> None:
    """Answer every request 404 at once and close, reading no body."""
    listener.settimeout(0.2)
    while not stop.is_set():
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        with conn:
            conn.settimeout(5)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                head += chunk
            conn.sendall(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
                b"Connection: close\r\n\r\n"
            )
            conn.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def gone() -> Iterator[str]:
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    thread = threading.Thread(target=_serve, args=(listener, stop), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/swift/v1"
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def test_a_cut_upload_says_the_container_is_gone(gone: str) -> None:
    where = SwiftLocation("tmpl", "p", "http://127.0.0.1:1/auth/1.0")
    container = Container(where, gone, "tok", Secrets(("tok",)))
    body = b"\0" * (64 << 20)  # far more than the socket buffers take
    with pytest.raises(AgentFailure) as caught:
        container.request("PUT", "p/t.qcow2", body=body, ok=())
    words = str(caught.value)
    assert "HTTP 404" in words, words
    assert "container tmpl does not exist" in words, words
    assert "tok" not in words
