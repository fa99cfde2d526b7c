"""What the lab's backends share: where the data goes, running programs (argv lists
only), the daemons it starts and records by PID, apt, and the credentials profile.

Stdlib only: `tools/lab.py` runs before (and without) the project's virtualenv.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
#: daemons read these: a developer's own must never reach the lab's processes
SCRUBBED_ENV = ("CEPH_ARGS", "CEPH_CONF", "CEPH_KEYRING")


class LabError(Exception):
    """One line for the operator; never carries a secret."""


def port_offset() -> int:
    """`$STORCTL_LAB_PORT_OFFSET` added to every port the lab listens on, so a
    second lab (another `STORCTL_LAB_DIR`) runs beside the first, e.g. for fault
    tests that stop daemons while other work uses the first."""
    raw = os.environ.get("STORCTL_LAB_PORT_OFFSET") or "0"
    if not raw.isdigit() or int(raw) > 2000:
        raise LabError(f"STORCTL_LAB_PORT_OFFSET must be 0..2000, not {raw!r}")
    return int(raw)


def lab_dir() -> Path:
    return Path(os.environ.get("STORCTL_LAB_DIR") or ROOT / "var" / "lab").resolve()


def credentials_path() -> Path:
    return lab_dir() / "credentials.toml"


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


T0 = time.monotonic()


def debug(line: str) -> None:
    """Step timings on stderr when STORCTL_LAB_DEBUG is set (never secrets)."""
    if os.environ.get("STORCTL_LAB_DEBUG"):
        sys.stderr.write(f"lab: {time.monotonic() - T0:6.2f} s {line}\n")


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    env["PATH"] = env.get("PATH", "/usr/bin:/bin") + ":/usr/sbin:/sbin"
    return env


def which(program: str) -> str:
    found = shutil.which(program, path=child_env()["PATH"])
    if not found:
        raise LabError(f"{program} is not installed")
    return found


def run(
    argv: list[str],
    *,
    timeout: float = 60.0,
    secret: bool = False,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run argv (its program resolved on PATH); on failure raise one line naming the
    program and its last line of stderr, unless `secret` (then only the program)."""
    full = [which(argv[0]), *argv[1:]]
    debug(argv[0] if secret else " ".join(argv[:6]))
    try:
        proc = subprocess.run(
            full,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=child_env(),
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise LabError(
            f"{' '.join(argv[:3])} did not finish in {timeout:g} s"
        ) from None
    if check and proc.returncode != 0:
        what = argv[0] if secret else " ".join(argv[:4])
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        tail = "" if secret or not lines else f": {lines[-1].strip()[:300]}"
        raise LabError(f"{what} failed (exit {proc.returncode}){tail}")
    return proc


def wait_until(
    condition: Callable[[], Any],
    timeout: float,
    what: str,
    watch: list[Daemon] | None = None,
    interval: float = 0.1,
) -> Any:
    """Poll `condition` until truthy; fail early if a daemon we watch has died."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        for daemon in watch or []:
            if not daemon.alive():
                raise LabError(f"{daemon.name} exited; see {daemon.log}")
        if time.monotonic() > deadline:
            raise LabError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def port_open(port: int, host: str = HOST) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


# ------------------------------------------------------------------ packages


def missing_packages(packages: list[str]) -> list[str]:
    proc = subprocess.run(
        [which("dpkg-query"), "-W", "-f=${Package} ${db:Status-Status}\\n", *packages],
        capture_output=True,
        text=True,
        env=child_env(),
        check=False,
    )
    installed = {
        line.split()[0]
        for line in proc.stdout.splitlines()
        if line.endswith(" installed")
    }
    return [p for p in packages if p not in installed]


def ensure_packages(packages: list[str]) -> None:
    """Install what is missing through apt (as the Makefile's `qemu` target does)."""
    missing = missing_packages(packages)
    if not missing:
        return
    names = " ".join(missing)
    if os.geteuid() != 0:
        raise LabError(f"missing {names}; install them (apt-get install {names})")
    say(f"installing {names} with apt")
    env = {**child_env(), "DEBIAN_FRONTEND": "noninteractive"}
    apt = shutil.which("apt-get", path=env["PATH"])
    steps = [
        [apt, "update", "-qq"],
        [apt, "install", "-y", "-qq", "--no-install-recommends", *missing],
    ]
    for argv in steps:
        ok = apt and subprocess.run(
            argv, capture_output=True, env=env, check=False, timeout=900
        )
        if not ok or ok.returncode != 0:
            raise LabError(
                f"could not install {names}; install them "
                f"(apt-get install --no-install-recommends {names}) and retry"
            )


# ------------------------------------------------------------------ daemons


def proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks) of a live pid, or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[19])


def rss_mib(pid: int) -> float:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Daemon:
    """One process the lab starts, recorded as pid + start time in `record`."""

    name: str
    argv: list[str]
    record: Path
    log: Path

    def recorded(self) -> tuple[int, int] | None:
        try:
            data = json.loads(self.record.read_text())
            return int(data["pid"]), int(data["start"])
        except (OSError, ValueError, KeyError):
            return None

    def pid(self) -> int | None:
        """The recorded pid while that very process (same start time) lives."""
        rec = self.recorded()
        if rec is None:
            return None
        stat = proc_stat(rec[0])
        if stat is None or stat[1] != rec[1] or stat[0] in ("Z", "X"):
            return None
        return rec[0]

    def alive(self) -> bool:
        return self.pid() is not None

    def start(self) -> int:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.record.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            proc = subprocess.Popen(
                [which(self.argv[0]), *self.argv[1:]],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=child_env(),
                cwd=self.log.parent,
                start_new_session=True,  # a ^C on make must not reach it
                close_fds=True,
            )
        stat = proc_stat(proc.pid)
        debug(f"started {self.name} ({proc.pid})")
        if stat is None:
            raise LabError(f"{self.name} exited at once; see {self.log}")
        tmp = self.record.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": proc.pid, "start": stat[1]}) + "\n")
        tmp.replace(self.record)
        return proc.pid

    def signal(self, sig: int) -> bool:
        pid = self.pid()
        if pid is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        return True

    def forget(self) -> None:
        self.record.unlink(missing_ok=True)


def stop_daemons(daemons: list[Daemon], grace: float = 15.0) -> None:
    """SIGTERM the recorded, still-living ones; SIGKILL what outlives `grace`."""
    live = [d for d in daemons if d.signal(signal.SIGTERM)]
    debug(f"SIGTERM {[d.name for d in live]}")
    deadline = time.monotonic() + grace
    while any(d.alive() for d in live) and time.monotonic() < deadline:
        time.sleep(0.05)
    for d in live:
        if d.signal(signal.SIGKILL):
            debug(f"SIGKILL {d.name}: it outlived {grace:g} s")
            wait_until(lambda d=d: not d.alive(), 10, f"{d.name} to die")
    for d in daemons:
        if not d.alive():
            d.forget()


# ------------------------------------------------------------------ locking


@contextlib.contextmanager
def locked(timeout: float = 900.0) -> Iterator[None]:
    """One lab command at a time per lab folder (make lab vs a test session)."""
    folder = lab_dir()
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    with (folder / ".lock").open("a") as f:
        deadline = time.monotonic() + timeout
        waited = False
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waited:
                    say("waiting for another lab command to finish")
                    waited = True
                if time.monotonic() > deadline:
                    raise LabError("another lab command holds the lock") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# ------------------------------------------------------------------ credentials


def read_credentials() -> dict[str, dict[str, Any]]:
    try:
        with credentials_path().open("rb") as f:
            return tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value))  # a JSON string is a TOML basic string


def write_credentials(sections: dict[str, dict[str, Any]]) -> Path:
    """Replace these sections of credentials.toml (0600), keeping the others."""
    merged = {**read_credentials(), **sections}
    order = ["lab-ceph", "lab-s3", "lab-swift", "lab-iscsi"]
    names = sorted(merged, key=lambda n: (order.index(n) if n in order else 99, n))
    text = "# written by tools/lab.py: the lab's backends (secrets: keep 0600)\n"
    for name in names:
        text += f"\n[{name}]\n"
        text += "".join(f"{k} = {_toml_value(v)}\n" for k, v in merged[name].items())
    path = credentials_path()
    tmp = path.with_name(".credentials.toml.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
    return path
