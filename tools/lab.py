"""The lab: real storage servers for storctl's executors, on 127.0.0.1 only.

    python tools/lab.py up [ceph] [iscsi]     install (apt) and start what is down
    python tools/lab.py down [ceph] [iscsi]   stop what the lab started (by PID)
    python tools/lab.py status [--json]       the daemons, their PIDs and RSS
    python tools/lab.py clean                 down, then remove the lab's data

Data, logs, PID records and `credentials.toml` (0600) live under `var/lab/` in the
checkout, or `$STORCTL_LAB_DIR`. `make lab`, `make lab-down` (...) call this; so does
the `lab` fixture of `tests/conftest.py`. Exit 0 done, 1 failed (one line on stderr).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lab_ceph
import lab_iscsi
from lab_common import (
    Daemon,
    LabError,
    credentials_path,
    ensure_packages,
    lab_dir,
    locked,
    rss_mib,
    say,
    write_credentials,
)

BACKENDS: dict[str, ModuleType] = {"ceph": lab_ceph, "iscsi": lab_iscsi}
#: qemu-img's rbd and iscsi drivers
COMMON_PACKAGES = ["qemu-block-extra"]


def daemons_of(name: str) -> list[Daemon]:
    return list(BACKENDS[name].daemons())


def pids(name: str) -> str:
    return ", ".join(f"{d.name} {d.pid()}" for d in daemons_of(name) if d.alive())


def up(names: list[str]) -> None:
    for name in names:
        module = BACKENDS[name]
        t0 = time.monotonic()
        if module.is_up():
            say(f"{name}: already up ({pids(name)})")
            continue
        ensure_packages(module.PACKAGES + COMMON_PACKAGES)
        made = module.up()
        if made:
            write_credentials(made)
        say(f"{name}: up in {time.monotonic() - t0:.1f} s ({pids(name)})")
    say(f"export STORCTL_CREDENTIALS={credentials_path()}")


def down(names: list[str], *, keep: bool = True) -> None:
    for name in names:
        t0 = time.monotonic()
        was = [d.name for d in daemons_of(name) if d.alive()]
        BACKENDS[name].down()
        if was:
            say(f"{name}: stopped {', '.join(was)} in {time.monotonic() - t0:.1f} s")
        else:
            say(f"{name}: nothing of the lab's was running")
    if keep:
        say(f"data kept in {lab_dir()} (make lab-clean removes it)")


def status(*, as_json: bool) -> None:
    report = {
        name: {
            d.name: {"pid": d.pid(), "rss_mib": round(rss_mib(d.pid() or 0), 1)}
            for d in daemons_of(name)
        }
        for name in BACKENDS
    }
    if as_json:
        say(json.dumps({"lab_dir": str(lab_dir()), "backends": report}))
        return
    for name, ds in report.items():
        for dname, info in ds.items():
            state = (
                f"pid {info['pid']}, {info['rss_mib']} MiB" if info["pid"] else "down"
            )
            say(f"{name}: {dname}: {state}")
    say(f"data in {lab_dir()}; credentials {credentials_path()}")


def clean() -> None:
    down(list(BACKENDS), keep=False)
    for name, module in BACKENDS.items():
        if any(d.alive() for d in daemons_of(name)):
            raise LabError(f"{name} is still running: not removing its data")
        module.remove()
    credentials_path().unlink(missing_ok=True)
    say(f"removed the lab's data from {lab_dir()}")


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `lab.py status | head` is fine
    parser = argparse.ArgumentParser(
        prog="tools/lab.py", description=__doc__.split("\n")[0]
    )
    parser.add_argument("action", choices=["up", "down", "status", "clean"])
    parser.add_argument("backends", nargs="*", metavar="ceph|iscsi")
    parser.add_argument("--json", action="store_true", help="status as JSON")
    args = parser.parse_args(argv)
    names = args.backends or list(BACKENDS)
    if unknown := set(names) - set(BACKENDS):
        parser.error(f"no such backend: {', '.join(sorted(unknown))}")
    if args.action == "status":
        status(as_json=args.json)
        return 0
    try:
        with locked():
            if args.action == "up":
                up(names)
            elif args.action == "down":
                down(names)
            else:
                clean()
    except LabError as e:
        sys.stderr.write(f"lab: error: {e}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
