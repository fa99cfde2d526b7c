"""The read side's tables, CloudStack-shaped, as DDL for SQLite and PostgreSQL.

One description (`TABLES`) gives both dialects the same table and column names:
`host`, `storage_pool` (+ `storage_pool_tags`), `image_store`, `vm_template`,
`template_store_ref`, `template_spool_ref`, `volumes`, `snapshots`,
`snapshot_store_ref`, `vm_instance`, `async_job`, `configuration` and the audit
journal `event_journal`. Keys are the ledger's uuids as text (the ledger has no
integer ids); times are ISO 8601 UTC text; JSON columns are text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Dialect = Literal["sqlite", "postgres"]

#: the name of the projections' tracking row (the position the tables reflect)
APPLICATION_NAME = "projections"

#: column type -> (SQLite, PostgreSQL)
_TYPES: dict[str, tuple[str, str]] = {
    "text": ("TEXT", "TEXT"),
    "int": ("INTEGER", "BIGINT"),
    "real": ("REAL", "DOUBLE PRECISION"),
}


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[tuple[str, str], ...]
    key: tuple[str, ...]
    indexes: tuple[tuple[str, ...], ...] = ()

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.columns)


def _t(
    name: str,
    columns: str,
    key: str,
    indexes: tuple[tuple[str, ...], ...] = (),
) -> Table:
    """`columns` is "name:type name:type ..." (type defaults to text)."""
    cols = []
    for spec in columns.split():
        col, _, kind = spec.partition(":")
        cols.append((col, kind or "text"))
    return Table(name, tuple(cols), tuple(key.split()), indexes)


TABLES: tuple[Table, ...] = (
    _t(
        "host",
        "id:int uuid name data_center_id cluster_id hypervisor_type status created",
        "uuid",
    ),
    _t(
        "storage_pool",
        "id:int uuid name pool_type scope data_center_id cluster_id host_id path"
        " capacity_bytes:int used_bytes:int allocated_bytes:int"
        " overprovision_factor:real overprovision_set:int status created removed",
        "uuid",
        (("data_center_id",),),
    ),
    _t("storage_pool_tags", "pool_id tag", "pool_id tag"),
    _t(
        "image_store",
        "id:int uuid name data_center_id protocol url image_provider_name role"
        " readonly:int created",
        "uuid",
    ),
    _t(
        "vm_template",
        "uuid name format url checksum size:int physical_size:int state"
        " data_center_id created removed",
        "uuid",
    ),
    _t(
        "template_store_ref",
        "id template_id store_id state download_state download_pct:int install_path"
        " size:int physical_size:int error_str created last_updated",
        "id",
        (("template_id",),),
    ),
    _t(
        "template_spool_ref",
        "id pool_id template_id install_path download_state state template_size:int"
        " error_str created last_updated",
        "id",
        (("template_id",), ("pool_id",)),
    ),
    _t(
        "volumes",
        "uuid name pool_id last_pool_id instance_id device_id:int volume_type size:int"
        " path template_id snapshot_id state format data_center_id created removed"
        " updated_count:int",
        "uuid",
        (("name",), ("pool_id",), ("instance_id",)),
    ),
    _t(
        "snapshots",
        "uuid name volume_id status snapshot_type prev_snapshot_id size:int"
        " physical_size:int location_type created removed",
        "uuid",
        (("volume_id",), ("name",)),
    ),
    _t(
        "snapshot_store_ref",
        "id snapshot_id store_id store_role install_path parent_snapshot_id state"
        " size:int physical_size:int volume_id error_str created last_updated",
        "id",
        (("snapshot_id",),),
    ),
    _t(
        "vm_instance",
        "uuid name data_center_id host_id state vm_template_id root_volume_id"
        " created removed",
        "uuid",
    ),
    _t(
        "async_job",
        "id job_cmd job_cmd_info job_status:int job_result instance_type instance_id"
        " created last_updated actor",
        "id",
        (("instance_id",),),
    ),
    _t("configuration", "name value updated actor", "name"),
    _t(
        "event_journal",
        "position:int timestamp object_type object_id event from_state to_state"
        " actor job_id causation_id details",
        "position",
        (("object_id",), ("job_id",), ("timestamp",)),
    ),
)

TABLE_NAMES: tuple[str, ...] = tuple(t.name for t in TABLES)
BY_NAME: dict[str, Table] = {t.name: t for t in TABLES}


def column_sql(table: Table, dialect: Dialect) -> str:
    """The parenthesised column list and primary key of `table`."""
    which = 0 if dialect == "sqlite" else 1
    cols = [f"{name} {_TYPES[kind][which]}" for name, kind in table.columns]
    cols.append(f"PRIMARY KEY ({', '.join(table.key)})")
    return "(" + ", ".join(cols) + ")"


def index_name(table: Table, columns: tuple[str, ...]) -> str:
    return f"{table.name}_{'_'.join(columns)}_idx"


#: the secondary indexes (not the primary keys), by name
INDEX_NAMES: tuple[str, ...] = tuple(
    index_name(table, cols) for table in TABLES for cols in table.indexes
)


def sqlite_ddl(*, tables: bool = True, indexes: bool = True) -> list[str]:
    """CREATE statements for SQLite (idempotent): the tables, their secondary
    indexes, or both (a rebuild creates the indexes after filling the tables)."""
    out: list[str] = []
    for table in TABLES:
        if tables:
            out.append(
                f"CREATE TABLE IF NOT EXISTS {table.name} {column_sql(table, 'sqlite')}"
            )
        for cols in table.indexes if indexes else ():
            out.append(
                f"CREATE INDEX IF NOT EXISTS {index_name(table, cols)} "
                f"ON {table.name} ({', '.join(cols)})"
            )
    return out


def postgres_ddl(*, tables: bool = True, indexes: bool = True) -> list[tuple[str, str]]:
    """(template, table) pairs for PostgreSQL; `{0}` in a template is the schema.

    The caller formats `{0}` with a quoted schema identifier, so the tables land in
    the Ledger's schema whatever the connection's search path.
    """
    out: list[tuple[str, str]] = []
    for table in TABLES:
        if tables:
            out.append(
                (
                    f"CREATE TABLE IF NOT EXISTS {{0}}.{table.name} "
                    f"{column_sql(table, 'postgres')}",
                    table.name,
                )
            )
        for cols in table.indexes if indexes else ():
            out.append(
                (
                    f"CREATE INDEX IF NOT EXISTS {index_name(table, cols)} "
                    f"ON {{0}}.{table.name} ({', '.join(cols)})",
                    table.name,
                )
            )
    return out
