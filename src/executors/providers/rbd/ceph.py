"""The image steps every RBD operation is built from, on one cluster.

Each step runs `rbd` (or `ceph`, or qemu-img's rbd driver) through the command's
`Runner` with what is left of its wait, reads `--format json`, and raises
`AgentFailure` with Ceph's own words when Ceph refuses. The idempotence rules of
the directory driver hold with RBD's means: an image made by copying is written
under a temporary name (`<name>.part`) and renamed (`rbd mv`) only once complete,
so an image at its final name is always a finished one; a repeat finds it and
answers success; a failure removes what it made.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from executors.providers.command_run import CommandRun
from executors.providers.driver import AgentFailure
from executors.providers.rbd.cluster import Cluster, convert_argv, failure_line
from executors.runner import CommandTimedOut, Completed

#: CloudStack's name for the snapshot its RBD templates are cloned from.
BASE_SNAP = "cloudstack-base-snap"
#: Seconds a clean-up after a failure may take, even past the command's wait:
#: a failure must leave no half-made image.
CLEANUP_WAIT = 60.0
PART = ".part"


@dataclass(frozen=True)
class Image:
    """What `rbd info` says about an image."""

    name: str
    id: str
    size: int
    #: (pool, image, snapshot) it was cloned from, if it is a clone
    parent: tuple[str, str, str] | None


@dataclass
class Ceph:
    """The steps, bound to one command's run and one pool's cluster."""

    run: CommandRun
    cluster: Cluster
    #: qemu's long rbd filenames (they name the keyring) -> how errors show them
    shown: dict[str, str] = field(default_factory=dict)

    # ------------------------------------------------------------ running

    def tool(
        self,
        argv: list[str],
        what: str,
        *,
        ok: tuple[int, ...] = (0,),
        progress: bool = False,
    ) -> Completed:
        """Run `argv`; a refusal raises `AgentFailure("<what> failed: <Ceph's
        words>")`, a timeout names `what`, never the argv (it names the keyring)."""
        remaining = self.run.remaining()
        if remaining <= 0:
            raise CommandTimedOut(what.split(), self.run.wait)
        callback = self.run.on_progress if progress else None
        try:
            done = self.run.runner.run(argv, timeout=remaining, on_progress=callback)
        except CommandTimedOut:
            raise CommandTimedOut(what.split(), self.run.wait) from None
        if done.returncode not in ok:
            why = f"{what} failed: {self.why(done.stderr)}"
            if _op_timed_out(done.stderr) and self._full():
                why = f"insufficient space: {why} (pool {self.cluster.pool} is full)"
            raise AgentFailure(why)
        return done

    def _full(self) -> bool:
        """Whether `ceph df` says the pool can take no more (MAX AVAIL 0); asked
        only to explain an operation that timed out."""
        argv = self.cluster.ceph("df", "--format", "json")
        try:
            done = self.run.runner.run(argv, timeout=30.0)
            rows = json.loads(done.stdout)["pools"]
            stats = next(r["stats"] for r in rows if r["name"] == self.cluster.pool)
            return int(stats["max_avail"]) == 0
        except (CommandTimedOut, OSError, ValueError, KeyError, TypeError):
            return False
        except StopIteration:
            return False

    def why(self, stderr: str) -> str:
        return failure_line(stderr, shown=self.shown)

    def rbd(self, what: str, *args: str, ok: tuple[int, ...] = (0,)) -> Completed:
        return self.tool(self.cluster.rbd(*args), f"rbd {what}", ok=ok)

    def rbd_json(self, what: str, *args: str) -> Any:
        done = self.rbd(what, *args, "--format", "json")
        try:
            return json.loads(done.stdout or "null")
        except json.JSONDecodeError as exc:
            raise AgentFailure(f"rbd {what}: output is not JSON: {exc.msg}") from exc

    def convert(
        self,
        source: str,
        src_fmt: str,
        dest: str,
        dest_fmt: str,
        *,
        existing: bool = False,
    ) -> None:
        """`qemu-img convert` between files and this cluster's images."""
        argv = convert_argv(source, src_fmt, dest, dest_fmt, existing=existing)
        self.tool(argv, "qemu-img convert", progress=True)

    def qemu(self, image: str, snapshot: str | None = None) -> str:
        """qemu's filename of an image; errors will show it short."""
        long = self.cluster.qemu(image, snapshot)
        self.shown[long] = self.cluster.shown(image, snapshot)
        return long

    # ------------------------------------------------------------ reading

    def info(self, image: str) -> Image | None:
        """The image, or None when there is none of that name."""
        done = self.rbd(
            "info", "info", "--format", "json", self.cluster.spec(image), ok=(0, 2)
        )
        if done.returncode == 2:
            if _no_image(done.stderr):
                return None
            raise AgentFailure(f"rbd info failed: {self.why(done.stderr)}")
        try:
            data = json.loads(done.stdout)
            parent = data.get("parent")
            return Image(
                name=str(data["name"]),
                id=str(data.get("id", "")),
                size=int(data["size"]),
                parent=(parent["pool"], parent["image"], parent["snapshot"])
                if isinstance(parent, dict)
                else None,
            )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise AgentFailure(
                f"rbd info of {image}: unreadable output ({exc})"
            ) from exc

    def existing(self, image: str) -> Image:
        found = self.info(image)
        if found is None:
            raise AgentFailure(f"image {self.cluster.spec(image)} not found")
        return found

    def snapshots(self, image: str) -> dict[str, bool]:
        """The image's snapshots and whether each is protected ({} if no image)."""
        done = self.rbd(
            "snap ls", "snap", "ls", "--format", "json", self.cluster.spec(image),
            ok=(0, 2),
        )  # fmt: skip
        if done.returncode == 2:
            if _no_image(done.stderr):
                return {}
            raise AgentFailure(f"rbd snap ls failed: {self.why(done.stderr)}")
        rows = json.loads(done.stdout or "[]")
        return {str(r["name"]): str(r.get("protected")) == "true" for r in rows}

    def children(self, image: str, snapshot: str) -> list[str]:
        """The clones of `image@snapshot`, as `pool/image`."""
        rows = self.rbd_json("children", "children", self.cluster.spec(image, snapshot))
        return [f"{r['pool']}/{r['image']}" for r in rows or []]

    def du(self, image: str) -> int:
        """Bytes the image's objects hold (`rbd du`, quick with fast-diff)."""
        data = self.rbd_json("du", "du", self.cluster.spec(image))
        images = data.get("images", []) if isinstance(data, dict) else []
        return sum(int(i.get("used_size", 0)) for i in images)

    # ------------------------------------------------------------ writing

    def create(self, image: str, size: int, *, thick: bool = False) -> None:
        args = ["create", "--size", f"{size}B", "--no-progress"]
        if thick:
            args.append("--thick-provision")
        self.rbd("create", *args, self.cluster.spec(image))

    def clone(self, parent: str, snapshot: str, image: str) -> None:
        self.rbd(
            "clone",
            "clone",
            self.cluster.spec(parent, snapshot),
            self.cluster.spec(image),
        )

    def resize(self, image: str, size: int, *, shrink: bool = False) -> None:
        args = ["resize", "--size", f"{size}B", "--no-progress"]
        if shrink:
            args.append("--allow-shrink")
        self.rbd("resize", *args, self.cluster.spec(image))

    def snap_create(self, image: str, snapshot: str) -> None:
        spec = self.cluster.spec(image, snapshot)
        self.rbd("snap create", "snap", "create", "--no-progress", spec)

    def protect(self, image: str, snapshot: str) -> None:
        self.rbd("snap protect", "snap", "protect", self.cluster.spec(image, snapshot))

    def rollback(self, image: str, snapshot: str) -> None:
        spec = self.cluster.spec(image, snapshot)
        self.rbd("snap rollback", "snap", "rollback", "--no-progress", spec)

    def snap_remove(self, image: str, snapshot: str, *, protected: bool) -> None:
        """Remove one snapshot, unprotecting it first (refused while it has clones)."""
        spec = self.cluster.spec(image, snapshot)
        if protected:
            self.rbd("snap unprotect", "snap", "unprotect", spec)
        self.rbd("snap rm", "snap", "rm", "--no-progress", spec)

    def rename(self, image: str, new: str) -> None:
        self.rbd("mv", "mv", self.cluster.spec(image), self.cluster.spec(new))

    def remove(self, image: str) -> None:
        """The image and its snapshots (purged first); already gone is done.
        A snapshot that still has clones stops it, in Ceph's words."""
        spec = self.cluster.spec(image)
        done = self.rbd("rm", "rm", "--no-progress", spec, ok=(0, 2, 16, 39))
        if done.returncode == 0 or (done.returncode == 2 and _no_image(done.stderr)):
            return
        if done.returncode in (16, 39):  # snapshots (39), or a watcher (16) on them
            for snapshot, protected in self.snapshots(image).items():
                self.snap_remove(image, snapshot, protected=protected)
            done = self.rbd("rm", "rm", "--no-progress", spec, ok=(0, 2))
            if done.returncode == 0 or _no_image(done.stderr):
                return
        raise AgentFailure(f"rbd rm failed: {self.why(done.stderr)}")

    def quietly(self, step: Callable[[], object]) -> bool:
        """`step` after a failure: with its own short wait, its own failure
        swallowed (the first failure is the one to answer with); whether it
        succeeded."""
        saved = self.run
        self.run = CommandRun(saved.runner, CLEANUP_WAIT, None)
        try:
            step()
        except (AgentFailure, CommandTimedOut, OSError):
            return False
        finally:
            self.run = saved
        return True

    def remove_quietly(self, image: str) -> None:
        self.quietly(lambda: self.remove(image))

    def write_image(
        self,
        image: str,
        fill: Callable[[str], None],
        *,
        size: int | None = None,
        base_snapshot: bool = False,
    ) -> Image:
        """A new image `image`, written by `fill(qemu filename)` under the name
        `<image>.part`, grown to `size`, given a protected `BASE_SNAP` if asked,
        then renamed into place. A failure removes the partial image."""
        temp = image + PART
        self.remove(temp)  # a crashed earlier run's leftover
        try:
            fill(self.qemu(temp))
            if size is not None and size > self.existing(temp).size:
                self.resize(temp, size)
            if base_snapshot:
                self.snap_create(temp, BASE_SNAP)
                self.protect(temp, BASE_SNAP)
            self.rename(temp, image)
        except BaseException:
            self.remove_quietly(temp)
            raise
        return self.existing(image)


def _op_timed_out(stderr: str) -> bool:
    """An operation gave up (ETIMEDOUT) once connected: Ceph held it, as it holds
    writes to a full pool."""
    return "Connection timed out" in stderr and "couldn't connect" not in stderr


def _no_image(stderr: str) -> bool:
    """`rbd` said the image is not there (not that the pool is missing)."""
    return "No such file or directory" in stderr and "error opening pool" not in stderr
