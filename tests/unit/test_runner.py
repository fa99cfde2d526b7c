"""`SubprocessRunner`, the injected runner every agent's host tool goes through: what
it returns, and that a timeout kills the whole process group.
"""

from __future__ import annotations

import os
import select

import pytest

from executors import runner as runner_module
from executors.runner import (
    BackendGone,
    CommandTimedOut,
    Completed,
    SubprocessRunner,
)


class TestSubprocessRunner:
    def test_output_and_return_code_come_back(self):
        done = SubprocessRunner().run(
            ["sh", "-c", "echo out; echo err >&2; exit 3"], timeout=10
        )
        assert done == Completed(3, "out\n", "err\n")

    def test_timeout_kills_the_whole_process_group(self):
        argv = ["sh", "-c", "sleep 30 & echo $!; wait"]
        with pytest.raises(CommandTimedOut) as caught:
            SubprocessRunner().run(argv, timeout=1.0)
        assert caught.value.argv == argv
        assert caught.value.timeout == 1.0
        child = int(caught.value.stdout.split()[0])  # the backgrounded grandchild
        assert exited(child)

    def test_a_probe_that_finds_the_backend_gone_stops_the_command(self, monkeypatch):
        """A client that never gives up (libiscsi on a dead tgtd) is killed, group
        and all, as soon as the probe says the backend is gone, in its words."""
        monkeypatch.setattr(runner_module, "PROBE_EVERY", 0.01)
        answers = iter([None, None, "tgtd stopped answering on control port 17"])
        asked: list[int] = []

        def probe() -> str | None:
            asked.append(1)
            return next(answers)

        argv = ["sh", "-c", "sleep 60 & echo $!; wait"]
        with pytest.raises(BackendGone) as caught:
            SubprocessRunner().run(argv, timeout=120, probe=probe)
        assert caught.value.why == "tgtd stopped answering on control port 17"
        assert len(asked) == 3
        assert caught.value.argv == argv

    def test_a_probe_that_keeps_answering_changes_nothing(self, monkeypatch):
        monkeypatch.setattr(runner_module, "PROBE_EVERY", 0.01)
        asked: list[int] = []
        argv = ["sh", "-c", "for i in 1 2 3 4 5; do sleep 0.02; done; echo done"]
        done = SubprocessRunner().run(
            argv, timeout=30, probe=lambda: asked.append(1) or None
        )
        assert done == Completed(0, "done\n", "")
        assert asked  # it was asked while the command ran


def exited(pid: int) -> bool:
    """True once `pid` has exited (a zombie counts), waiting at most 10 s for it."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        readable, _, _ = select.select([fd], [], [], 10)
        return bool(readable)
    finally:
        os.close(fd)
