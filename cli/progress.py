"""A progress bar on stderr for long agent work (`qemu-img convert -p`).

Only on a terminal: scripts reading stdout never see it, and a log stays clean.
"""

from __future__ import annotations

import sys
from typing import ClassVar


class ProgressBar:
    _shared: ClassVar[ProgressBar | None] = None

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self.label = ""
        self.last = -1

    @classmethod
    def shared(cls) -> ProgressBar:
        if cls._shared is None:
            cls._shared = cls()
        return cls._shared

    def update(self, label: str, fraction: float) -> None:
        if not self.enabled:
            return
        pct = int(max(0.0, min(1.0, fraction)) * 100)
        if label == self.label and pct == self.last:
            return
        self.label, self.last = label, pct
        filled = pct * 30 // 100
        bar = "#" * filled + "-" * (30 - filled)
        sys.stderr.write(f"\r{label[:40]:<40} [{bar}] {pct:3d}%")
        if pct >= 100:
            sys.stderr.write("\n")
        sys.stderr.flush()

    def end(self) -> None:
        """Close a bar left short of 100 % (the work failed or was interrupted),
        so what is printed next starts on a line of its own."""
        if self.enabled and 0 <= self.last < 100:
            sys.stderr.write("\n")
            sys.stderr.flush()
        self.label, self.last = "", -1
