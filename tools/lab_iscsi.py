"""The lab's iSCSI target: tgtd on a private control port, portal 127.0.0.1:3260.

tgtd keeps no targets across restarts (a driver re-creates them from its ledger);
the LUN files live in `<lab>/iscsi/luns/`. tgtd ignores SIGTERM: stopping deletes
every target (`--force`), then asks the daemon itself to go.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from pathlib import Path
from typing import Any

from lab_common import (
    HOST,
    Daemon,
    LabError,
    lab_dir,
    port_offset,
    port_open,
    read_credentials,
    run,
    stop_daemons,
    wait_until,
)

PACKAGES = ["tgt"]
CONTROL_PORT, PORTAL_PORT = 17 + port_offset(), 3260 + port_offset()


def home() -> Path:
    return lab_dir() / "iscsi"


def lun_dir() -> Path:
    return home() / "luns"


def daemon() -> Daemon:
    argv = ["tgtd", "-f", "-C", str(CONTROL_PORT), "--iscsi",
            f"portal={HOST}:{PORTAL_PORT}"]  # fmt: skip
    return Daemon(
        "tgtd", argv, home() / "pids" / "tgtd.json", home() / "log" / "tgtd.out"
    )


def daemons() -> list[Daemon]:
    return [daemon()]


def tgtadm(*args: str, check: bool = True) -> str:
    argv = ["tgtadm", "-C", str(CONTROL_PORT), *args]
    return run(argv, timeout=30, check=check).stdout


def answers() -> bool:
    return run(["tgtadm", "-C", str(CONTROL_PORT), "--op", "show", "--mode", "system"],
               check=False).returncode == 0  # fmt: skip


def targets() -> list[int]:
    shown = tgtadm("--op", "show", "--mode", "target")
    return [int(m) for m in re.findall(r"^Target (\d+):", shown, re.MULTILINE)]


def sections() -> dict[str, dict[str, Any]]:
    return {
        "lab-iscsi": {
            "kind": "iscsi",
            "control_port": CONTROL_PORT,
            "portal": f"{HOST}:{PORTAL_PORT}",
            "lun_dir": str(lun_dir()),
        }
    }


def is_up() -> bool:
    return (
        daemon().alive()
        and port_open(PORTAL_PORT)
        and "lab-iscsi" in read_credentials()
    )


def up() -> dict[str, dict[str, Any]] | None:
    if is_up():
        return None
    tgtd = daemon()
    lun_dir().mkdir(parents=True, exist_ok=True)
    if not tgtd.alive():
        if port_open(PORTAL_PORT) or answers():
            raise LabError(
                f"{HOST}:{PORTAL_PORT} or tgtd control port {CONTROL_PORT} is taken "
                "by a process this lab did not start (another checkout's lab?)"
            )
        tgtd.start()
    wait_until(lambda: answers() and port_open(PORTAL_PORT), 20,
               f"tgtd on {HOST}:{PORTAL_PORT}", [tgtd])  # fmt: skip
    return sections()


def down() -> None:
    tgtd = daemon()
    if tgtd.alive():
        for tid in targets():
            tgtadm("--op", "delete", "--mode", "target", "--tid", str(tid), "--force")
        tgtadm("--op", "delete", "--mode", "system", check=False)
        with contextlib.suppress(LabError):  # else stop_daemons kills it, by its pid
            wait_until(lambda: not tgtd.alive(), 10, "tgtd to exit")
    stop_daemons([tgtd], grace=1.0)


def remove() -> None:
    if home().exists():
        shutil.rmtree(home())
