"""tgtd and qemu-img as the iscsi driver's runner sees them, in memory.

`FakeHost.run` answers `tgtadm` the way tgtd 1.0.85 does (its words, its exit
codes, its `--op show` layout) and `qemu-img` the way the driver's calls need:
`info` of a file or a LUN, `convert` into a LUN (a marker written into its backing
file) or out of one (a new file). A login to a LUN checks CHAP as tgtd would: the
user bound to the target, the secret file's password the account's. `fail` makes
any call fail with the words it returns; `down` makes tgtd's control port refuse.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from executors.runner import Completed

MiB = 1 << 20
DOWN = "tgtadm: failed to send request hdr to tgt daemon, Transport endpoint is not connected\n"  # noqa: E501


@dataclass
class FakeTarget:
    tid: int
    iqn: str
    luns: dict[int, str] = field(default_factory=dict)
    accounts: list[str] = field(default_factory=list)
    acls: list[str] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)
    thin: bool = False
    sessions: int = 0


@dataclass
class FakeHost:
    up: bool = True
    targets: dict[int, FakeTarget] = field(default_factory=dict)
    accounts: dict[str, str] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)  # virtual size by file
    fail: Callable[[list[str]], str | None] = lambda argv: None
    calls: list[list[str]] = field(default_factory=list)

    def run(
        self,
        argv: list[str],
        *,
        timeout: float,
        on_progress: Any = None,
        probe: Any = None,
    ) -> Completed:
        self.calls.append(list(argv))
        why = self.fail(argv)
        if why is not None:
            return Completed(22 if argv[0] == "tgtadm" else 1, "", why + "\n")
        if argv[0] == "tgtadm":
            if not self.up:
                return Completed(107, "", DOWN)
            return self._tgtadm(_flags(argv))
        return self._qemu(argv)

    def restart(self) -> None:
        """tgtd keeps nothing across a restart."""
        self.targets.clear()
        self.accounts.clear()

    def by_iqn(self, iqn: str) -> FakeTarget | None:
        return next((t for t in self.targets.values() if t.iqn == iqn), None)

    def tgtadm_calls(self, op: str, mode: str) -> list[list[str]]:
        return [c for c in self.calls if c[0] == "tgtadm" and _is(c, op, mode)]

    # ------------------------------------------------------------ tgtadm

    def _tgtadm(self, f: dict[str, str]) -> Completed:
        op, mode = f["--op"], f["--mode"]
        tid = int(f["--tid"]) if "--tid" in f else None
        target = self.targets.get(tid) if tid is not None else None
        if (op, mode) == ("show", "system"):
            return Completed(
                0, "System:\n    State: ready\nLLDs:\n    iscsi: ready\n", ""
            )
        if (op, mode) == ("show", "target"):
            return Completed(0, self._show(), "")
        if (op, mode) == ("new", "target"):
            assert tid is not None
            if target is not None or self.by_iqn(f["-T"]) is not None:
                return _no("this target already exists")
            self.targets[tid] = FakeTarget(tid, f["-T"])
            return _ok()
        if mode in ("target", "logicalunit") and target is None:
            return _no("can't find the target")
        assert target is not None or mode == "account"
        if (op, mode) == ("update", "target"):
            target.params[f["--name"]] = f["--value"]  # type: ignore[union-attr]
        elif (op, mode) == ("delete", "target"):
            if target.sessions and "--force" not in f:  # type: ignore[union-attr]
                return _no("this target is still active")
            del self.targets[tid]  # type: ignore[arg-type]
        elif (op, mode) == ("new", "logicalunit"):
            if int(f["--lun"]) in target.luns:  # type: ignore[union-attr]
                return _no("this logical unit number already exists")
            if not Path(f["-b"]).is_file():
                return _no("invalid request")
            target.luns[int(f["--lun"])] = f["-b"]  # type: ignore[union-attr]
        elif (op, mode) == ("update", "logicalunit"):
            target.thin = f["--params"] == "thin_provisioning=1"  # type: ignore[union-attr]
        elif (op, mode) == ("delete", "logicalunit"):
            target.luns.pop(int(f["--lun"]), None)  # type: ignore[union-attr]
        elif (op, mode) == ("bind", "target"):
            target.acls.append(f["-I"])  # type: ignore[union-attr]
        elif (op, mode) == ("new", "account"):
            if f["--user"] in self.accounts:
                return _no("this account already exists")
            self.accounts[f["--user"]] = f["--password"]
        elif (op, mode) == ("delete", "account"):
            if self.accounts.pop(f["--user"], None) is None:
                return _no("can't find the account")
            for t in self.targets.values():
                if f["--user"] in t.accounts:
                    t.accounts.remove(f["--user"])
        elif (op, mode) == ("bind", "account"):
            if f["--user"] not in self.accounts:
                return _no("can't find the account")
            target.accounts.append(f["--user"])  # type: ignore[union-attr]
        else:
            return _no("unknown parameter")
        return _ok()

    def _show(self) -> str:
        out = []
        for t in sorted(self.targets.values(), key=lambda t: t.tid):
            out += [f"Target {t.tid}: {t.iqn}", "    System information:",
                    "        Driver: iscsi", "    I_T nexus information:"]  # fmt: skip
            out += [f"        I_T nexus: {n}" for n in range(t.sessions)]
            out += ["    LUN information:", "        LUN: 0",
                    "            Backing store path: None"]  # fmt: skip
            for lun, path in sorted(t.luns.items()):
                out += [f"        LUN: {lun}", "            Type: disk",
                        f"            Backing store path: {path}"]  # fmt: skip
            out += ["    Account information:"]
            out += [f"        {a}" for a in t.accounts]
            out += ["    ACL information:"]
            out += [f"        {a}" for a in t.acls]
        return "\n".join(out) + "\n"

    # ------------------------------------------------------------ qemu-img

    def _qemu(self, argv: list[str]) -> Completed:
        assert argv[0] == "qemu-img", argv
        if argv[1] == "info":
            if "--image-opts" in argv:
                path, error = self._login(argv, argv[argv.index("--image-opts") + 1])
                if error:
                    return Completed(1, "", error)
                size = Path(path).stat().st_size
                return Completed(
                    0, json.dumps({"format": "raw", "virtual-size": size}), ""
                )
            path = argv[-1]
            if not Path(path).exists():
                return Completed(1, "", f"qemu-img: Could not open '{path}'\n")
            fmt = argv[argv.index("-f") + 1]
            size = self.sizes.get(path, 64 * MiB)
            return Completed(0, json.dumps({"format": fmt, "virtual-size": size}), "")
        assert argv[1] == "convert", argv
        if "--target-image-opts" in argv:
            opts = argv[argv.index("--target-image-opts") + 1]
            path, error = self._login(argv, opts)
            if error:
                return Completed(1, "", error)
            with open(path, "r+b") as lun:
                lun.write(b"filled")
            return Completed(0, "    (100.00/100%)\r", "")
        path, error = self._login(argv, argv[argv.index("--image-opts") + 1])
        if error:
            return Completed(1, "", error)
        Path(argv[-1]).write_bytes(b"QFI\xfb")
        self.sizes[argv[-1]] = Path(path).stat().st_size
        return Completed(0, "    (100.00/100%)\r", "")

    def _login(self, argv: list[str], opts: str) -> tuple[str, str]:
        """The LUN's backing file, or why tgtd refuses the login."""
        o = dict(kv.split("=", 1) for kv in opts.split(","))
        target = self.by_iqn(o["file.target"]) if self.up else None
        if target is None or 1 not in target.luns:
            return "", "qemu-img: iSCSI: Failed to connect to LUN\n"
        secret_id = o["file.password-secret"]
        objects = [argv[i + 1] for i, a in enumerate(argv) if a == "--object"]
        secret = next(o for o in objects if f"id={secret_id}," in o)
        password = Path(secret.split("file=", 1)[1]).read_text()
        user = o["file.user"]
        if user not in target.accounts or self.accounts.get(user) != password:
            return "", "qemu-img: iSCSI: Authentication failure(513)\n"
        return target.luns[1], ""


def _flags(argv: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for i, word in enumerate(argv):
        if word.startswith("-"):
            nxt = argv[i + 1] if i + 1 < len(argv) else ""
            out[word] = "" if nxt.startswith("-") else nxt
    return out


def _is(argv: list[str], op: str, mode: str) -> bool:
    f = _flags(argv)
    return (f.get("--op"), f.get("--mode")) == (op, mode)


def _ok() -> Completed:
    return Completed(0, "", "")


def _no(why: str) -> Completed:
    return Completed(22, "", f"tgtadm: {why}\n")
