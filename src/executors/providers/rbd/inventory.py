"""An RBD pool's inventory: its images and snapshots, from one `rbd ls -l`.

`rbd ls -l --format json POOL` lists every image with its size and, for a clone,
its parent (`pool/image@snapshot`), and every snapshot of every image, in one
call (argv from `cluster.Cluster`, through the injected `Runner`, never a shell).
What the provider itself makes is folded in, not listed on its own:

- a template copy's protected `cloudstack-base-snap` belongs to its image (a
  template claimed without it is `incomplete`: no ROOT volume can be cloned);
- the guard snapshot a revert from a backup takes (`storctl-revert-guard`) is
  the revert's own, removed when it ends or by the next revert;
- a `<name>.part` image is a copy in progress (or a crashed one's leftover): it
  is listed as the temporary object of `<name>`, its snapshots with it.

Any other snapshot is listed as `image@snapshot`, which is how the ledger records
a native volume snapshot's path on primary. A listing that fails for a reason
that may pass (a monitor election, an image removed while being listed, a
timeout) is tried once more; then refused in Ceph's own words.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from executors.providers.inventory import Claim, Found, Inventory
from executors.providers.rbd.ceph import BASE_SNAP, PART
from executors.providers.rbd.cluster import cluster_for, failure_line
from executors.providers.rbd.location import parse
from executors.providers.rbd.snapshots import GUARD
from executors.runner import CommandTimedOut, Completed, Runner
from ledger.commands import PrimaryDataStoreTO
from ledger.errors import InvalidInput

#: seconds one listing may take (one round trip per image on a large pool)
LIST_WAIT = 300.0
#: what no retry changes: a refused key, a pool that is not there
_FINAL = ("(13) Permission denied", "error opening pool")


@dataclass
class RbdInventory(Inventory):
    """The images (by name) and snapshots (`image@snap`) of one Ceph pool."""

    pool: str = ""
    #: images that have a protected `cloudstack-base-snap`
    based: set[str] = field(default_factory=set)

    def expected_backing(self, base: str | None) -> str | None:
        return f"{self.pool}/{base}@{BASE_SNAP}" if base else None

    def inspect(self, item: Found, claim: Claim) -> Found:
        if claim.kind == "template" and item.path not in self.based:
            return item.but(lacks=(f"a protected snapshot {BASE_SNAP}",))
        return item


def parse_listing(pool: str, rows: Any) -> RbdInventory:
    """`rbd ls -l --format json`'s rows as an inventory (pure)."""
    if not isinstance(rows, list):
        raise ValueError("not a list")
    inventory = RbdInventory(noun="image", pool=pool)
    for row in rows:
        image = str(row["image"])
        size = int(row["size"])
        snap = row.get("snapshot")
        if snap is None:
            parent = _parent(row.get("parent"))
            what = f"an image of {size} bytes"
            inventory.add(
                Found(
                    image,
                    "image",
                    size=size,
                    backing=parent,
                    temp_of=image[: -len(PART)] if image.endswith(PART) else None,
                    description=f"{what}, a clone of {parent}" if parent else what,
                )
            )
        elif snap == BASE_SNAP:
            if str(row.get("protected")) == "true":
                inventory.based.add(image)
        elif snap != GUARD and not image.endswith(PART):
            path = f"{image}@{snap}"
            inventory.add(
                Found(
                    path,
                    "snapshot",
                    description=f"a snapshot of {image} ({size} bytes)",
                )
            )
    return inventory


def _parent(parent: Any) -> str | None:
    if not isinstance(parent, dict):
        return None
    pool = str(parent["pool"])
    if parent.get("pool_namespace"):
        pool = f"{pool}/{parent['pool_namespace']}"
    return f"{pool}/{parent['image']}@{parent['snapshot']}"


#: `rbd ls -l` on an image whose header is gone (a half-made or half-removed
#: image, e.g. an `rbd rm` cut by a stopped OSD): the whole listing fails
_UNOPENABLE = "error opening "


def _names(cluster: Any, pool: str, runner: Runner) -> list[str] | None:
    """`rbd ls --format json`: the pool's image names only (opens none)."""
    try:
        done = runner.run(
            cluster.rbd("ls", "--format", "json", pool), timeout=LIST_WAIT
        )
    except (CommandTimedOut, OSError):
        return None
    if done.returncode != 0:
        return None
    try:
        names = json.loads(done.stdout or "[]")
    except ValueError:
        return None
    return [str(n) for n in names] if isinstance(names, list) else None


def _one_by_one(
    cluster: Any, pool: str, names: list[str], runner: Runner
) -> RbdInventory:
    """The listing `ls -l` gives, built image by image (`rbd info`, `rbd snap
    ls`), so that one image rbd cannot open fails only itself: it is found (a
    claim on it is not `missing`, an unclaimed one is named), without a size."""
    rows: list[dict[str, Any]] = []
    broken: list[str] = []
    for name in names:
        spec = f"{pool}/{name}"
        info = _json(runner, cluster.rbd("info", "--format", "json", spec))
        snaps = _json(runner, cluster.rbd("snap", "ls", "--format", "json", spec))
        if not isinstance(info, dict) or not isinstance(snaps, list):
            broken.append(name)
            continue
        row: dict[str, Any] = {"image": name, "size": info["size"]}
        if isinstance(info.get("parent"), dict):
            row["parent"] = info["parent"]
        rows.append(row)
        rows += [
            {"image": name, "snapshot": snap["name"],
             "size": snap.get("size", info["size"]),
             "protected": snap.get("protected", "false")}
            for snap in snaps
        ]  # fmt: skip
    inventory = parse_listing(pool, rows)
    for name in broken:
        inventory.add(
            Found(
                name,
                "image",
                temp_of=name[: -len(PART)] if name.endswith(PART) else None,
                description="an image rbd cannot open (half made or half removed)",
            )
        )
    return inventory


def _json(runner: Runner, argv: list[str]) -> Any:
    try:
        done = runner.run(argv, timeout=LIST_WAIT)
        return json.loads(done.stdout) if done.returncode == 0 else None
    except (CommandTimedOut, OSError, ValueError):
        return None


def list_pool(
    store: PrimaryDataStoreTO, credentials: Mapping[str, Any], runner: Runner
) -> RbdInventory:
    """`Provider.inventory` of `rbd`: the pool's images and snapshots."""
    where = parse(store.path)
    with cluster_for(where, credentials, store.credentials or "of the pool") as c:
        argv = c.rbd("ls", "-l", "--format", "json", where.pool)
        why = ""
        for _ in range(2):  # once more on what may pass
            try:
                done: Completed = runner.run(argv, timeout=LIST_WAIT)
            except CommandTimedOut:
                why = f"no answer in {LIST_WAIT:g} s"
                continue
            except OSError as exc:
                raise InvalidInput(
                    "pool", store.name, f"cannot run rbd: {exc.strerror or exc}"
                ) from None
            if done.returncode != 0:
                why = failure_line(done.stderr)
                if any(final in done.stderr for final in _FINAL):
                    break
                if _UNOPENABLE in done.stderr:
                    names = _names(c, where.pool, runner)
                    if names is not None:
                        return _one_by_one(c, where.pool, names, runner)
                continue
            try:
                return parse_listing(where.pool, json.loads(done.stdout or "[]"))
            except (ValueError, KeyError, TypeError) as exc:
                why = f"unreadable listing ({exc})"
    raise InvalidInput("pool", store.name, f"cannot list its images: {why}")
