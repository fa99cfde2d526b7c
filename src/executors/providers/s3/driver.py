"""The object store drivers' table: each operation, and the method that does it.

One table for S3 and Swift (`object_driver`), each given how to open its store.
What a pool reads never comes from an object store directly: CloudStack stages it
through the zone's cache store (a directory), and so does storctl, so this table
holds only what the SSVM does against S3 or Swift (download a template, copy to
or from a directory store, delete an object) and a revert, which fetches the
backup first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from executors.providers.command_run import CommandRun
from executors.providers.driver import Handler, Operation, TableDriver
from executors.providers.s3.objects import Opener
from executors.providers.s3.transfers import Transfers
from ledger.commands import Answer, Command


def object_driver(name: str, opener: Opener) -> TableDriver:
    """The driver of an object store provider that opens its stores with `opener`."""

    def on(method: Callable[..., Answer]) -> Handler:
        def handle(run: CommandRun, command: Command, *objects: Any) -> Answer:
            return method(Transfers(run, opener), command, *objects)

        return handle

    return TableDriver(
        name=name,
        handlers={
            Operation.DOWNLOAD: on(Transfers.download),
            Operation.COPY_BETWEEN_IMAGE_STORES: on(Transfers.copy),
            Operation.DELETE: on(Transfers.delete),
            Operation.DELETE_SNAPSHOT: on(Transfers.delete),
            Operation.REVERT_SNAPSHOT: on(Transfers.revert_snapshot),
        },
    )
