"""Answers for the CLI, read from the projected tables, with CLI.md's JSON names.

Each `list_*` reads one CloudStack table (`host`, `storage_pool` +
`storage_pool_tags`, `image_store`, `vm_template` + `template_store_ref`,
`vm_instance`, `volumes`, `snapshots`, `async_job`) and returns dicts whose keys are
exactly the CLI's (`zoneid`, `disksizetotal`, ...). Removed rows are left out of
lists. `find(reader, kind, ref)` takes an id, a unique id prefix or a name (names
of volumes and snapshots may repeat: `Ambiguous`); an id also finds a removed row.
`list_events` reads `event_journal` for `history` and `audit`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ledger.errors import Ambiguous, InvalidInput, NotFound
from ledger.values import is_id_prefix
from projections.reader import Reader

Row = dict[str, Any]
JOB_STATUS = {0: "pending", 1: "succeeded", 2: "failed"}


# ---------------------------------------------------------------- shapes


def _pool(row: Row) -> Row:
    return {
        "id": row["uuid"],
        "name": row["name"],
        "zoneid": row["data_center_id"],
        "clusterid": row["cluster_id"],
        "hostid": row["host_id"],
        "scope": row["scope"],
        "type": row["pool_type"],
        "path": row["path"],
        "state": row["status"],
        "disksizetotal": row["capacity_bytes"],
        "disksizeallocated": row["allocated_bytes"],
        "disksizeused": row["used_bytes"],
        "overprovisionfactor": row["overprovision_factor"],
        "tags": row["tags"],
    }


def _store(row: Row) -> Row:
    return {
        "id": row["uuid"],
        "name": row["name"],
        "zoneid": row["data_center_id"],
        "providername": row["image_provider_name"],
        "path": row["url"],
        "readonly": bool(row["readonly"]),
    }


def _host(row: Row) -> Row:
    return {
        "id": row["uuid"],
        "name": row["name"],
        "zoneid": row["data_center_id"],
        "clusterid": row["cluster_id"],
        "hypervisor": row["hypervisor_type"],
        "state": row["status"],
    }


def _template(row: Row) -> Row:
    return {
        "id": row["uuid"],
        "name": row["name"],
        "format": row["format"],
        "size": row["size"],
        "physicalsize": row["physical_size"],
        "state": row["state"],
        "isready": bool(row["isready"]),
        "checksum": row["checksum"],
        "zoneid": row["data_center_id"],
        "url": row["url"],
    }


def _vm(row: Row) -> Row:
    return {
        "id": row["uuid"],
        "name": row["name"],
        "zoneid": row["data_center_id"],
        "hostid": row["host_id"],
        "state": row["state"],
        "templateid": row["vm_template_id"],
    }


def _volume(row: Row) -> Row:
    return {
        "id": row["uuid"],
        "name": row["name"],
        "type": row["volume_type"],
        "size": row["size"],
        "state": row["state"],
        "storageid": row["pool_id"],
        "storage": row["pool_name"],
        "path": row["path"],
        "virtualmachineid": row["instance_id"],
        "deviceid": row["device_id"],
        "templateid": row["template_id"],
        "snapshotid": row["snapshot_id"],
        "zoneid": row["data_center_id"],
        "created": row["created"],
    }


def _snapshot(row: Row) -> Row:
    return {
        "id": row["uuid"],
        "name": row["name"],
        "volumeid": row["volume_id"],
        "state": row["status"],
        "snapshottype": row["snapshot_type"],
        "parentid": row["prev_snapshot_id"],
        "physicalsize": row["physical_size"],
        "locationtype": row["location_type"],
        "created": row["created"],
    }


def _job(row: Row) -> Row:
    status = JOB_STATUS.get(row["job_status"], "pending")
    error = None
    if status == "failed" and row["job_result"]:
        error = json.loads(row["job_result"]).get("errortext")
    finished = row["last_updated"] if status != "pending" else None
    return {
        "jobid": row["id"],
        "status": status,
        "cmd": row["job_cmd"],
        "objectid": row["instance_id"],
        "error": error,
        "created": row["created"],
        "finished": finished,
        "duration": _elapsed(row["created"], finished),
        "actor": row["actor"],
    }


def _elapsed(start: str | None, end: str | None) -> float | None:
    """Seconds from `start` to `end` (ISO 8601 UTC text), None while running."""
    if not start or not end:
        return None
    from datetime import datetime

    def parse(t: str) -> datetime:
        return datetime.fromisoformat(t.replace("Z", "+00:00"))

    return round((parse(end) - parse(start)).total_seconds(), 3)


def _event(row: Row) -> Row:
    return {
        "position": row["position"],
        "timestamp": row["timestamp"],
        "objecttype": row["object_type"],
        "objectid": row["object_id"],
        "event": row["event"],
        "fromstate": row["from_state"],
        "tostate": row["to_state"],
        "actor": row["actor"],
        "jobid": row["job_id"],
        "details": json.loads(row["details"]) if row["details"] else {},
    }


# ---------------------------------------------------------------- the kinds

_TEMPLATE_SQL = (
    "SELECT t.*, EXISTS (SELECT 1 FROM template_store_ref r WHERE r.template_id ="
    " t.uuid AND r.state = 'Ready') AS isready FROM vm_template t"
)
_VOLUME_SQL = (
    "SELECT v.*, p.name AS pool_name FROM volumes v"
    " LEFT JOIN storage_pool p ON p.uuid = v.pool_id"
)


class Kind:
    """How to read one kind of object: its table, its SELECT, its shape."""

    def __init__(
        self,
        name: str,
        table: str,
        shape: Callable[[Row], Row],
        *,
        select: str | None = None,
        alias: str | None = None,
        key: str = "uuid",
        named: bool = True,
        removable: bool = True,
    ) -> None:
        self.name, self.table, self.shape = name, table, shape
        self.select = select or f"SELECT * FROM {table}"
        self.alias = alias or table
        self.key, self.named, self.removable = key, named, removable

    def column(self, col: str) -> str:
        return f"{self.alias}.{col}"


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("host", "host", _host, removable=False),
        Kind("pool", "storage_pool", _pool),
        Kind("store", "image_store", _store, removable=False),
        Kind("template", "vm_template", _template, select=_TEMPLATE_SQL, alias="t"),
        Kind("vm", "vm_instance", _vm),
        Kind("volume", "volumes", _volume, select=_VOLUME_SQL, alias="v"),
        Kind("snapshot", "snapshots", _snapshot),
        Kind("job", "async_job", _job, key="id", named=False, removable=False),
    )
}
KINDS["imagestore"] = KINDS["store"]


def _kind(kind: str) -> Kind:
    try:
        return KINDS[kind.lower()]
    except KeyError:
        choices = ", ".join(sorted(KINDS))
        raise InvalidInput("kind", kind, f"expected one of {choices}") from None


def _rows(
    r: Reader, kind: Kind, where: list[str], params: list[Any], *, live: bool = True
) -> list[Row]:
    clauses = list(where)
    if live and kind.removable:
        clauses.append(f"{kind.column('removed')} IS NULL")
    sql = kind.select
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    sql += f" ORDER BY {kind.column('created')}, {kind.column(kind.key)}"
    return r.all(sql, params)


def _shape(r: Reader, kind: Kind, rows: list[Row]) -> list[Row]:
    if kind.name == "pool" and rows:
        tags: dict[str, list[str]] = {}
        for t in r.all("SELECT pool_id, tag FROM storage_pool_tags ORDER BY tag"):
            tags.setdefault(t["pool_id"], []).append(t["tag"])
        rows = [{**row, "tags": tags.get(row["uuid"], [])} for row in rows]
    return [kind.shape(row) for row in rows]


def find(r: Reader, kind: str, ref: str, *, or_gone: bool = False) -> Row:
    """One object by id (removed ones too), by name (live ones only), or by a
    unique id prefix of at least `MIN_PREFIX` characters (`job show 94f71b71`).
    A name wins over a prefix, a full id over both; several matches are refused,
    each named with its short id, so the operator can pick one. `or_gone`: a name
    no live object has finds the latest removed one (`why d1` after d1's refused
    create was expunged to free its name)."""
    k = _kind(kind)
    rows = _rows(r, k, [f"{k.column(k.key)} = ?"], [ref], live=False)
    if not rows and k.named:
        rows = _rows(r, k, [f"{k.column('name')} = ?"], [ref])
    if not rows and k.named and or_gone:
        rows = _rows(r, k, [f"{k.column('name')} = ?"], [ref], live=False)[-1:]
    if not rows and is_id_prefix(ref):
        like = [f"{k.column(k.key)} LIKE ?"]
        rows = _rows(r, k, like, [f"{ref.lower()}%"], live=False)
    if not rows:
        raise NotFound(k.name, ref)
    if len(rows) > 1:
        raise Ambiguous(
            k.name,
            ref,
            [str(row[k.key]) for row in rows],
            [row["name"] if k.named else None for row in rows],
        )
    return _shape(r, k, rows)[0]


def find_ids(r: Reader, kind: str, prefix: str) -> list[tuple[str, str | None]]:
    """(id, name) of every object of `kind` whose id starts with `prefix`: how
    the write side expands an abbreviated id (`ledger.ports.Candidates`)."""
    k = _kind(kind)
    if not is_id_prefix(prefix):
        return []
    rows = r.all(
        f"SELECT {k.key} AS id{', name' if k.named else ''} FROM {k.table}"
        f" WHERE {k.key} LIKE ? ORDER BY {k.key}",
        [f"{prefix.lower()}%"],
    )
    return [(str(row["id"]), row["name"] if k.named else None) for row in rows]


def _list(
    r: Reader, kind: str, where: list[str] | None = None, *params: Any
) -> list[Row]:
    k = KINDS[kind]
    return _shape(r, k, _rows(r, k, where or [], list(params)))


# ---------------------------------------------------------------- lists


def list_hosts(r: Reader) -> list[Row]:
    return _list(r, "host")


def list_pools(r: Reader, zone: str | None = None) -> list[Row]:
    if zone is None:
        return _list(r, "pool")
    return _list(r, "pool", ["storage_pool.data_center_id = ?"], zone)


def list_stores(r: Reader) -> list[Row]:
    return _list(r, "store")


def list_templates(r: Reader) -> list[Row]:
    return _list(r, "template")


def list_vms(r: Reader) -> list[Row]:
    return _list(r, "vm")


def list_volumes(
    r: Reader, state: str | None = None, pool: str | None = None, vm: str | None = None
) -> list[Row]:
    """Volumes, optionally by state (any case), pool and VM (id or name)."""
    where: list[str] = []
    params: list[Any] = []
    if state is not None:
        where.append("LOWER(v.state) = LOWER(?)")
        params.append(state)
    if pool is not None:
        where.append("v.pool_id = ?")
        params.append(find(r, "pool", pool)["id"])
    if vm is not None:
        where.append("v.instance_id = ?")
        params.append(find(r, "vm", vm)["id"])
    return _list(r, "volume", where, *params)


def list_snapshots(r: Reader, volume: str | None = None) -> list[Row]:
    if volume is None:
        return _list(r, "snapshot")
    volume_id = find(r, "volume", volume)["id"]
    return _list(r, "snapshot", ["snapshots.volume_id = ?"], volume_id)


def list_jobs(r: Reader) -> list[Row]:
    return _list(r, "job")


def list_events(
    r: Reader,
    *,
    object_id: str | None = None,
    job: str | None = None,
    event: str | None = None,
    actor: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> list[Row]:
    """Journal rows in log order, filtered (times compare as ISO 8601 UTC text)."""
    filters = (
        ("object_id = ?", object_id),
        ("job_id = ?", job),
        ("event = ?", event),
        ("timestamp >= ?", since),
        ("timestamp <= ?", until),
    )
    where = [clause for clause, value in filters if value is not None]
    params: list[Any] = [value for _, value in filters if value is not None]
    if actor is not None:
        # who appended, or the name it was appended on behalf of (`--actor`)
        where.append("(actor = ? OR details LIKE ?)")
        params += [actor, f'%"onbehalfof":{json.dumps(actor)}%']
    sql = "SELECT * FROM event_journal"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return [_event(row) for row in r.all(sql + " ORDER BY position", params)]


def names_by_id(r: Reader) -> dict[str, str]:
    """Every named object's name by its id, for tables that show another
    object (a volume's VM, a VM's host) by name rather than by UUID."""
    found: dict[str, str] = {}
    for kind in ("host", "pool", "store", "template", "vm", "volume", "snapshot"):
        k = KINDS[kind]
        for row in r.all(f"SELECT {k.key} AS id, name FROM {k.table}"):
            if row["name"] is not None:
                found[str(row["id"])] = str(row["name"])
    return found
