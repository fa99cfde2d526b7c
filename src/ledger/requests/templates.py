"""Commands on templates: download to an image store, cache on a pool, delete a
copy, make one from a volume or a snapshot."""

from __future__ import annotations

from ledger import transfer
from ledger.aggregate import Ctx
from ledger.commands import (
    CopyCommand,
    DeleteCommand,
    DownloadCommand,
    ImageStoreTO,
    PrimaryDataStoreTO,
    SnapshotObjectTO,
    VolumeObjectTO,
)
from ledger.copies import DataObjectInStore
from ledger.image_store import ImageStore
from ledger.pool import StoragePool
from ledger.template import Template


def download_template(
    ctx: Ctx, wait: int, copy: DataObjectInStore, template: Template, store: ImageStore
) -> None:
    """The SSVM's `DownloadCommand`: the template from its URL to an image store."""
    copy.request_download(
        ctx,
        DownloadCommand(
            commandId=transfer.command_id(ctx.causation_id, copy.id, "download"),
            url=template.url,
            format=template.format.value,
            name=template.name,
            resourceType="TEMPLATE",
            installPath=transfer.template_install_path(template),
            store=transfer.image_to(store),
            checksum=template.checksum,
            wait=wait,
        ),
    )


def cache_template(
    ctx: Ctx,
    wait: int,
    copy: DataObjectInStore,
    template: Template,
    source: tuple[ImageStore, DataObjectInStore],
    pool: StoragePool,
) -> None:
    """`copyTemplateToPrimaryStorage`: the base image a pool's clones read."""
    store, image_copy = source
    copy.request_copy(
        ctx,
        CopyCommand(
            commandId=transfer.command_id(ctx.causation_id, copy.id, "copy"),
            srcTO=transfer.template_to(
                template, transfer.image_to(store), image_copy.install_path
            ),
            destTO=transfer.template_to(template, transfer.primary_to(pool), None),
            wait=wait,
        ),
    )


def delete_template_copy(
    ctx: Ctx,
    wait: int,
    copy: DataObjectInStore,
    template: Template,
    store: PrimaryDataStoreTO | ImageStoreTO,
) -> None:
    """Delete a template's copy in a store; nothing to send when it has no file."""
    copy.request_destroy(
        ctx,
        DeleteCommand(
            commandId=transfer.command_id(ctx.causation_id, copy.id, "delete"),
            data=transfer.template_to(template, store, copy.install_path),
            wait=wait,
        )
        if copy.install_path
        else None,
    )


def template_from(
    ctx: Ctx,
    wait: int,
    copy: DataObjectInStore,
    template: Template,
    source: VolumeObjectTO | SnapshotObjectTO,
    target: ImageStore,
) -> None:
    """`createTemplateFromVolume` / `createTemplateFromSnapshot`."""
    copy.request_copy(
        ctx,
        CopyCommand(
            commandId=transfer.command_id(ctx.causation_id, copy.id, "template"),
            srcTO=source,
            destTO=transfer.template_to(template, transfer.image_to(target), None),
            wait=wait,
        ),
    )
