"""One command's run on an agent: its runner, its deadline, its progress callback.

CloudStack gives every command a `wait`; the agent must answer within it. Whatever
driver executes the command, its host tools (`qemu-img`) go through the injected
`Runner` with what is left of that wait, and its long loops (a download, a byte
copy) check the same deadline, so a hung tool or a slow mount becomes a timed-out
answer instead of a stuck job.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from executors import qemu
from executors.providers.driver import AgentFailure
from executors.runner import (
    BackendGone,
    CommandTimedOut,
    Completed,
    Probe,
    ProgressCallback,
    Runner,
)


@dataclass
class CommandRun:
    """What a handler is given besides the command: how to run tools, and until when."""

    runner: Runner
    wait: float
    on_progress: ProgressCallback | None
    deadline: float = field(init=False)
    #: set by a driver whose backend can die under a tool that never gives up
    #: (tgtd under libiscsi): every `qemu` of the command is then watched
    watch: Probe | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.wait

    def remaining(self) -> float:
        """Seconds left of the command's wait (negative once it has passed)."""
        return self.deadline - time.monotonic()

    def check_deadline(self, argv: list[str]) -> None:
        """Raise `CommandTimedOut` for `argv` once the wait has passed."""
        if self.remaining() < 0:
            raise CommandTimedOut(argv, self.wait)

    def info(self, path: Path, fmt: str) -> qemu.ImageInfo:
        return qemu.parse_info(self.qemu(qemu.info_argv(path, fmt)).stdout)

    def qemu(
        self, argv: list[str], *, progress: bool = False, ok: tuple[int, ...] = (0,)
    ) -> Completed:
        remaining = self.remaining()
        if remaining <= 0:
            raise CommandTimedOut(argv, self.wait)
        callback = self.on_progress if progress else None
        if self.watch is None:
            done = self.runner.run(argv, timeout=remaining, on_progress=callback)
        else:
            try:
                done = self.runner.run(
                    argv, timeout=remaining, on_progress=callback, probe=self.watch
                )
            except BackendGone as gone:
                raise AgentFailure(
                    f"{' '.join(argv[:2])} stopped: {gone.why}"
                ) from None
        if done.returncode not in ok:
            raise AgentFailure(_qemu_failure(argv, done.stderr))
        return done


def _qemu_failure(argv: list[str], stderr: str) -> str:
    lines = [line.removeprefix("qemu-img: ") for line in stderr.splitlines() if line]
    why = lines[-1] if lines else "no message"
    what = " ".join(argv[:2])
    if "No space left on device" in stderr or "Disk quota exceeded" in stderr:
        return f"insufficient space: {what} failed: {why}"
    return f"{what} failed: {why}"
