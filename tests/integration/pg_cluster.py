"""A PostgreSQL cluster of the soak's own, so it can be restarted mid-run.

The shared server on 127.0.0.1:5432 has other users (other test runs, other
helpers); restarting it would fail them. So the soak `initdb`s a cluster into a
folder of its own (`var/soak/pg` for `make soak`, a temporary folder for the test),
listening on 127.0.0.1 only at a port of its own, and starts, restarts and stops
that one with `pg_ctl` (which signals the postmaster by the PID in the folder's
`postmaster.pid`: only what it started). Run as root, PostgreSQL's tools go through
`runuser -u postgres --` (the server refuses to run as root), on a folder owned by
`postgres`. Trust authentication: the cluster holds only the soak's data and
listens on loopback only.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


def pg_bin(tool: str) -> str:
    """`tool` from the newest /usr/lib/postgresql/*/bin (pg_ctl is not on PATH)."""
    found = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if found:
        return found[-1]
    on_path = shutil.which(tool)
    if on_path is None:
        raise RuntimeError(f"PostgreSQL's {tool} is not installed")
    return on_path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgCluster:
    """One private cluster: `folder/data`, its log, on `port` at 127.0.0.1."""

    folder: Path
    port: int

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def log(self) -> Path:
        return self.folder / "postgres.log"

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def _as_postgres(self, argv: list[str], timeout: float = 120) -> None:
        tool = Path(argv[0]).name
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, check=False
        )
        if proc.returncode != 0:
            why = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
            raise RuntimeError(f"{tool}: {why}")

    def pid(self) -> int | None:
        """The postmaster's PID as its folder records it, if it is alive."""
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def init(self) -> None:
        """A new, empty cluster (whatever an earlier run left is stopped first)."""
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        if os.geteuid() == 0:
            pg = pwd.getpwnam("postgres")
            os.chown(self.folder, pg.pw_uid, pg.pw_gid)
        self._as_postgres(
            [pg_bin("initdb"), "-A", "trust", "-U", "postgres", "-E", "UTF8",
             "--no-sync", "-D", str(self.data)]
        )  # fmt: skip

    def _options(self) -> str:
        return (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
            " -c max_connections=200 -c fsync=off"
        )

    def start(self) -> int:
        self._as_postgres(
            [pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w",
             "-t", "60", "-o", self._options(), "start"]
        )  # fmt: skip
        pid = self.pid()
        if pid is None:
            raise RuntimeError(f"PostgreSQL did not start (see {self.log})")
        return pid

    def crash(self) -> None:
        """Stop the postmaster as a crash would (`-m immediate`: no checkpoint,
        every connection cut); `start` brings it back with crash recovery."""
        self._as_postgres(
            [pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"]
        )

    def restart(self) -> tuple[int, float]:
        """Stop the postmaster as a crash would (`-m immediate`: no checkpoint,
        every connection cut), start it again; (new pid, seconds it was down)."""
        began = time.monotonic()
        self.crash()
        pid = self.start()
        return pid, time.monotonic() - began

    def stop(self) -> None:
        """Stop this cluster's postmaster if it runs (a no-op otherwise)."""
        if self.pid() is None:
            return
        with contextlib.suppress(RuntimeError):
            self._as_postgres(
                [pg_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"]
            )

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def private_cluster(prefix: str) -> Iterator[PgCluster]:
    """A cluster in a new temporary folder, not yet initialised; stopped and
    removed afterwards. Needs PostgreSQL's server binaries: the caller decides
    whether their absence fails or skips (`pg_bin` raises RuntimeError)."""
    pg_bin("pg_ctl")
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    folder.chmod(0o755)  # the postgres user walks into it
    pg = PgCluster(folder / "pg", free_port())
    try:
        yield pg
    finally:
        pg.remove()
        shutil.rmtree(folder, ignore_errors=True)
