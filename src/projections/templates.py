"""Templates and copies of data objects: `vm_template`, `template_store_ref`,
`template_spool_ref` and `snapshot_store_ref`.

A `DataObjectInStore` (CloudStack's ObjectInDataStore) lands in one ref table,
chosen by its `Allocated` event: a TEMPLATE copy on an image store (role Image) in
`template_store_ref`, on a primary pool in `template_spool_ref`, a SNAPSHOT copy in
`snapshot_store_ref`. Later events find the row by the copy's uuid (`id`).
`download_state` is CloudStack's `VMTemplateStorageResourceAssoc.Status`:
NOT_DOWNLOADED, DOWNLOAD_IN_PROGRESS while a copy request is pending, then
DOWNLOADED or DOWNLOAD_ERROR from the answer.
"""

from __future__ import annotations

from typing import Any

from ledger.aggregate import Answered, Requested
from ledger.copies import DataObjectInStore
from ledger.template import Template
from ledger.values import DataObjectType, StoreRole, TemplateState
from projections.db import Db, iso, redact, text
from projections.routing import on_steps, project

REF_TABLES = ("template_store_ref", "template_spool_ref", "snapshot_store_ref")

NOT_DOWNLOADED = "NOT_DOWNLOADED"
DOWNLOAD_IN_PROGRESS = "DOWNLOAD_IN_PROGRESS"
DOWNLOADED = "DOWNLOADED"
DOWNLOAD_ERROR = "DOWNLOAD_ERROR"

#: the requests that put bytes into the store (the others destroy or hide)
_FILLING = (
    DataObjectInStore.DownloadRequested,
    DataObjectInStore.CopyRequested,
    DataObjectInStore.CreateRequested,
)


# ---------------------------------------------------------------- vm_template


@project.register
def _template_registered(event: Template.Registered, db: Db) -> None:
    db.insert(
        "vm_template",
        {
            "uuid": str(event.originator_id),
            "name": event.name,
            "format": text(event.format),
            "url": redact(event.url),
            "checksum": event.checksum,
            "size": 0,
            "physical_size": 0,
            "state": TemplateState.Active.value,
            "data_center_id": event.zone_id,
            "created": iso(event.timestamp),
            "removed": None,
        },
        key="uuid",
    )


@project.register
def _template_size(event: Template.SizeKnown, db: Db) -> None:
    db.update(
        "vm_template",
        "uuid",
        str(event.originator_id),
        size=event.size,
        physical_size=event.physical_size,
    )


@project.register
def _template_deleted(event: Template.Deleted, db: Db) -> None:
    db.update(
        "vm_template", "uuid", str(event.originator_id), removed=iso(event.timestamp)
    )


# ---------------------------------------------------------------- copies


def ref_table(object_type: DataObjectType, role: StoreRole) -> str | None:
    if object_type is DataObjectType.TEMPLATE:
        image = role in (StoreRole.Image, StoreRole.ImageCache)
        return "template_store_ref" if image else "template_spool_ref"
    if object_type is DataObjectType.SNAPSHOT:
        return "snapshot_store_ref"
    return None  # volumes on image stores: journal only


def table_of(db: Db, copy_id: str) -> str | None:
    """Which ref table holds the copy `copy_id`, asked of the tables themselves."""
    if copy_id not in db.copies:
        db.copies[copy_id] = None
        for table in REF_TABLES:
            if db.one(f"SELECT 1 AS found FROM {table} WHERE id = ?", [copy_id]):
                db.copies[copy_id] = table
                break
    return db.copies[copy_id]


@project.register
def _copy_allocated(event: DataObjectInStore.Allocated, db: Db) -> None:
    copy_id = str(event.originator_id)
    table = ref_table(event.object_type, event.store_role)
    db.copies[copy_id] = table
    now = iso(event.timestamp)
    common: dict[str, Any] = {
        "id": copy_id,
        "state": "Allocated",
        "created": now,
        "last_updated": now,
    }
    if table == "template_store_ref":
        row = {
            **common,
            "template_id": str(event.object_id),
            "store_id": str(event.store_id),
            "download_state": NOT_DOWNLOADED,
            "download_pct": 0,
        }
    elif table == "template_spool_ref":
        row = {
            **common,
            "template_id": str(event.object_id),
            "pool_id": str(event.store_id),
            "download_state": NOT_DOWNLOADED,
        }
    elif table == "snapshot_store_ref":
        volume_id = db.scalar(
            "SELECT volume_id FROM snapshots WHERE uuid = ?", [str(event.object_id)]
        )
        row = {
            **common,
            "snapshot_id": str(event.object_id),
            "store_id": str(event.store_id),
            "store_role": text(event.store_role),
            "parent_snapshot_id": text(event.parent_id),
            "volume_id": volume_id,
        }
    else:
        return
    db.insert(table, row, key="id")


@on_steps("DataObjectInStore")
def _copy_step(event: Requested | Answered, db: Db) -> None:
    copy_id = str(event.originator_id)
    table = table_of(db, copy_id)
    if table is None:
        return
    values: dict[str, Any] = {
        "state": text(event.to_state),
        "last_updated": iso(event.timestamp),
    }
    downloads = table != "snapshot_store_ref"
    if isinstance(event, _FILLING):
        if downloads:
            values["download_state"] = DOWNLOAD_IN_PROGRESS
        if table == "template_store_ref":
            values["download_pct"] = 0
    elif isinstance(event, DataObjectInStore.CopyAnswered):
        values.update(_copy_answer(event, table))
    db.update(table, "id", copy_id, **values)


def _copy_answer(event: DataObjectInStore.CopyAnswered, table: str) -> dict[str, Any]:
    answer = event.answer
    if not answer.get("result"):
        error = {"error_str": answer.get("details") or "failed"}
        if table == "snapshot_store_ref":
            return error
        return {**error, "download_state": DOWNLOAD_ERROR}
    if table == "template_spool_ref":
        size = event.physical_size if event.physical_size is not None else event.size
        return {
            "install_path": event.install_path,
            "template_size": size,
            "download_state": DOWNLOADED,
            "error_str": None,
        }
    values: dict[str, Any] = {
        "install_path": event.install_path,
        "size": event.size,
        "physical_size": event.physical_size,
        "error_str": None,
    }
    if table == "template_store_ref":
        values["download_state"] = DOWNLOADED
        values["download_pct"] = 100
    return values
