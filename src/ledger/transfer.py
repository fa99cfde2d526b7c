"""Transfer objects built from aggregates: what a command says about pools and data.

CloudStack's `DataObject.getTO()`: each command carries the stores' roots and the
objects' paths (relative to their store) so an agent needs nothing but the command.
Command ids are derived from what caused the command, so running a workflow again over
the same events (replay verify) asks for the very same command.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from ledger.commands import (
    DiskTO,
    ImageStoreTO,
    PrimaryDataStoreTO,
    SnapshotObjectTO,
    TemplateObjectTO,
    VolumeObjectTO,
)
from ledger.image_store import ImageStore
from ledger.pool import StoragePool
from ledger.template import Template
from ledger.values import derived_id
from ledger.volume import Volume


def command_id(causation_id: str, object_id: UUID, step: str) -> str:
    return str(derived_id("command", causation_id, object_id, step))


def primary_to(pool: StoragePool) -> PrimaryDataStoreTO:
    return PrimaryDataStoreTO(
        uuid=str(pool.id),
        name=pool.name,
        poolType=pool.pool_type.value,
        path=pool.path,
        credentials=pool.credentials,
    )


def image_to(store: ImageStore) -> ImageStoreTO:
    return ImageStoreTO(
        uuid=str(store.id),
        name=store.name,
        uri=store.path,
        providerName=store.provider,
        role=store.role.value,
        credentials=store.credentials,
    )


def template_install_path(template: Template) -> str:
    """Where CloudStack's SSVM puts a template: template/tmpl/<id>/<id>.<ext>."""
    ext = template.format.value.lower()
    return f"template/tmpl/{template.id}/{template.id}.{ext}"


def template_to(
    template: Template, store: PrimaryDataStoreTO | ImageStoreTO, path: str | None
) -> TemplateObjectTO:
    return TemplateObjectTO(
        uuid=str(template.id),
        name=template.name,
        format=template.format.value,
        dataStore=store,
        path=path,
        size=template.size or None,
        physicalSize=template.physical_size or None,
        checksum=template.checksum,
        origUrl=template.url,
    )


def volume_to(
    volume: Volume, pool: StoragePool, vm_name: str | None = None
) -> VolumeObjectTO:
    return VolumeObjectTO(
        uuid=str(volume.id),
        name=volume.name,
        volumeType=volume.volume_type.value,
        size=volume.size,
        dataStore=primary_to(pool),
        path=volume.path or str(volume.id),
        vmName=vm_name,
        deviceId=volume.device_id,
    )


def snapshot_to(
    snapshot: Any,
    volume: Volume,
    pool: StoragePool,
    store: PrimaryDataStoreTO | ImageStoreTO,
    path: str | None = None,
    parent_path: str | None = None,
) -> SnapshotObjectTO:
    return SnapshotObjectTO(
        uuid=str(snapshot.id),
        name=snapshot.name,
        volume=volume_to(volume, pool),
        dataStore=store,
        path=path,
        parentSnapshotPath=parent_path,
    )


def disk_to(
    volume: Volume, pool: StoragePool, device_id: int | None, vm_name: str
) -> DiskTO:
    data = volume_to(volume, pool, vm_name)
    return DiskTO(
        data=data, diskSeq=device_id, path=data.path, type=volume.volume_type.value
    )
