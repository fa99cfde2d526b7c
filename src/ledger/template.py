"""The Template aggregate (`vm_template`): a disk image operators deploy VMs from.

A template registered from a URL is `Active` at once, as in CloudStack; whether it is
ready to use is the state of its copy on the image store (`template_store_ref`, see
`copies.py`). The upload states of CloudStack's Template machine are kept for
completeness (and checked against its table), but registration never enters them.
"""

from __future__ import annotations

from typing import Any

from ledger.aggregate import Ctx, StorctlAggregate
from ledger.errors import IllegalTransition
from ledger.fsm import TEMPLATE
from ledger.values import ImageFormat, TemplateState


class Template(StorctlAggregate):
    TOPIC = "storctl.Template"
    SPEC = TEMPLATE

    class Event(StorctlAggregate.Event):
        TOPIC = "storctl.Template.Event"

    class Registered(StorctlAggregate.Created, Event):
        TOPIC = "storctl.Template.Registered"
        name: str
        zone_id: str
        url: str
        format: ImageFormat
        checksum: str | None
        source_volume_id: str | None
        source_snapshot_id: str | None

    class SizeKnown(Event):
        """The download answer told the virtual and physical size."""

        TOPIC = "storctl.Template.SizeKnown"
        size: int
        physical_size: int

        def apply(self, aggregate: Any) -> None:
            aggregate.size = self.size
            aggregate.physical_size = self.physical_size

    class Deleted(Event):
        TOPIC = "storctl.Template.Deleted"

        def apply(self, aggregate: Any) -> None:
            aggregate.removed = True

    def __init__(
        self,
        *,
        name: str,
        zone_id: str,
        url: str,
        format: ImageFormat,
        checksum: str | None,
        source_volume_id: str | None = None,
        source_snapshot_id: str | None = None,
        actor: str,
        job_id: str,
        causation_id: str,
    ) -> None:
        self.name = name
        self.zone_id = zone_id
        self.url = url
        self.format = format
        self.checksum = checksum
        self.source_volume_id = source_volume_id
        self.source_snapshot_id = source_snapshot_id
        self.state = TemplateState.Active
        self.size = 0
        self.physical_size = 0
        self.removed = False

    @classmethod
    def register(cls, ctx: Ctx, **fields: Any) -> Template:
        fields.setdefault("source_volume_id", None)
        fields.setdefault("source_snapshot_id", None)
        return cls.create(cls.Registered, ctx, **fields)

    def record_size(self, ctx: Ctx, size: int, physical_size: int) -> None:
        self.emit(self.SizeKnown, ctx, size=size, physical_size=physical_size)

    def delete(self, ctx: Ctx) -> None:
        if self.removed:
            raise IllegalTransition(
                "Template", str(self.id), "Removed", "DeleteRequested"
            )
        self.emit(self.Deleted, ctx)
