"""`storctl reconcile`'s file scan: a pool's directory against what the ledger claims.

The ledger side (which volume, template copy or snapshot claims which file, at which
size, over which backing file) is given as `Claim`s by the caller; this module only
looks at the disk, with `qemu-img info` run as an argv list (`executors.qemu`,
`SubprocessRunner`: never a shell). It changes nothing on the pool.

Findings:
- `orphan`: a file no claim names;
- `missing`: a settled claim (a Ready volume, a Ready template copy) whose file is gone;
- `size`: a volume whose virtual size (`qemu-img info`) is not the ledger's size;
- `backing`: a linked clone whose backing file is not its template's base copy on
  the same pool (or a file with a backing file where none is expected);
- `leftover`: a temporary `.<name>.part` of a staged write that is not in flight;
- `unreadable`: a claimed file `qemu-img info` cannot read.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from executors import qemu
from executors.runner import CommandTimedOut, Runner, SubprocessRunner

INFO_TIMEOUT = 60.0  # seconds for one `qemu-img info`
PROBLEMS = ("orphan", "missing", "size", "backing", "leftover", "unreadable")
COLUMNS = ["problem", "path", "kind", "objectid", "name", "expected", "found"]


@dataclass(frozen=True)
class Claim:
    """One file the ledger says is on the pool (`path` relative to the pool root)."""

    kind: str  # volume, template, snapshot
    object_id: str
    name: str
    path: str
    state: str
    settled: bool  # the file must be there and is checked; else in flight
    fmt: str = "QCOW2"
    size: int | None = None  # the expected virtual size (volumes)
    base: str | None = None  # the template's base copy on this pool (linked clones)
    check_backing: bool = False  # volumes: the backing file must be `base` (or none)


@dataclass(frozen=True)
class Finding:
    problem: str
    path: str
    kind: str | None = None
    object_id: str | None = None
    name: str | None = None
    expected: str | None = None
    found: str | None = None

    def row(self) -> dict[str, Any]:
        return {
            "problem": self.problem,
            "path": self.path,
            "kind": self.kind,
            "objectid": self.object_id,
            "name": self.name,
            "expected": self.expected,
            "found": self.found,
        }


def files_under(root: Path) -> list[str]:
    """Every non-directory entry under `root`, relative, without following links."""
    found: list[str] = []
    for directory, dirs, files in os.walk(root, followlinks=False):
        here = Path(directory)
        for name in files:
            found.append(str((here / name).relative_to(root)))
        for name in dirs:  # a symlink to a directory is listed, never entered
            if (here / name).is_symlink():
                found.append(str((here / name).relative_to(root)))
    return sorted(found)


def _temp_target(rel: str) -> str | None:
    """`a/.x.part` -> `a/x` (the final name a staged write was making), else None."""
    path = Path(rel)
    name = path.name
    if name.startswith(".") and name.endswith(".part") and len(name) > len(".part") + 1:
        return str(path.with_name(name[1 : -len(".part")]))
    return None


class Scanner:
    def __init__(self, runner: Runner | None = None) -> None:
        self.runner: Runner = runner if runner is not None else SubprocessRunner()

    def info(self, path: Path, fmt: str) -> qemu.ImageInfo:
        argv = qemu.info_argv(path, qemu.qemu_format(fmt))
        try:
            done = self.runner.run(argv, timeout=INFO_TIMEOUT)
        except CommandTimedOut as exc:
            raise ValueError(str(exc)) from exc
        if done.returncode != 0:
            lines = [x for x in done.stderr.splitlines() if x.strip()]
            raise ValueError(lines[-1] if lines else f"exit {done.returncode}")
        return qemu.parse_info(done.stdout)

    def scan(
        self, root: Path, claims: Iterable[Claim], in_flight: Iterable[str] = ()
    ) -> list[Finding]:
        """Compare the files under `root` with `claims`; `in_flight` names files
        (relative) an operation may be making right now (not orphans, not
        leftovers)."""
        if not root.is_dir():
            raise FileNotFoundError(f"pool directory {root} does not exist")
        base = root.resolve()
        by_path: dict[str, Claim] = {}
        for claim in claims:
            by_path.setdefault(os.path.normpath(claim.path), claim)
        busy = {os.path.normpath(p) for p in in_flight}
        busy |= {p for p, c in by_path.items() if not c.settled}
        present = files_under(base)
        findings: list[Finding] = []
        for rel in present:
            mine = by_path.get(rel)
            if mine is not None:
                if mine.settled:
                    findings += self.check(base, rel, mine)
                continue
            target = _temp_target(rel)
            if target is not None:
                if target not in busy:
                    owner = by_path.get(target)
                    findings.append(
                        Finding(
                            "leftover",
                            rel,
                            owner.kind if owner else None,
                            owner.object_id if owner else None,
                            owner.name if owner else None,
                            found="a staged write that never finished",
                        )
                    )
                continue
            if rel in busy:
                continue
            findings.append(Finding("orphan", rel, found=_describe(base / rel)))
        seen = set(present)
        for rel, claim in sorted(by_path.items()):
            if claim.settled and rel not in seen:
                findings.append(
                    Finding(
                        "missing",
                        rel,
                        claim.kind,
                        claim.object_id,
                        claim.name,
                        expected=f"{claim.state} {claim.kind}'s file",
                        found="no such file",
                    )
                )
        return findings

    def check(self, base: Path, rel: str, claim: Claim) -> list[Finding]:
        path = base / rel
        where = (claim.kind, claim.object_id, claim.name)
        if path.is_symlink() or not path.is_file():
            return [Finding("unreadable", rel, *where, "a regular file", "not one")]
        try:
            info = self.info(path, claim.fmt)
        except ValueError as exc:
            return [
                Finding("unreadable", rel, *where, f"a {claim.fmt} image", str(exc))
            ]
        out: list[Finding] = []
        if claim.size is not None and info.virtual_size != claim.size:
            out.append(
                Finding(
                    "size",
                    rel,
                    *where,
                    expected=str(claim.size),
                    found=str(info.virtual_size),
                )
            )
        if claim.check_backing and info.backing_file is not None:
            actual = (path.parent / info.backing_file).resolve()
            expected = (base / claim.base).resolve() if claim.base else None
            if actual != expected:
                out.append(
                    Finding(
                        "backing",
                        rel,
                        *where,
                        expected=str(expected) if expected else "no backing file",
                        found=info.backing_file,
                    )
                )
        return out


def _describe(path: Path) -> str:
    try:
        st = path.lstat()
    except OSError as exc:
        return exc.strerror or "unreadable"
    if stat.S_ISLNK(st.st_mode):
        return "a symbolic link"
    return f"{st.st_size} bytes"
