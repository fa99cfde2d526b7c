"""Progress on stderr for long work: copies, downloads and migrations (the agent's
`qemu-img convert -p`), replays and rebuilds, drawn with `rich.progress`.

Only on a terminal: scripts reading stdout never see it, and a log stays clean.
A command that moves a known number of bytes shows bytes done, the rate and the
time left; other work (events applied) its percentage and the time left. Commands
running at once on several hosts are one bar each; a bar goes when its work is
done, and `end` clears what is left (work that failed or was interrupted).
"""

from __future__ import annotations

import sys
import threading
from typing import Any, ClassVar, TextIO


class ProgressBar:
    """The bars of one command line: `update(label, fraction, total)` from any
    thread (the dispatcher's command pool), `end()` once the work settles."""

    _shared: ClassVar[ProgressBar | None] = None

    def __init__(self, stream: TextIO | None = None, *, terminal: bool | None = None):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty() if terminal is None else terminal
        self._lock = threading.Lock()
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}  # label -> rich task id
        self._shown: dict[str, int] = {}  # label -> last whole percent drawn

    @classmethod
    def shared(cls) -> ProgressBar:
        if cls._shared is None:
            cls._shared = cls()
        return cls._shared

    def update(self, label: str, fraction: float, total: int | None = None) -> None:
        """`fraction` of `label`'s work is done; `total` is its size in bytes,
        when known."""
        if not self.enabled:
            return
        fraction = max(0.0, min(1.0, fraction))
        pct = int(fraction * 100)
        with self._lock:
            if self._shown.get(label) == pct:
                return  # qemu-img says 0.01 % steps: draw whole percents
            self._shown[label] = pct
            progress = self._start()
            task = self._tasks.get(label)
            size = total if total else 1.0
            if task is None:
                task = progress.add_task(label, total=size, bytes=bool(total))
                self._tasks[label] = task
            progress.update(task, completed=fraction * size)
            if fraction >= 1.0:
                progress.remove_task(task)
                del self._tasks[label]
                del self._shown[label]
            progress.refresh()
            if not self._tasks:
                self._stop()

    def end(self) -> None:
        """Clear the bars left short (the work failed or was interrupted), so
        what is printed next starts on a line of its own."""
        with self._lock:
            self._tasks.clear()
            self._shown.clear()
            self._stop()

    def _start(self) -> Any:
        if self._progress is None:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                Progress,
                TaskProgressColumn,
                TextColumn,
                TimeRemainingColumn,
            )

            console = Console(file=self.stream, force_terminal=self.enabled)
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                _bytes_column()(),
                TimeRemainingColumn(),
                console=console,
                transient=True,
                auto_refresh=False,
            )
            self._progress.start()
        return self._progress

    def _stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def _bytes_column() -> Any:
    """The column class, defined once rich is imported (only on a terminal)."""
    from rich.progress import ProgressColumn
    from rich.table import Column
    from rich.text import Text

    class Bytes(ProgressColumn):
        """`300 MiB/700 MiB 42 MiB/s` for a task that counts bytes, else nothing."""

        def render(self, task: Any) -> Text:
            if not task.fields.get("bytes"):
                return Text("")
            from ledger.values import format_size

            done = format_size(int(task.completed))
            total = format_size(int(task.total or 0))
            speed = task.finished_speed or task.speed
            rate = f"{format_size(int(speed))}/s" if speed else "-/s"
            return Text(f"{done}/{total} {rate}", style="progress.download")

    return lambda: Bytes(table_column=Column(no_wrap=True))
