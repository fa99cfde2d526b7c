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
    ctx: Ctx,
    wait: int,
    copy: DataObjectInStore,
    template: Template,
    store: ImageStore,
    allowed: tuple[list[str], list[str]] = ([], []),
) -> None:
    """The SSVM's `DownloadCommand`: the template from its URL to an image store;
    `allowed` are the roots and internal sites it may read (`url_policy`)."""
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
            allowedRoots=list(allowed[0]),
            allowedInternalSites=list(allowed[1]),
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
    """Delete a template's copy in a store; nothing to send when it has no file.

    A download into an image store that failed has no file, but may have left
    what the store could not clean while it was down (an S3 multipart upload,
    its parts kept and billed): the delete is sent to where the template would
    have landed, and the store removes whatever is there."""
    path = copy.install_path
    if path is None and copy.error is not None and isinstance(store, ImageStoreTO):
        path = transfer.template_install_path(template)
    copy.request_destroy(
        ctx,
        DeleteCommand(
            commandId=transfer.command_id(ctx.causation_id, copy.id, "delete"),
            data=transfer.template_to(template, store, path),
            wait=wait,
        )
        if path
        else None,
    )


def template_from(
    ctx: Ctx,
    wait: int,
    copy: DataObjectInStore,
    template: Template,
    source: VolumeObjectTO | SnapshotObjectTO,
    target: ImageStore,
    cache: ImageStore | None = None,
) -> None:
    """`createTemplateFromVolume` / `createTemplateFromSnapshot` (to an S3 or
    Swift store through `cache`)."""
    copy.request_copy(
        ctx,
        CopyCommand(
            commandId=transfer.command_id(ctx.causation_id, copy.id, "template"),
            srcTO=source,
            destTO=transfer.template_to(template, transfer.image_to(target), None),
            wait=wait,
            cacheTO=transfer.image_to(cache) if cache else None,
        ),
    )


def stage_template(
    ctx: Ctx,
    wait: int,
    staged: DataObjectInStore,
    template: Template,
    source: tuple[ImageStore, DataObjectInStore],
    cache: ImageStore,
) -> None:
    """The template from an S3 or Swift store into the zone's staging cache, on
    its way to a pool (CloudStack's `StorageCacheManager.createCacheObject`)."""
    store, image_copy = source
    staged.request_copy(
        ctx,
        CopyCommand(
            commandId=transfer.command_id(ctx.causation_id, staged.id, "stage"),
            srcTO=transfer.template_to(
                template, transfer.image_to(store), image_copy.install_path
            ),
            destTO=transfer.template_to(template, transfer.image_to(cache), None),
            wait=wait,
        ),
    )


def evict_template(
    ctx: Ctx,
    wait: int,
    staged: DataObjectInStore,
    template: Template,
    cache: ImageStore,
) -> None:
    """A least recently used copy leaves the staging cache."""
    cache.evict(ctx, staged.id)
    delete_template_copy(ctx, wait, staged, template, transfer.image_to(cache))
