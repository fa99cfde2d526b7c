"""One volume's target in tgtd: found, made whole, re-made, removed.

tgtd keeps nothing across a restart, and other users of the same tgtd make targets
too. So a target is never assumed: `ensure` reads tgtd's list (`--op show`), keeps a
target that is whole (our IQN, LUN 1 on the expected file, our CHAP account bound,
the ACL open), and otherwise removes what is there under our IQN and makes it again
from the LUN file and the volume's CHAP secret. Making it is all or nothing: a step
that fails removes the target and the account again before the failure is raised,
so no half-made target stays behind.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

from executors.providers.command_run import CommandRun
from executors.providers.driver import AgentFailure
from executors.providers.iscsi import tgtadm
from executors.providers.iscsi.layout import Lun
from executors.providers.iscsi.tgtadm import Target
from executors.runner import CommandTimedOut, Completed

#: seconds one tgtadm call may take (each is ~10 ms; tgtd answers or is stuck)
TGTADM_TIMEOUT = 30.0
#: tids tried past the first before giving up (each a target someone else holds)
_TID_TRIES = 64
_EXISTS = "already exists"
_GONE = ("can't find the target", "can't find the account")


#: seconds tgtd has to answer a probe during a copy
PROBE_TIMEOUT = 10.0


@dataclass
class Tgt:
    """tgtadm on one control port, through the command's runner and deadline."""

    run: CommandRun
    port: int

    def call(self, argv: list[str], *, missing_ok: bool = False) -> Completed:
        """Run `argv`; a failure is an `AgentFailure` in tgtadm's words (a delete of
        what is already gone is fine when `missing_ok`)."""
        remaining = self.run.remaining()
        if remaining <= 0:
            raise CommandTimedOut(argv[:1], self.run.wait)
        try:
            done = self.run.runner.run(argv, timeout=min(remaining, TGTADM_TIMEOUT))
        except CommandTimedOut:
            # argv[:1] only: the timed-out line must not quote a password
            raise CommandTimedOut(argv[:1], min(remaining, TGTADM_TIMEOUT)) from None
        if done.returncode != 0:
            if missing_ok and any(g in done.stderr for g in _GONE):
                return done
            raise AgentFailure(
                tgtadm.failure_line(argv, done.returncode, done.stderr, done.stdout)
            )
        return done

    def targets(self) -> dict[str, Target]:
        return tgtadm.parse_targets(self.call(tgtadm.show_argv(self.port)).stdout)

    def probe(self) -> str | None:
        """None while tgtd answers on its control port, else tgtadm's words: a
        copy over iSCSI is stopped when its target is gone (libiscsi would keep
        reconnecting to a dead tgtd for the command's whole wait)."""
        argv = tgtadm.system_argv(self.port)
        try:
            done = self.run.runner.run(argv, timeout=PROBE_TIMEOUT)
        except CommandTimedOut:
            return (
                f"tgtd did not answer on control port {self.port}"
                f" in {PROBE_TIMEOUT:g} s"
            )
        except OSError as exc:
            return f"cannot run tgtadm: {exc.strerror}"
        if done.returncode == 0:
            return None
        why = tgtadm.failure_line(argv, done.returncode, done.stderr, done.stdout)
        return f"tgtd stopped answering on control port {self.port}: {why}"


@dataclass
class Targets:
    """The target operations of one command's run."""

    tgt: Tgt

    @property
    def port(self) -> int:
        return self.tgt.port

    def find(self, lun: Lun) -> Target | None:
        return self.tgt.targets().get(lun.iqn)

    def ensure(self, lun: Lun, backing: str | None = None) -> Target:
        """The volume's target, whole, backed by `backing` (its LUN file by
        default); made (again) from the file and the CHAP secret when missing."""
        path = backing or str(lun.file)
        targets = self.tgt.targets()
        found = targets.get(lun.iqn)
        if found is not None and _whole(found, lun, path) and lun.secret_file.exists():
            return found
        if found is not None:  # half made, or on another file: made again
            self._remove(found.tid, lun)
            targets.pop(lun.iqn)
        password = lun.password(create=True)
        return self._make(lun, path, password, {t.tid for t in targets.values()})

    def remove(self, lun: Lun) -> None:
        """The volume's target (even with an initiator logged in) and account."""
        found = self.find(lun)
        self._remove(found.tid if found else None, lun)

    def refresh(self, lun: Lun, found: Target | None = None) -> Target:
        """LUN 1 removed and added again on the LUN file, so tgtd reads its size
        anew (a grown volume, a filled one renamed into place); an initiator logged
        in stays logged in. A target that is not there, or not whole, is made.
        `found`: the target as this command just made it (else tgtd is asked)."""
        found = found or self.find(lun)
        if found is None or not _bound(found, lun):
            return self.ensure(lun)
        self.tgt.call(tgtadm.delete_lun_argv(self.port, found.tid))
        try:
            self._add_lun(found.tid, str(lun.file))
        except BaseException:
            self._cleanup(found.tid, lun)  # made whole by the next command
            raise
        return Target(
            found.tid, lun.iqn, {tgtadm.LUN: str(lun.file)}, (lun.user,), ("ALL",)
        )

    def _make(self, lun: Lun, path: str, password: str, taken: set[int]) -> Target:
        tid = self._new_target(lun, taken)
        try:
            for name, value in tgtadm.TARGET_PARAMS:
                self.tgt.call(tgtadm.target_param_argv(self.port, tid, name, value))
            self._add_lun(tid, path)
            self.tgt.call(tgtadm.bind_all_argv(self.port, tid))
            self._account(lun, password)
            self.tgt.call(tgtadm.bind_account_argv(self.port, tid, lun.user))
        except BaseException:
            self._cleanup(tid, lun)
            raise
        return Target(tid, lun.iqn, {tgtadm.LUN: path}, (lun.user,), ("ALL",))

    def _account(self, lun: Lun, password: str) -> None:
        """The volume's CHAP account with its password; one left over (its target
        gone, its password perhaps another) is made again."""
        try:
            self.tgt.call(tgtadm.account_argv(self.port, lun.user, password))
        except AgentFailure as exc:
            if _EXISTS not in str(exc):
                raise
            self.tgt.call(tgtadm.delete_account_argv(self.port, lun.user))
            self.tgt.call(tgtadm.account_argv(self.port, lun.user, password))

    def _new_target(self, lun: Lun, taken: set[int]) -> int:
        """A free tid holding our IQN: the derived one, else the next free one (a
        tid or the IQN taken meanwhile by another executor is tried again)."""
        tid = lun.first_tid
        for _ in range(_TID_TRIES):
            while tid in taken:
                tid += 1
            argv = tgtadm.new_target_argv(self.port, tid, lun.iqn)
            try:
                self.tgt.call(argv)
                return tid
            except AgentFailure as exc:
                if _EXISTS not in str(exc):
                    raise
            now = self.tgt.targets()
            if lun.iqn in now:  # another run made ours meanwhile: start over
                raise AgentFailure(
                    f"target {lun.iqn} was made by another command meanwhile"
                )
            taken |= {t.tid for t in now.values()} | {tid}
        raise AgentFailure(f"no free tid found for {lun.iqn} near {lun.first_tid}")

    def _add_lun(self, tid: int, path: str) -> None:
        argv = tgtadm.new_lun_argv(self.port, tid, path, direct=takes_direct(path))
        self.tgt.call(argv)
        self.tgt.call(tgtadm.thin_argv(self.port, tid))

    def _cleanup(self, tid: int | None, lun: Lun) -> None:
        """`_remove` after a failure: the failure is what the operator reads."""
        with contextlib.suppress(AgentFailure, CommandTimedOut):
            self._remove(tid, lun)

    def _remove(self, tid: int | None, lun: Lun) -> None:
        """Best effort, then the first failure: both are always tried."""
        failure: AgentFailure | None = None
        if tid is not None:
            try:
                self.tgt.call(
                    tgtadm.delete_target_argv(self.port, tid), missing_ok=True
                )
            except AgentFailure as exc:
                failure = exc
        try:
            self.tgt.call(
                tgtadm.delete_account_argv(self.port, lun.user), missing_ok=True
            )
        except AgentFailure as exc:
            failure = failure or exc
        if failure is not None:
            raise failure


def _bound(target: Target, lun: Lun) -> bool:
    return lun.user in target.accounts and "ALL" in target.acls


def _whole(target: Target, lun: Lun, path: str) -> bool:
    return target.luns.get(tgtadm.LUN) == path and _bound(target, lun)


def takes_direct(path: str) -> bool:
    """Whether the LUN file can be opened with O_DIRECT (tmpfs, for one, refuses
    it, and tgtd would then refuse the LUN): opened and closed, nothing written."""
    flag = getattr(os, "O_DIRECT", 0)
    if not flag:
        return False
    try:
        fd = os.open(path, os.O_RDONLY | flag | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    os.close(fd)
    return True
