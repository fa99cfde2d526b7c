"""`rbd`: a primary pool that is a Ceph RBD pool (CloudStack's KVM + RBD path).

CloudStack's `StoragePoolType.RBD` through the default primary provider: the KVM
agent opens the pool through libvirt's RBD backend with the cluster's monitors, a
cephx user and its secret. Here the pool is `rbd://USER@MON_HOST[:PORT]/POOL`
(`location`), its key is in the credentials it names, and `check` reaches the
cluster with them before anything is written: an unreachable monitor, a key Ceph
refuses or a missing pool is refused in one line of Ceph's own words.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from executors.credentials import resolve
from executors.providers.provider import Capabilities, Provider, Role
from executors.providers.rbd.cluster import cluster_for, failure_line
from executors.providers.rbd.driver import DRIVER
from executors.providers.rbd.inventory import list_pool
from executors.providers.rbd.location import SCHEME, parse, validate
from executors.providers.rbd.pools import POOL_TYPE
from executors.runner import CommandTimedOut, Completed, Runner, SubprocessRunner
from ledger.errors import InvalidInput

#: Seconds the check waits for the monitor (it runs before `pool add` answers).
CHECK_CONNECT = 5
CHECK_WAIT = 20.0


def check(
    location: str, credentials: Mapping[str, Any], runner: Runner | None = None
) -> None:
    """`rbd ls POOL` with the credentials: the monitor answers, accepts the key,
    and has the pool; else `InvalidInput` with Ceph's words (never the key)."""
    where = parse(location)
    short = {**credentials, "connect_timeout": CHECK_CONNECT}
    with cluster_for(where, short, "of the pool") as cluster:
        argv = cluster.rbd("ls", "--format", "json", where.pool)
        _ask(argv, location, runner)


def place(location: str, credentials: str | None, runner: Runner | None = None) -> str:
    """`Provider.place`: `rbd://FSID/POOL`, the cluster by its fsid (`ceph
    fsid`), so one Ceph pool reached as another user or through another monitor
    address (`:3300`, `:6789`, a host name) is one place; a second cluster on
    the same host (another port) is another."""
    where = parse(location)
    if credentials is None:
        raise InvalidInput("credentials", "", "an rbd pool needs --credentials NAME")
    short = {**resolve(credentials), "connect_timeout": CHECK_CONNECT}
    with cluster_for(where, short, credentials) as cluster:
        done = _ask(cluster.ceph("fsid", "--format", "json"), location, runner)
    try:
        fsid = str(uuid.UUID(json.loads(done.stdout)["fsid"]))
    except (ValueError, KeyError, TypeError):
        why = "Ceph named no cluster fsid (ceph fsid)"
        raise InvalidInput("location", location, why) from None
    return f"{SCHEME}://{fsid}/{where.pool}"


PROVIDER = Provider(
    name="rbd",
    roles=frozenset({Role.PRIMARY}),
    recorded_as=POOL_TYPE,
    schemes=(SCHEME,),
    validate=validate,
    capabilities=Capabilities(
        linked_clones=True,
        native_snapshots=True,
        needs_staging_cache=False,
        scopes=frozenset({"zone", "cluster"}),
    ),
    driver=DRIVER,
    summary="Primary pool on a Ceph RBD pool (CloudStack's RBD pool type).",
    credentials=True,
    check=check,
    inventory=list_pool,
    place=place,
)


def _ask(argv: list[str], location: str, runner: Runner | None) -> Completed:
    """One `rbd`/`ceph` call made before anything is written: its answer, or
    `InvalidInput` in Ceph's words (never the key)."""
    try:
        done = (runner or SubprocessRunner()).run(argv, timeout=CHECK_WAIT)
    except CommandTimedOut:
        mon = parse(location).mon_host
        why = f"no answer from the monitor {mon} in {CHECK_WAIT:g} s"
        raise InvalidInput("location", location, why) from None
    except OSError as exc:
        why = f"cannot run {argv[0]}: {exc}"
        raise InvalidInput("location", location, why) from exc
    if done.returncode != 0:
        why = f"Ceph refused: {failure_line(done.stderr)}"
        raise InvalidInput("location", location, why)
    return done
