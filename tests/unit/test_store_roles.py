"""Pools and stores as providers describe them: credentials by name, capabilities
recorded, and CloudStack's staging cache kept apart from the image stores."""

from __future__ import annotations

import pytest

from ledger.aggregate import Ctx
from ledger.errors import InvalidInput
from ledger.image_store import ImageStore
from ledger.pool import StoragePool
from ledger.usecases import infrastructure, templates
from ledger.values import GiB, Hypervisor, ImageFormat, PoolType, Scope, StoreRole
from ledger.zone import Zone, zone_id_for


def ctx() -> Ctx:
    return Ctx.new("t")


def test_a_pool_records_its_credentials_by_name_and_its_capabilities(ledger):
    infrastructure.register_host(ledger, ctx(), "h", "z1", "c1", Hypervisor.KVM)
    pool = infrastructure.register_pool(
        ledger,
        ctx(),
        name="ceph",
        zone="z1",
        path="rbd://admin@127.0.0.1:3300/storctl",
        capacity=100 * GiB,
        scope=Scope.ZONE,
        pool_type=PoolType.RBD,
        credentials="lab-ceph",
        capabilities={"linked_clones": True, "native_snapshots": True},
    )
    loaded = ledger.load(StoragePool, pool.id)
    assert loaded.credentials == "lab-ceph"
    assert loaded.can("native_snapshots")
    assert loaded.path == "rbd://admin@127.0.0.1:3300/storctl"


def test_a_directory_pool_added_before_capabilities_clones_and_keeps_no_snapshots(
    ledger,
):
    infrastructure.register_host(ledger, ctx(), "h", "z1", "c1", Hypervisor.KVM)
    pool = infrastructure.register_pool(
        ledger, ctx(), name="p", zone="z1", path="/p", capacity=GiB,
        scope=Scope.ZONE, pool_type=PoolType.Filesystem,
    )  # fmt: skip
    assert pool.can("linked_clones")
    assert not pool.can("native_snapshots")


@pytest.mark.parametrize("reference", ["", "key=secret", "a/b", "two words"])
def test_a_credentials_reference_that_is_not_a_name_is_refused(ledger, reference):
    before = ledger.recorder.max_notification_id() or 0
    with pytest.raises(InvalidInput) as err:
        infrastructure.register_store(
            ledger, ctx(), "s", "z1", "/s", credentials=reference
        )
    assert reference not in str(err.value) or not reference
    assert (ledger.recorder.max_notification_id() or 0) == before


def test_a_cache_store_is_the_zones_cache_and_no_template_goes_there(ledger):
    infrastructure.register_host(ledger, ctx(), "h", "z1", "c1", Hypervisor.KVM)
    image = infrastructure.register_store(ledger, ctx(), "sec", "z1", "/sec")
    cache = infrastructure.register_store(
        ledger, ctx(), "stage", "z1", "/stage", role=StoreRole.ImageCache
    )
    zone = ledger.load(Zone, zone_id_for("z1"))
    assert zone.stores == [str(image.id)]
    assert zone.caches == [str(cache.id)]
    assert ledger.load(ImageStore, cache.id).role is StoreRole.ImageCache
    job = templates.register_template(
        ledger, ctx(), name="t", url="http://x.invalid/t.qcow2",
        fmt=ImageFormat.QCOW2, zone="z1",
    )  # fmt: skip
    requested = [
        e.command["store"]["uuid"]
        for e in ledger.recorder.select_notifications(start=None, limit=1000)
        if e.topic.endswith("DataObjectInStore.DownloadRequested")
        for e in [ledger.mapper.to_domain_event(e)]
    ]
    assert job.cmd == "template.register"
    assert requested == [str(image.id)]


def test_a_store_cannot_be_registered_as_primary(ledger):
    with pytest.raises(InvalidInput):
        infrastructure.register_store(
            ledger, ctx(), "s", "z1", "/s", role=StoreRole.Primary
        )


class TestCommandLine:
    """`pool add` and `store add` take a location as --path or --url, a role, and
    credentials by name; refusals write nothing."""

    @staticmethod
    def run(db_url, *args):
        from click.testing import CliRunner

        from cli.main import cli

        return CliRunner().invoke(cli, ["--db", db_url, "-o", "json", *args])

    def test_both_path_and_url_are_refused_with_nothing_written(self, db_url, tmp_path):
        result = self.run(
            db_url, "store", "add", "s", "--zone", "z1", "--path", str(tmp_path),
            "--url", "s3://bucket",
        )  # fmt: skip
        assert result.exit_code == 2
        assert "exactly one of --path DIR and --url URL" in result.stderr
        assert not (tmp_path / "ledger.db").exists() or db_url.startswith("postgres")

    def test_a_url_no_installed_provider_takes_is_refused(self, db_url):
        result = self.run(
            db_url, "store", "add", "s", "--zone", "z1",
            "--url", "swift://example.invalid/container",
        )  # fmt: skip
        assert result.exit_code == 2
        assert "swift://" in result.stderr

    def test_a_cache_store_and_a_pool_with_credentials_are_recorded(
        self, db_url, tmp_path, ledger
    ):
        (tmp_path / "stage").mkdir()
        (tmp_path / "p").mkdir()
        assert self.run(db_url, "host", "add", "h", "--zone", "z1",
                        "--cluster", "c1").exit_code == 0  # fmt: skip
        stage = self.run(
            db_url, "store", "add", "stage", "--zone", "z1", "--role", "cache",
            "--path", str(tmp_path / "stage"),
        )  # fmt: skip
        assert stage.exit_code == 0, stage.stderr
        pool = self.run(
            db_url, "pool", "add", "p", "--zone", "z1", "--cluster", "c1",
            "--path", str(tmp_path / "p"), "--capacity", "1G",
            "--credentials", "lab-dir",
        )  # fmt: skip
        assert pool.exit_code == 0, pool.stderr
        zone = ledger.load(Zone, zone_id_for("z1"))
        assert len(zone.caches) == 1
        assert zone.stores == []
        recorded = ledger.resolve(StoragePool, "p")
        assert recorded.credentials == "lab-dir"
        assert recorded.capabilities["linked_clones"] is True
