"""Pure `tgtadm` argv builders and a reader of what `tgtadm --op show` prints.

tgtd, Linux's user-space iSCSI target, is driven through its control port
(`tgtadm -C N`). Nothing here runs a process, so every command line is
table-testable; `targets.Tgt` runs them through the command's `Runner`.

A CHAP password is the last word of `account_argv` and appears nowhere else; a
failure is worded by `failure_line` from the argv's `--op`/`--mode` and tgtadm's own
words, never from the argv itself, so no password reaches an answer or a log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

TGTADM = "tgtadm"
#: CloudStack's managed LUN: one per target (LUN 0 is tgtd's own controller)
LUN = 1
#: what an initiator is told it may send per PDU and per burst: tgtd's defaults
#: (8 KiB segments) cost writes through a LUN half their speed
TARGET_PARAMS = (("MaxRecvDataSegmentLength", "262144"),)

_TARGET = re.compile(r"^Target (\d+): (\S+)\s*$")
_LUN = re.compile(r"^\s+LUN: (\d+)\s*$")
_PATH = re.compile(r"^\s+Backing store path: (.*?)\s*$")
_NEXUS = re.compile(r"^\s+I_T nexus: \d+\s*$")
_SECTION = re.compile(r"^    (\w[\w ]*\w) information:\s*$")
_ITEM = re.compile(r"^        (\S.*?)\s*$")


def _base(port: int, op: str, mode: str) -> list[str]:
    if isinstance(port, bool) or not isinstance(port, int) or port < 0:
        raise ValueError(f"invalid control port {port!r}")
    return [TGTADM, "-C", str(port), "--lld", "iscsi", "--op", op, "--mode", mode]


def _tid(tid: int) -> str:
    if isinstance(tid, bool) or not isinstance(tid, int) or tid < 1:
        raise ValueError(f"invalid tid {tid!r}")
    return str(tid)


def _word(value: str, what: str) -> str:
    # An IQN, a user name, a path: never empty, never an option, one line.
    if not value or value.startswith("-") or any(not c.isprintable() for c in value):
        raise ValueError(f"unsafe {what} {value!r}")
    return value


def system_argv(port: int) -> list[str]:
    """`--op show --mode system`: tgtd answers on its control port, or not."""
    return _base(port, "show", "system")


def show_argv(port: int) -> list[str]:
    """Every target with its LUNs, accounts and ACLs."""
    return _base(port, "show", "target")


def new_target_argv(port: int, tid: int, iqn: str) -> list[str]:
    return [*_base(port, "new", "target"), "--tid", _tid(tid), "-T", _word(iqn, "iqn")]


def target_param_argv(port: int, tid: int, name: str, value: str) -> list[str]:
    return [
        *_base(port, "update", "target"),
        "--tid",
        _tid(tid),
        "--name",
        _word(name, "parameter"),
        "--value",
        _word(value, "value"),
    ]


def delete_target_argv(port: int, tid: int) -> list[str]:
    """`--force`: a target with an initiator logged in goes too (a delete must)."""
    return [*_base(port, "delete", "target"), "--tid", _tid(tid), "--force"]


def new_lun_argv(
    port: int, tid: int, backing: str, *, direct: bool = False
) -> list[str]:
    """The LUN backed by a file, through tgtd's read/write backing store.

    `direct`: tgtd opens the file with O_DIRECT (`--bsoflags direct`), so a LUN
    being filled does not first dirty the host's page cache and then flush it all
    at the initiator's SYNCHRONIZE CACHE: 1 GiB into a new LUN took 0.8-1.2 s
    instead of 1.2-2.6 s here (`bench/iscsi.py`). Only where the file system
    takes O_DIRECT (not tmpfs): `targets` probes it.
    """
    flags = ["--bsoflags", "direct"] if direct else []
    return [
        *_base(port, "new", "logicalunit"),
        "--tid",
        _tid(tid),
        "--lun",
        str(LUN),
        "-b",
        _word(backing, "backing file"),
        "--bstype",
        "rdwr",
        *flags,
    ]


def thin_argv(port: int, tid: int) -> list[str]:
    """Thin provisioning: an UNMAP or a WRITE SAME of zeros punches holes instead
    of writing zeros (1 GiB of zeros: 0.1 s instead of 15)."""
    return [
        *_base(port, "update", "logicalunit"),
        "--tid",
        _tid(tid),
        "--lun",
        str(LUN),
        "--params",
        "thin_provisioning=1",
    ]


def delete_lun_argv(port: int, tid: int) -> list[str]:
    return [*_base(port, "delete", "logicalunit"), "--tid", _tid(tid), "--lun", "1"]


def bind_all_argv(port: int, tid: int) -> list[str]:
    """Any initiator address may try: CHAP is what keeps the others out."""
    return [*_base(port, "bind", "target"), "--tid", _tid(tid), "-I", "ALL"]


def account_argv(port: int, user: str, password: str) -> list[str]:
    """A CHAP account; the password is the last word (see the module's rule)."""
    return [
        *_base(port, "new", "account"),
        "--user",
        _word(user, "user"),
        "--password",
        _word(password, "password"),
    ]


def delete_account_argv(port: int, user: str) -> list[str]:
    return [*_base(port, "delete", "account"), "--user", _word(user, "user")]


def bind_account_argv(port: int, tid: int, user: str) -> list[str]:
    """The account as the target's incoming CHAP user: no login without it."""
    return [
        *_base(port, "bind", "account"),
        "--tid",
        _tid(tid),
        "--user",
        _word(user, "user"),
    ]


@dataclass(frozen=True)
class Target:
    """One target as `--op show --mode target` prints it."""

    tid: int
    iqn: str
    luns: dict[int, str] = field(default_factory=dict)  # LUN -> backing store path
    accounts: tuple[str, ...] = ()
    acls: tuple[str, ...] = ()
    sessions: int = 0


def parse_targets(text: str) -> dict[str, Target]:
    """The targets of `show_argv`'s output, by IQN."""
    found: dict[str, Target] = {}
    tid: int | None = None
    iqn = ""
    luns: dict[int, str] = {}
    lists: dict[str, list[str]] = {}
    sessions = 0
    lun: int | None = None
    section = ""

    def close() -> None:
        if tid is not None:
            found[iqn] = Target(
                tid,
                iqn,
                dict(luns),
                tuple(lists.get("Account", ())),
                tuple(lists.get("ACL", ())),
                sessions,
            )

    for line in text.splitlines():
        if m := _TARGET.match(line):
            close()
            tid, iqn = int(m.group(1)), m.group(2)
            luns, lists, sessions, lun, section = {}, {}, 0, None, ""
        elif tid is None:
            continue
        elif m := _SECTION.match(line):
            section = m.group(1)
        elif section == "LUN" and (m := _LUN.match(line)):
            lun = int(m.group(1))
        elif section == "LUN" and lun is not None and (m := _PATH.match(line)):
            luns[lun] = m.group(1)
        elif section == "I_T nexus" and _NEXUS.match(line):
            sessions += 1
        elif section in ("Account", "ACL") and (m := _ITEM.match(line)):
            lists.setdefault(section, []).append(m.group(1))
    close()
    return found


def failure_line(argv: list[str], returncode: int, stderr: str, stdout: str) -> str:
    """`tgtadm --op new --mode target failed: this target already exists`: the op
    and mode from the argv (never its other words), tgtd's reason from tgtadm."""
    op = _after(argv, "--op")
    mode = _after(argv, "--mode")
    lines = [ln.strip() for ln in (stderr or stdout).splitlines() if ln.strip()]
    why = lines[-1].removeprefix("tgtadm: ") if lines else f"exit {returncode}"
    return f"tgtadm --op {op} --mode {mode} failed: {why}"


def _after(argv: list[str], flag: str) -> str:
    try:
        return argv[argv.index(flag) + 1]
    except (ValueError, IndexError):
        return "?"
