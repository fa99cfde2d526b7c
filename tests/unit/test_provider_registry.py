"""Providers found through entry points, and the KVM agent's routing by provider.

A third party's provider is a module plus an entry point in the group
`storctl.providers`: here both are written under `tmp_path` (a `.dist-info`
directory is all `importlib.metadata` needs) and put on `sys.path`, so the test
installs a plug-in the way `pip install` would, without the network.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from executors.agents.kvm import ROUTES, KvmAgent, route
from executors.providers import registry
from executors.providers.driver import Operation, TableDriver
from executors.providers.provider import Capabilities, Provider, Role
from executors.runner import Completed, RecordedRunner
from ledger.commands import (
    Answer,
    CopyCommand,
    CreateObjectCommand,
    ImageStoreTO,
    PrimaryDataStoreTO,
    SnapshotObjectTO,
    TemplateObjectTO,
    VolumeObjectTO,
)
from tests.unit.test_cli_infra import event_count, run

PLUGIN = """
from executors.providers.driver import TableDriver
from executors.providers.locations import scheme_of
from executors.providers.provider import Capabilities, Provider, Role
from ledger.errors import InvalidInput


def validate(location):
    if "?" in location:
        raise InvalidInput("location", location, "a query string is not accepted")
    return location.rstrip("/")


PROVIDER = Provider(
    name="{name}",
    roles=frozenset({{Role.IMAGE}}),
    recorded_as="{recorded}",
    schemes=("objects",),
    validate=validate,
    capabilities=Capabilities(False, False, True, frozenset({{"zone"}})),
    driver=TableDriver("objects", {{}}),
    summary="A third party's object store.",
)
"""


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on `sys.path` where `install` puts distributions; the registry
    reloads before and after, so nothing leaks into other tests."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    registry.installed.cache_clear()
    before = set(sys.modules)
    yield site
    for name in set(sys.modules) - before:
        if name.startswith("storctl_plugin_"):
            del sys.modules[name]
    registry.installed.cache_clear()


def install(site: Path, dist: str, entry_points: dict[str, str], code: str) -> None:
    module = f"storctl_plugin_{dist}"
    (site / f"{module}.py").write_text(code)
    info = site / f"storctl_plugin_{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: storctl-plugin-{dist}\nVersion: 1.0\n"
    )
    lines = [f"{name} = {module}:{attr}" for name, attr in entry_points.items()]
    (info / "entry_points.txt").write_text(
        "[storctl.providers]\n" + "\n".join(lines) + "\n"
    )


def test_a_third_party_provider_is_listed_and_takes_its_own_urls(plugins, tmp_path):
    install(plugins, "objects", {"objects": "PROVIDER"},
            PLUGIN.format(name="objects", recorded="OBJECTS"))  # fmt: skip
    db = str(tmp_path / "ledger.db")
    listed = {row["name"]: row for row in run(db, "provider", "list")}
    assert listed["objects"]["roles"] == ["image"]
    assert listed["objects"]["stagingcache"] is True
    assert "storctl-plugin-objects 1.0" in listed["objects"]["entrypoint"]
    assert {"filesystem", "nfs", "simulator"} <= set(listed)

    run(db, "host", "add", "kvm-01", "--zone", "z1", "--cluster", "c1")
    refused = run(db, "store", "add", "s", "--zone", "z1",
                  "--path", "objects://bucket/t", code=2)  # fmt: skip
    taker = "provider nfs does not take objects:// locations; objects does"
    assert taker in refused.stderr
    store = run(db, "store", "add", "s", "--zone", "z1", "--provider", "objects",
                "--path", "objects://bucket/t/")  # fmt: skip
    assert (store["providername"], store["path"]) == ("OBJECTS", "objects://bucket/t")


def test_a_broken_entry_point_is_reported_not_a_crash(plugins, tmp_path):
    install(
        plugins,
        "broken",
        {"sheepdog": "PROVIDER"},
        "raise ImportError('no libsheepdog')\n",
    )
    install(plugins, "impostor", {"nfs": "PROVIDER"},
            PLUGIN.format(name="nfs", recorded="NFS2"))  # fmt: skip
    install(plugins, "wrong", {"wrong": "VERSION"}, "VERSION = '1.0'\n")
    db = str(tmp_path / "ledger.db")
    rows = run(db, "provider", "list")
    errors = {(row["name"], row["error"]) for row in rows}
    assert ("sheepdog", "ImportError: no libsheepdog") in errors
    assert ("nfs", None) in errors  # the built-in one keeps its name
    assert ("nfs", "provider name nfs is taken") in errors
    assert any("not a storctl Provider" in (e or "") for n, e in errors if n == "wrong")
    assert (
        run(db, "provider", "show", "sheepdog")["error"]
        == "ImportError: no libsheepdog"
    )

    run(db, "host", "add", "kvm-01", "--zone", "z1", "--cluster", "c1")
    (tmp_path / "gold").mkdir()
    before = event_count(db)
    refused = run(db, "pool", "add", "p", "--zone", "z1", "--cluster", "c1",
                  "--capacity", "1G", "--type", "sheepdog", "--path", "/x",
                  code=2)  # fmt: skip
    broken = "provider sheepdog is installed but broken: ImportError: no libsheepdog"
    assert broken in refused.stderr
    assert event_count(db) == before
    pool = run(db, "pool", "add", "p", "--zone", "z1", "--cluster", "c1",
               "--capacity", "1G", "--path", str(tmp_path / "gold"))  # fmt: skip
    assert pool["type"] == "Filesystem"


def test_a_provider_listed_twice_under_one_recorded_name_is_refused():
    first = _provider("one", "SAME")
    second = _provider("two", "same")

    class EntryPoint:
        def __init__(self, name, value):
            self.name, self.value, self.dist = name, f"m:{name}", None
            self._value = value

        def load(self):
            return self._value

    loaded = registry.load([EntryPoint("one", first), EntryPoint("two", second)])
    assert list(loaded.providers) == ["one"]
    assert "as provider one does" in loaded.broken[0].error


# ------------------------------------------------------------ routing by provider


def _provider(name: str, recorded: str, handlers=None, roles=(Role.PRIMARY,)):
    return Provider(
        name=name,
        roles=frozenset(roles),
        recorded_as=recorded,
        schemes=("file",),
        validate=str,
        capabilities=Capabilities(True, True, False, frozenset({"zone"})),
        driver=TableDriver(name, handlers or {}),
        summary=f"{name} for tests.",
    )


def pool_of(kind: str) -> PrimaryDataStoreTO:
    return PrimaryDataStoreTO(f"{kind}-id", kind, kind, "/nowhere")


def test_every_operation_has_a_route_and_every_route_one_operation():
    assert {row.operation for row in ROUTES} == set(Operation)
    template = TemplateObjectTO("t", "t", "QCOW2", ImageStoreTO("s", "s", "/s"))
    between = route(CopyCommand("c", template, template))
    assert between is not None
    assert between.operation is Operation.COPY_BETWEEN_IMAGE_STORES
    on_pool = template.replace(dataStore=pool_of("Filesystem"))
    assert route(CopyCommand("c", on_pool, on_pool)) is None


def test_the_agent_hands_the_command_to_its_providers_driver():
    seen = []

    def create(run, command, data):
        seen.append((run.wait, data.uuid))
        return Answer(command.commandId, result=True, details="made by rados")

    providers = registry.Registry(
        {"rados": _provider("rados", "RBD", {Operation.CREATE_VOLUME: create})}
    )
    volume = VolumeObjectTO("v-1", "v", "DATADISK", 1 << 20, pool_of("RBD"))
    command = CreateObjectCommand("c", volume, wait=9)
    answer = KvmAgent(_no_tools(), providers).handle(command)
    assert (answer.result, answer.details) == (True, "made by rados")
    assert seen == [(9.0, "v-1")]


@pytest.mark.parametrize(
    ("command", "says"),
    [
        (
            CreateObjectCommand(
                "c", VolumeObjectTO("v", "v", "DATADISK", 1, pool_of("Ceph"))
            ),
            "unknown provider 'Ceph' of store Ceph (installed primary providers: "
            "rados, zfs)",
        ),
        (
            CopyCommand(
                "c",
                VolumeObjectTO("v", "v", "DATADISK", 1, pool_of("RBD"), path="v"),
                VolumeObjectTO("w", "w", "DATADISK", 1, pool_of("ZFS")),
            ),
            "providers rados, zfs have different drivers",
        ),
        (
            CreateObjectCommand(
                "c", VolumeObjectTO("v", "v", "DATADISK", 1, pool_of("RBD"))
            ),
            "unsupported command CreateObjectCommand for VOLUME on Primary: "
            "provider rados does not do createVolume",
        ),
        (
            CreateObjectCommand("c", VolumeObjectTO("v", "v", "DATADISK", 1, None)),
            "names no data store",
        ),
    ],
)
def test_an_unknown_provider_or_operation_is_a_one_line_failed_answer(command, says):
    providers = registry.Registry(
        {"rados": _provider("rados", "RBD"), "zfs": _provider("zfs", "ZFS")}
    )
    answer = KvmAgent(_no_tools(), providers).handle(command)
    assert answer.result is False
    assert says in answer.details
    assert "\n" not in answer.details
    assert answer.commandId == "c"


def _no_tools() -> RecordedRunner:
    def refuse(argv: list[str]) -> Completed:
        raise AssertionError(f"ran {argv}")

    return RecordedRunner(refuse)


# ------------------------------------------------------------ two drivers, one command


def _answering(name: str):
    def handle(run, command, *objects):
        return Answer(command.commandId, result=True, details=f"done by {name}")

    return dict.fromkeys(Operation, handle)


def _mixed_registry() -> registry.Registry:
    """`dir` and `nas` share the driver named "directory"; `rados` and `zfs`
    have drivers of their own."""
    directory = TableDriver("directory", _answering("directory"))
    nas = _provider("nas", "NFS", roles=(Role.IMAGE,))
    return registry.Registry(
        {
            "dir": replace(_provider("dir", "Filesystem"), driver=directory),
            "nas": replace(nas, driver=directory),
            "rados": _provider("rados", "RBD", _answering("rados")),
            "zfs": _provider("zfs", "ZFS", _answering("zfs")),
        }
    )


def _volume(kind: str, path: str | None = None) -> VolumeObjectTO:
    return VolumeObjectTO(kind, kind, "DATADISK", 1, pool_of(kind), path=path)


@pytest.mark.parametrize(
    ("command", "done_by"),
    [
        # the directory driver and one other: the other, whichever way
        (CopyCommand("c", _volume("RBD", "v"), _volume("Filesystem")), "rados"),
        (CopyCommand("c", _volume("Filesystem", "v"), _volume("RBD")), "rados"),
        (
            CopyCommand(
                "c",
                _volume("RBD", "v"),
                VolumeObjectTO("w", "w", "DATADISK", 1, ImageStoreTO("s", "s", "/s")),
            ),
            "rados",
        ),
        # two others: the destination's
        (CopyCommand("c", _volume("RBD", "v"), _volume("ZFS")), "zfs"),
        (CopyCommand("c", _volume("ZFS", "v"), _volume("RBD")), "rados"),
        # one driver: that one
        (
            CopyCommand("c", _volume("Filesystem", "v"), _volume("Filesystem")),
            "directory",
        ),
    ],
)
def test_a_command_of_two_drivers_goes_to_the_one_that_is_not_the_directorys(
    command, done_by
):
    answer = KvmAgent(_no_tools(), _mixed_registry()).handle(command)
    assert (answer.result, answer.details) == (True, f"done by {done_by}")


def test_two_other_drivers_and_a_directory_destination_are_refused():
    """Neither of two other drivers writes the destination: no driver reads all."""
    snapshot = SnapshotObjectTO("s", "s", _volume("ZFS", "v"), pool_of("RBD"))
    command = CopyCommand("c", snapshot, _volume("Filesystem"))
    answer = KvmAgent(_no_tools(), _mixed_registry()).handle(command)
    assert answer.result is False
    assert "providers dir, rados, zfs have different drivers" in answer.details
    assert "none reads both" in answer.details
