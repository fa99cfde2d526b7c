"""A Ceph cluster in a dict, behind the `Runner` seam: what `rbd`, `ceph df` and
`qemu-img` answer, so the rbd driver's steps can be tested without the lab.

`FakeCeph.run` takes the argv the driver builds (the real builders) and answers
as the tools do on this machine (Ceph Pacific's exit codes and stderr lines,
measured on the lab), keeping every argv. `fail` makes the next matching call
fail with the given stderr, so every failure path can be walked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from executors.runner import Completed

ENOENT = "rbd: error opening image {name}: (2) No such file or directory\n"


@dataclass
class Img:
    size: int
    parent: tuple[str, str] | None = None  # (image, snapshot)
    snaps: dict[str, bool] = field(default_factory=dict)  # name -> protected


@dataclass
class FakeCeph:
    pool: str = "storctl"
    images: dict[str, Img] = field(default_factory=dict)
    calls: list[list[str]] = field(default_factory=list)
    failing: list[tuple[str, str, str]] = field(default_factory=list)
    #: virtual size of a file qemu-img converts into the cluster
    file_size: int = 64 << 20
    #: `ceph df` says MAX AVAIL 0
    full: bool = False

    def fail(self, tool: str, verb: str, stderr: str) -> None:
        self.failing.append((tool, verb, stderr))

    def run(self, argv, *, timeout, on_progress=None) -> Completed:
        self.calls.append(list(argv))
        tool = argv[0]
        words = words_of(argv)
        for i, (t, verb, stderr) in enumerate(self.failing):
            if t == tool and " ".join(words).startswith(verb):
                del self.failing[i]
                return Completed(1, "", stderr)
        if tool == "rbd":
            return self.rbd(words)
        if tool == "ceph":
            avail = 0 if self.full else 1 << 30
            stats = {"stored": 100, "bytes_used": 4096, "max_avail": avail}
            pools = [{"name": self.pool, "stats": stats}]
            return Completed(0, json.dumps({"pools": pools}), "")
        if tool == "qemu-img":
            return self.qemu(argv)
        raise AssertionError(f"unexpected tool {argv}")

    # ------------------------------------------------------------ rbd

    def rbd(self, words: list[str]) -> Completed:
        verb, args = words[0], words[1:]
        if verb == "snap":
            return self.snap(args[0], args[1:])
        specs = [a for a in args if a.startswith(f"{self.pool}/")]
        names = [s.split("/", 1)[1] for s in specs]
        if verb == "ls" and "-l" in args:
            return ok(json.dumps(self.long_listing()))
        if verb == "ls":
            return ok(json.dumps(sorted(self.images)))
        if verb == "info":
            img = self.images.get(names[0])
            if img is None:
                return Completed(2, "", ENOENT.format(name=names[0]))
            data: dict[str, object] = {"name": names[0], "id": f"id-{names[0]}",
                                       "size": img.size}  # fmt: skip
            if img.parent:
                data["parent"] = {"pool": self.pool, "image": img.parent[0],
                                  "snapshot": img.parent[1]}  # fmt: skip
            return ok(json.dumps(data))
        if verb == "create":
            if names[0] in self.images:
                return Completed(17, "", "rbd: create error: (17) File exists\n")
            self.images[names[0]] = Img(_size(args))
            return ok()
        if verb == "clone":
            parent, snap = names[0].split("@")
            if parent not in self.images or snap not in self.images[parent].snaps:
                return Completed(
                    2, "", "rbd: clone error: (2) No such file or directory\n"
                )
            self.images[names[1]] = Img(self.images[parent].size, (parent, snap))
            return ok()
        if verb == "resize":
            img = self.images[names[0]]
            size = _size(args)
            if size < img.size and "--allow-shrink" not in args:
                return Completed(22, "", "rbd: shrinking an image is only allowed "
                                 "with the --allow-shrink flag\n")  # fmt: skip
            img.size = size
            return ok()
        if verb == "mv":
            if names[1] in self.images:
                return Completed(17, "", "rbd: rename error: (17) File exists\n")
            self.images[names[1]] = self.images.pop(names[0])
            return ok()
        if verb == "rm":
            img = self.images.get(names[0])
            if img is None:
                return Completed(
                    2, "", "rbd: delete error: (2) No such file or directory\n"
                )
            if img.snaps:
                return Completed(39, "", "rbd: image has snapshots - these must be "
                                 "deleted with 'rbd snap purge'\n")  # fmt: skip
            del self.images[names[0]]
            return ok()
        if verb == "children":
            parent, snap = names[0].split("@")
            rows = [
                {"pool": self.pool, "pool_namespace": "", "image": n}
                for n, i in sorted(self.images.items())
                if i.parent == (parent, snap)
            ]
            return ok(json.dumps(rows))
        if verb == "du":
            return ok(json.dumps({"images": [{"used_size": 4 << 20}]}))
        raise AssertionError(f"unexpected rbd {words}")

    def snap(self, verb: str, args: list[str]) -> Completed:
        spec = next(a for a in args if a.startswith(f"{self.pool}/"))
        name, _, snap = spec.split("/", 1)[1].partition("@")
        img = self.images.get(name)
        if img is None:
            return Completed(2, "", ENOENT.format(name=name))
        if verb == "ls":
            rows = [
                {"name": n, "protected": str(p).lower()} for n, p in img.snaps.items()
            ]
            return ok(json.dumps(rows))
        if verb == "create":
            img.snaps[snap] = False
        elif verb == "protect":
            img.snaps[snap] = True
        elif verb == "unprotect":
            if any(i.parent == (name, snap) for i in self.images.values()):
                return Completed(16, "", "rbd: unprotecting snap failed: (16) "
                                 "Device or resource busy\n")  # fmt: skip
            img.snaps[snap] = False
        elif verb == "rm":
            if img.snaps.get(snap):
                return Completed(16, "", "rbd: snapshot is protected\n")
            img.snaps.pop(snap, None)
        elif verb == "rollback":
            if snap not in img.snaps:
                return Completed(2, "", "rbd: rollback failed: (2) No such file\n")
        else:
            raise AssertionError(f"unexpected rbd snap {verb}")
        return ok()

    # ------------------------------------------------------------ qemu-img

    def qemu(self, argv: list[str]) -> Completed:
        if argv[1] == "info":
            path = Path(argv[-1])
            if not path.exists():
                return Completed(1, "", f"qemu-img: Could not open '{path}'\n")
            return ok(json.dumps({"format": argv[argv.index("-f") + 1],
                                  "virtual-size": self.file_size}))  # fmt: skip
        if argv[1] == "resize":
            return ok()
        if argv[1] == "convert":
            source, dest = argv[-2], argv[-1]
            if source.startswith("rbd:"):
                name = source[4:].split(":")[0].split("/", 1)[1].split("@")[0]
                if name not in self.images:
                    return Completed(1, "", f"qemu-img: Could not open '{source}': "
                                     "error opening image\n")  # fmt: skip
            if dest.startswith("rbd:"):
                name = dest[4:].split(":")[0].split("/", 1)[1]
                if "-n" not in argv:
                    self.images[name] = Img(self.file_size)
            else:
                Path(dest).write_bytes(b"qcow2")
            return ok("    (100.00/100%)\r")
        raise AssertionError(f"unexpected qemu-img {argv}")

    def long_listing(self) -> list[dict[str, object]]:
        """`rbd ls -l --format json`: each image, then each of its snapshots
        (as Pacific prints them, the clone's parent on both)."""
        rows: list[dict[str, object]] = []
        for name, img in sorted(self.images.items()):
            row: dict[str, object] = {"image": name, "id": f"id-{name}",
                                      "size": img.size, "format": 2}  # fmt: skip
            if img.parent:
                row["parent"] = {"pool": self.pool, "pool_namespace": "",
                                 "image": img.parent[0],
                                 "snapshot": img.parent[1]}  # fmt: skip
            rows.append(row)
            for i, (snap, protected) in enumerate(sorted(img.snaps.items())):
                rows.append({**row, "snapshot": snap, "snapshot_id": i + 1,
                             "protected": str(protected).lower()})  # fmt: skip
        return rows


def ok(stdout: str = "") -> Completed:
    return Completed(0, stdout, "")


def words_of(argv: list[str]) -> list[str]:
    """The subcommand and its arguments, without the connection options."""
    out, skip = [], False
    for arg in argv[1:]:
        if skip:
            skip = False
        elif arg in ("-c", "--id", "--keyring", "-m", "--connect-timeout"):
            skip = True
        elif not arg.startswith(("--client_mount_timeout", "--rados_osd_op_timeout")):
            out.append(arg)
    return out


def _size(args: list[str]) -> int:
    return int(args[args.index("--size") + 1].removesuffix("B"))
