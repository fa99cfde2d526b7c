"""The `iscsi` provider's description (the package's docstring says what it is)."""

from __future__ import annotations

from executors.providers.iscsi.driver import DRIVER
from executors.providers.iscsi.inventory import list_pool
from executors.providers.iscsi.location import check, validate
from executors.providers.iscsi.volumes import RECORDED_AS
from executors.providers.provider import Capabilities, Provider, Role, never_shared

PROVIDER = Provider(
    name="iscsi",
    roles=frozenset({Role.PRIMARY}),
    recorded_as=RECORDED_AS,
    schemes=("iscsi",),
    validate=validate,
    capabilities=Capabilities(
        linked_clones=False,
        native_snapshots=False,
        needs_staging_cache=False,
        scopes=frozenset({"zone", "cluster"}),
    ),
    driver=DRIVER,
    summary="Managed primary pool: a LUN, target and CHAP secret per volume on tgtd "
    "(CloudStack's managed storage, as SolidFire does it).",
    credentials=True,
    check=check,
    inventory=list_pool,
    # every pool keeps its LUN files in its own folder `<lun_dir>/<pool uuid>/`
    # and names its targets `...:<pool uuid>.<volume uuid>` (`layout`): two pools
    # on one portal and one lun_dir share no object
    place=never_shared,
)
