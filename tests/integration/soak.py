"""The soak (issue 19): workers, CLIs and faults at once on PostgreSQL, then the books.

For `seconds`, on a PostgreSQL cluster of its own (`pg_cluster`):
- 3 workers: two general `executor run` (one works, one waits on the lease and takes
  over when the first dies) and one `executor run --hosts sim-b`;
- 4 CLI loops (threads, each running `storctl` processes one after another): create
  (synchronous or `--async` then `job wait`), attach, detach, snapshot, migrate
  between clusters (staged through the image store), delete, on volumes of their
  own, each command with an actor of its own (`soak-L<loop>-<n>`) so the ledger can
  be held against what that command was told;
- faults: every few seconds a simulator host is told to delay, fail or hang
  (at a 3 s wait) the next command or two of a random type;
- kills: every few seconds a random worker is SIGKILLed and started again;
- PostgreSQL restarted once (`pg_ctl -m immediate`, every connection cut), at about
  40 % of the run.

Then every job must settle (workers left running, faults cleared), and `check`
holds the ledger against the CLIs' records (`checks` lists what is asserted). The
figures go into a `Report`, which `tools/soak.py` writes to `var/soak/last.json`
and `docs/reliability.md` quotes.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from .conftest import Result, Storctl
from .ledger_checks import assert_quiet, assert_rebuild_equal
from .pg_cluster import PgCluster

GiB = 1 << 30
HOSTS = ("sim-a", "sim-b")
POOLS = {"sim-a": ("pool-a", "ca"), "sim-b": ("pool-b", "cb")}
FAULT_COMMANDS = ("CreateObjectCommand", "CopyCommand", "DeleteCommand",
                  "AttachCommand", "DettachCommand")  # fmt: skip
WORKERS = (("general-1", ()), ("general-2", ()), ("host-sim-b", ("--hosts", "sim-b")))


@dataclass
class Call:
    """One storctl process a CLI loop ran, and what it was told."""

    loop: int
    actor: str
    args: list[str]
    code: int
    err: str
    out: Any
    seconds: float

    @property
    def db_failed(self) -> bool:
        """Exit 3 because the database went away (the PostgreSQL restart): the
        command cannot know whether its last transaction committed."""
        return self.code == 3 and "the ledger's database failed" in self.err


@dataclass
class Report:
    seconds: float = 0.0
    seed: int = 0
    calls: dict[str, int] = field(default_factory=dict)  # "volume.create exit 0"
    jobs: dict[str, int] = field(default_factory=dict)  # by status
    faults: dict[str, int] = field(default_factory=dict)  # configured, by mode
    faults_used: int = 0  # commands that met one (SimulatorPlan.FaultUsed)
    kills: int = 0
    worker_restarts: int = 0
    worker_exits: list[str] = field(default_factory=list)  # not killed by us
    pg_restarts: int = 0
    pg_down_seconds: float = 0.0
    settle_seconds: float = 0.0
    events: int = 0
    requests: int = 0
    answers: int = 0
    lost: int = 0
    doubled: int = 0
    overbooked: int = 0
    divergences: int = 0
    ledger_verify: str = "not run"
    rebuild_rows: int = 0
    checks: list[str] = field(default_factory=list)

    def json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)


class Worker:
    """One `executor run` process, restarted under the same name after a kill."""

    def __init__(self, cli: Storctl, name: str, extra: tuple[str, ...]) -> None:
        self.cli, self.name, self.extra = cli, name, extra
        self.proc = self._start()

    def _start(self) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.cli.argv("executor", "run", *self.extra),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=self.cli.environ(),
        )

    def kill(self) -> None:
        """SIGKILL this worker (by its pid) and reap it."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.communicate()

    def exited(self) -> str | None:
        """The last line of a worker that ended by itself, else None."""
        if self.proc.poll() is None:
            return None
        _, err = self.proc.communicate()
        last = (err.strip().splitlines() or [""])[-1]
        return f"{self.name} exit {self.proc.returncode}: {last}"

    def restart(self) -> None:
        self.proc = self._start()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()
        else:
            self.proc.communicate()


class CliLoop(threading.Thread):
    """One operator script: random operations on its own volumes until told to
    stop, every storctl call recorded with its actor."""

    def __init__(self, n: int, cli: Storctl, seed: int, stop: threading.Event) -> None:
        super().__init__(name=f"cli-loop-{n}", daemon=True)
        self.n, self.cli, self.stop = n, cli, stop
        self.rng = random.Random(seed * 100 + n)
        self.calls: list[Call] = []
        self.count = 0
        self.error: BaseException | None = None

    def call(self, *args: str, run_async: bool = False, timeout: float = 180) -> Call:
        self.count += 1
        actor = f"soak-L{self.n}-{self.count:04d}"
        began = time.monotonic()
        try:
            r = self.cli.run("--actor", actor, *args, run_async=run_async,
                             timeout=timeout)  # fmt: skip
        except subprocess.TimeoutExpired:
            r = Result(-1, "", f"timed out after {timeout} s")
        out: Any = None
        if r.code == 0:
            try:
                out = r.json
            except ValueError:
                out = r.out
        c = Call(self.n, actor, list(args), r.code, r.err.strip(), out,
                 time.monotonic() - began)  # fmt: skip
        self.calls.append(c)
        return c

    def mine(self) -> list[dict[str, Any]]:
        listed = self.call("volume", "list")
        if listed.code != 0 or not isinstance(listed.out, list):
            return []
        prefix = f"L{self.n}-"
        return [
            v
            for v in listed.out
            if v["name"].startswith(prefix) and v["state"] not in ("Expunged",)
        ]

    def step(self, serial: int) -> None:
        vols = self.mine()
        # Allocated: created without --pool, it gets one when attached
        usable = [v for v in vols if v["state"] in ("Ready", "Allocated")]
        choice = self.rng.random()
        if len(vols) < 3 and (not usable or choice < 0.35):
            name = f"L{self.n}-v{serial}"
            pool = self.rng.choice([None, "pool-a", "pool-b"])
            size = f"{self.rng.choice([1, 2])}G"
            args = ["volume", "create", name, "--zone", "z1", "--size", size,
                    *(["--pool", pool] if pool else [])]  # fmt: skip
            if self.rng.random() < 0.3:
                told = self.call(*args, run_async=True)
                if told.code == 0 and isinstance(told.out, dict):
                    self.call("job", "wait", told.out["jobid"], "--timeout", "120")
            else:
                self.call(*args)
            return
        if not usable:
            return
        vol = self.rng.choice(usable)
        attached = vol.get("virtualmachineid") is not None
        if vol["state"] == "Allocated":
            ops = ["attach", "delete"]
        elif attached:
            ops = ["snapshot", "delete", "detach"]
        else:
            ops = ["snapshot", "delete", "attach", "migrate"]
        op = self.rng.choice(ops)
        if op == "attach":
            self.call("volume", "attach", vol["id"], "--vm", f"vm-L{self.n}")
        elif op == "detach":
            self.call("volume", "detach", vol["id"])
        elif op == "snapshot":
            self.call(
                "snapshot", "create", vol["id"], "--name", f"{vol['name']}-s{serial}"
            )
        elif op == "migrate":
            target = "pool-b" if vol.get("storage") == "pool-a" else "pool-a"
            self.call("volume", "migrate", vol["id"], "--pool", target)
        elif op == "delete":
            if attached:
                self.call("volume", "detach", vol["id"])
            self.call("volume", "delete", vol["id"])

    def run(self) -> None:
        try:
            serial = 0
            while not self.stop.is_set():
                serial += 1
                self.step(serial)
        except BaseException as e:  # reported by the harness, not lost in a thread
            self.error = e


def setup(cli: Storctl, loops: int) -> None:
    """Two clusters (a simulator host and pool each), one image store, a template,
    a VM per loop; waits short enough that a hang costs seconds, not hours."""
    for key in ("wait", "copy.volume.wait", "backup.snapshot.wait"):
        cli.ok("--actor", "soak-setup", "config", "set", key, "3")
    for host, (pool, cluster) in POOLS.items():
        cli.ok("--actor", "soak-setup", "host", "add", host, "--zone", "z1",
               "--cluster", cluster, "--hypervisor", "simulator")  # fmt: skip
        cli.ok("--actor", "soak-setup", "pool", "add", pool, "--zone", "z1",
               "--cluster", cluster, "--path", f"/sim/{pool}", "--capacity", "12G",
               "--type", "simulator")  # fmt: skip
    cli.ok("--actor", "soak-setup", "store", "add", "s1", "--zone", "z1",
           "--path", "/sim/s1", "--provider", "simulator")  # fmt: skip
    cli.ok("--actor", "soak-setup", "template", "register", "t1", "--zone", "z1",
           "--url", "http://example.invalid/t1.qcow2", "--format", "qcow2")  # fmt: skip
    for n in range(1, loops + 1):
        cli.ok("--actor", "soak-setup", "vm", "deploy", f"vm-L{n}", "--template", "t1",
               "--zone", "z1")  # fmt: skip


@dataclass
class Soak:
    """One soak run; `run` returns its report, `check` asserts the books."""

    cluster: PgCluster
    seconds: float
    seed: int = 1
    loops: int = 4
    kill_every: tuple[float, float] = (3.0, 8.0)
    fault_every: tuple[float, float] = (1.0, 3.0)
    log: Any = None  # a callable taking one line of progress, or None
    report: Report = field(default_factory=Report)
    calls: list[Call] = field(default_factory=list)
    cli: Storctl = field(init=False)
    began: float = field(init=False, default=0.0)

    def say(self, line: str) -> None:
        if self.log is not None:
            self.log(line)

    def run(self) -> Report:
        rng = random.Random(self.seed)
        self.cluster.init()
        self.cluster.start()
        cli = Storctl(self.cluster.url(), subprocess=True)
        self.cli = cli
        setup(cli, self.loops)
        self.say(f"setup done; soaking for {self.seconds:.0f} s")
        workers = [Worker(cli, name, extra) for name, extra in WORKERS]
        try:
            self.soak(cli, workers, rng)
            cli.ok("--actor", "soak-end", "simulator", "clear")
            settle_began = time.monotonic()
            self.settle(cli, workers)
        finally:  # whatever happened, stop what was started
            for w in workers:
                w.stop()
        self.report.settle_seconds = round(time.monotonic() - settle_began, 2)
        self.report.seconds = round(time.monotonic() - self.began, 1)
        self.report.seed = self.seed
        self.report.calls = dict(
            sorted(
                Counter(
                    f"{'.'.join(a for a in c.args[:2])} exit {c.code}"
                    for c in self.calls
                ).items()
            )
        )
        return self.report

    def soak(self, cli: Storctl, workers: list[Worker], rng: random.Random) -> None:
        """The run proper: CLI loops going, faults injected, workers killed,
        PostgreSQL restarted once; returns when the loops have stopped."""
        stop = threading.Event()
        loops = [CliLoop(n, cli, self.seed, stop) for n in range(1, self.loops + 1)]
        for loop in loops:
            loop.start()
        began = self.began = time.monotonic()
        restart_at = began + 0.4 * self.seconds
        next_kill = began + rng.uniform(*self.kill_every)
        next_fault = began + rng.uniform(*self.fault_every)
        faults: Counter[str] = Counter()
        try:
            while time.monotonic() - began < self.seconds:
                now = time.monotonic()
                for w in workers:
                    gone = w.exited()
                    if gone is not None:
                        self.report.worker_exits.append(gone)
                        self.say(f"worker ended by itself: {gone}")
                        w.restart()
                        self.report.worker_restarts += 1
                if self.report.pg_restarts == 0 and now >= restart_at:
                    pid, down = self.cluster.restart()
                    self.report.pg_restarts += 1
                    self.report.pg_down_seconds = round(down, 2)
                    self.say(f"PostgreSQL restarted (pid {pid}, {down:.2f} s)")
                if now >= next_kill:
                    victim = rng.choice(workers)
                    victim.kill()
                    self.report.kills += 1
                    stop.wait(rng.uniform(0.2, 1.0))
                    victim.restart()
                    self.report.worker_restarts += 1
                    next_kill = time.monotonic() + rng.uniform(*self.kill_every)
                if now >= next_fault:
                    mode = self.inject(cli, rng)
                    if mode:
                        faults[mode] += 1
                    next_fault = time.monotonic() + rng.uniform(*self.fault_every)
                stop.wait(0.1)
        finally:
            stop.set()
            for loop in loops:
                loop.join(timeout=300)
        self.report.faults = dict(faults)
        for loop in loops:
            if loop.error is not None:
                raise RuntimeError(f"CLI loop {loop.n} broke: {loop.error!r}")
            self.calls += loop.calls

    def inject(self, cli: Storctl, rng: random.Random) -> str | None:
        mode = rng.choice(["delay", "delay", "fail", "hang"])
        args = ["simulator", "configure", "--host", rng.choice(HOSTS),
                "--command", rng.choice(FAULT_COMMANDS),
                "--count", str(rng.choice([1, 2]))]  # fmt: skip
        if mode == "delay":
            args += ["--delay", f"{rng.uniform(0.1, 1.5):.2f}"]
        elif mode == "fail":
            args += ["--fail", "soak: injected failure"]
        else:
            args += ["--hang"]
        told = cli.run("--actor", "soak-faults", *args)
        return mode if told.code == 0 else None

    def settle(self, cli: Storctl, workers: list[Worker], timeout: float = 240) -> None:
        """Every job settled, workers still running (and restarted if they died)."""
        deadline = time.monotonic() + timeout
        while True:
            for w in workers:
                gone = w.exited()
                if gone is not None:
                    self.report.worker_exits.append(gone)
                    w.restart()
                    self.report.worker_restarts += 1
            listed = cli.run("job", "list")
            if listed.code == 0:
                pending = [j for j in listed.json if j["status"] == "pending"]
                if not pending:
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"jobs still pending after {timeout} s: {listed}")
            time.sleep(0.5)

    # ------------------------------------------------------------------ the books

    def check(self) -> Report:
        """Assert the books; the report's figures say what was counted."""
        from .soak_books import check_books

        check_books(self)
        self.report.divergences = 0
        assert_quiet(self.cli)
        self.report.checks.append("replay verify silent, doctor clean")
        self.report.ledger_verify = ledger_verify(self.cli)
        counts = assert_rebuild_equal(self.cli.db)
        self.report.rebuild_rows = sum(counts.values())
        self.report.checks.append("projections equal a rebuild from zero")
        return self.report


def ledger_verify(cli: Storctl) -> str:
    """HOOK (issue 19, branch `chain`): `storctl ledger verify` walks the hash
    chain. Run when the command exists (its exit must be 0); reported as missing
    until then, never counted as passed."""
    probe = cli.run("ledger", "--help")
    if probe.code != 0:
        return "not available (storctl ledger verify is not on this branch)"
    told = cli.run("ledger", "verify", timeout=300)
    assert told.code == 0, f"ledger verify: {told}"
    return "clean"
