"""How an agent runs a command line: CloudStack's `Script` class, made injectable.

The `Runner` protocol is the seam httpx's `MockTransport` shows: agents take a runner,
production passes `SubprocessRunner`, tests pass `RecordedRunner` to see (and script)
every argv without touching a disk. CloudStack's `Script` kills the child on timeout;
here the whole process group goes, so a helper `qemu-img` forks can't outlive it.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Protocol

from executors.qemu import parse_progress

ProgressCallback = Callable[[float], None]
#: asked every `PROBE_EVERY` seconds while a command runs: None while the backend
#: it talks to is there, else the backend's own words for why it is not
Probe = Callable[[], "str | None"]
#: seconds between two probes: a dead target is noticed within this, while a
#: live one costs one cheap control call per interval
PROBE_EVERY = 2.0


@dataclass(frozen=True)
class Completed:
    """A finished command; a non-zero `returncode` is the caller's to interpret."""

    returncode: int
    stdout: str
    stderr: str


class CommandTimedOut(Exception):
    """The command outlived its `wait`; it and its process group were killed."""

    def __init__(
        self, argv: list[str], timeout: float, stdout: str = "", stderr: str = ""
    ) -> None:
        self.argv = list(argv)
        self.timeout = timeout
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(f"{' '.join(argv[:2])} timed out after {timeout:g} s")


class BackendGone(Exception):
    """A probe found the command's backend gone; the command was killed.

    Some clients never give up on a backend that died under them (qemu's libiscsi
    reconnects to a killed tgtd forever), so without a probe the copy would hold
    its whole wait, hours for a copy, and answer only "timed out"."""

    def __init__(self, argv: list[str], why: str) -> None:
        self.argv = list(argv)
        self.why = why
        super().__init__(why)


class Runner(Protocol):
    def run(
        self,
        argv: list[str],
        *,
        timeout: float,
        on_progress: ProgressCallback | None = None,
        probe: Probe | None = None,
    ) -> Completed: ...


class SubprocessRunner:
    """Runs argv lists (never a shell) in their own session, with a hard deadline."""

    chunk_size = 65536

    def run(
        self,
        argv: list[str],
        *,
        timeout: float,
        on_progress: ProgressCallback | None = None,
        probe: Probe | None = None,
    ) -> Completed:
        deadline = time.monotonic() + timeout
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        out = bytearray()
        err = bytearray()
        try:
            if proc.stdout is None or proc.stderr is None:  # pragma: no cover
                raise RuntimeError("Popen gave no pipes")
            finished = self._pump(
                proc.stdout, proc.stderr, out, err, deadline, on_progress, probe
            )
            if isinstance(finished, str):
                _kill_group(proc)
                raise BackendGone(argv, finished)
            if finished:
                try:
                    proc.wait(timeout=max(deadline - time.monotonic(), 0.0))
                except subprocess.TimeoutExpired:
                    finished = False
            if not finished:
                _kill_group(proc)
                raise CommandTimedOut(argv, timeout, _text(out), _text(err))
        except BaseException:
            # A failing progress callback or an interrupt must not orphan the child.
            _kill_group(proc)
            raise
        finally:
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        return Completed(proc.returncode, _text(out), _text(err))

    def _pump(
        self,
        stdout: IO[bytes],
        stderr: IO[bytes],
        out: bytearray,
        err: bytearray,
        deadline: float,
        on_progress: ProgressCallback | None,
        probe: Probe | None = None,
    ) -> bool | str:
        """Read both pipes to EOF; False when the deadline came first, the
        probe's words when it found the backend gone."""
        pending = ""  # stdout text not yet ended by '\r' or '\n'
        last: float | None = None
        next_probe = time.monotonic() + PROBE_EVERY
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ, out)
            selector.register(stderr, selectors.EVENT_READ, err)
            while selector.get_map():
                now = time.monotonic()
                remaining = deadline - now
                if remaining <= 0:
                    return False
                if probe is not None:
                    if now >= next_probe:
                        why = probe()
                        if why is not None:
                            return why
                        next_probe = time.monotonic() + PROBE_EVERY
                    remaining = min(remaining, max(next_probe - now, 0.0))
                for key, _ in selector.select(remaining):
                    data = os.read(key.fd, self.chunk_size)
                    if not data:
                        selector.unregister(key.fileobj)
                        continue
                    key.data.extend(data)
                    if key.fileobj is stdout and on_progress is not None:
                        pending += data.decode("utf-8", errors="replace")
                        *lines, pending = pending.replace("\r", "\n").split("\n")
                        fraction = parse_progress("\n".join(lines))
                        if fraction is not None and fraction != last:
                            last = fraction
                            on_progress(fraction)
        return True


@dataclass
class RecordedRunner:
    """Answers from `handler` instead of running anything, and keeps every argv."""

    handler: Callable[[list[str]], Completed]
    calls: list[list[str]] = field(default_factory=list)

    def run(
        self,
        argv: list[str],
        *,
        timeout: float,
        on_progress: ProgressCallback | None = None,
        probe: Probe | None = None,
    ) -> Completed:
        self.calls.append(list(argv))
        completed = self.handler(list(argv))
        if on_progress is not None:
            # Replay scripted `convert -p` output the way the real runner would.
            for line in completed.stdout.replace("\r", "\n").split("\n"):
                fraction = parse_progress(line)
                if fraction is not None:
                    on_progress(fraction)
        return completed


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    # The leader is not yet reaped here, so its pid (the group id) can't be reused.
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _text(data: bytearray) -> str:
    return data.decode("utf-8", errors="replace")
