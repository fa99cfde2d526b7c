"""`audit --follow` and `job list --watch` as an operator runs them: a real process
that keeps printing what a second command writes, until it is stopped. On SQLite
and PostgreSQL."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

from .conftest import Storctl

DEADLINE = 60.0


class Tail:
    """A running storctl's stdout, a line at a time, as it comes."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: queue.Queue[str] = queue.Queue()
        self.pump = threading.Thread(target=self._pump, daemon=True)
        self.pump.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def stop(self) -> None:
        """Terminate it (the operator's ^C or kill) and close its pipes."""
        self.proc.terminate()
        self.proc.wait(timeout=DEADLINE)
        self.pump.join(timeout=DEADLINE)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


def wait_for_row(
    lines: queue.Queue[str], wanted: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """The first JSON row printed that is `wanted`, within the deadline."""
    end = time.monotonic() + DEADLINE
    while (left := end - time.monotonic()) > 0:
        try:
            row = json.loads(lines.get(timeout=left))
        except queue.Empty:
            break
        if wanted(row):
            return row
    raise AssertionError("the row never came")


def test_audit_follow_prints_what_another_command_writes(cli: Storctl) -> None:
    cli.ok("host", "add", "h1", "--zone", "z1", "--cluster", "c1")
    follow = Tail(cli.popen("audit", "--follow", "--event", "Registered"))
    lines = follow.lines
    try:
        first = wait_for_row(lines, lambda row: True)
        assert first["details"]["name"] == "h1"  # what was there, first
        cli.ok("host", "add", "h2", "--zone", "z1", "--cluster", "c1")
        row = wait_for_row(lines, lambda row: True)
        assert (row["event"], row["details"]["name"]) == ("Registered", "h2")
        assert row["position"] > first["position"]
    finally:
        follow.stop()


def test_job_list_watch_prints_each_new_job(cli: Storctl) -> None:
    cli.ok("host", "add", "h1", "--zone", "z1", "--cluster", "c1")
    before = cli.ok("volume", "create", "d0", "--zone", "z1", "--size", "1G")
    watch = Tail(cli.popen("job", "list", "--watch", "--status", "succeeded"))
    lines = watch.lines
    try:
        first = wait_for_row(lines, lambda row: True)
        assert (first["cmd"], first["objectid"]) == ("volume.create", before["id"])
        made = cli.ok("volume", "create", "d1", "--zone", "z1", "--size", "1G")
        row = wait_for_row(lines, lambda row: True)
        assert (row["cmd"], row["objectid"]) == ("volume.create", made["id"])
        assert row["status"] == "succeeded"
        assert row["duration"] is not None
    finally:
        watch.stop()
