"""`SubprocessRunner`, the injected runner every agent's host tool goes through: what
it returns, and that a timeout kills the whole process group.
"""

from __future__ import annotations

import os
import select

import pytest

from executors.runner import (
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
