"""The shared provider suite: every registered provider passes it.

Each provider declares what it is; its validation refuses the bad locations (an
unknown scheme, a query string, a relative path, and for providers with disk I/O a
directory that is not there) and accepts a good one, through `locate` and through
`storctl pool add` / `store add` (exit 2, one line, no event written); and its
driver, reached through the KVM agent's table, does the data path: directory
drivers create, clone, copy and delete a volume with the real `qemu-img`, a driver
without disk I/O answers and writes nothing. A provider that needs credentials
(a backend to reach: its `check`) is refused here without them, and added for
real by its tests against the lab (`tests/integration`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from executors.agents.kvm import KvmAgent
from executors.providers import installed, registry
from executors.providers.driver import Operation
from executors.providers.provider import (
    SCOPES,
    Location,
    Provider,
    Role,
    same_location,
)
from ledger.commands import (
    CopyCommand,
    CreateObjectCommand,
    DeleteCommand,
    DownloadCommand,
    ImageStoreTO,
    PrimaryDataStoreTO,
    TemplateObjectTO,
    VolumeObjectTO,
)
from ledger.errors import InvalidInput
from tests.unit.kvm.helpers import MiB, files_under, info, qemu_img
from tests.unit.test_cli_infra import event_count, run

PROVIDERS = list(installed().providers.values())
SERVED = [(p, role) for p in PROVIDERS for role in Role if p.serves(role)]
DIRECTORY_BACKED = [(p, r) for p, r in SERVED if p.driver.name == "directory"]
TMPL = "5c6a1d7e-0b7e-4f8e-9d0a-2f3c4b5a6d7e"
VOL = "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"
COPY = "1f1f1f1f-5a4f-4e3d-8c2b-1a0f9e8d7c6b"

#: A location each scheme's providers must accept, made under `tmp_path`. A provider
#: with a new scheme adds its entry here, and so passes the same suite.
GOOD: dict[str, Callable[[Path], str]] = {
    "file": lambda tmp: str(tmp),
    "iscsi": lambda tmp: "iscsi://127.0.0.1:3260",
    "rbd": lambda tmp: "rbd://admin@127.0.0.1:3300/storctl",
    "s3": lambda tmp: "s3://storctl-unit/templates?endpoint=http://127.0.0.1:7480",
    "swift": lambda tmp: (
        "swift://storctl-unit/templates?auth=http://127.0.0.1:7480/auth/1.0"
    ),
}
#: The installed providers with their `check` and rbd's `place` (which reach the
#: backend: tested against the lab, `tests/integration/test_s3.py`,
#: `test_rbd.py`) left out, so this suite runs offline; a provider that needs
#: credentials is given a name it never resolves.
OFFLINE = registry.Registry(
    {
        n: dataclasses.replace(
            p, check=None, place=same_location if n == "rbd" else p.place
        )
        for n, p in installed().providers.items()
    }
)


def locate(role: Role, name: str, location: str) -> Location:
    credentials = "unit" if OFFLINE.providers[name].credentials else None
    return OFFLINE.locate(role, name, location, credentials=credentials)


def foreign(provider: Provider) -> tuple[str, str]:
    """A location of a scheme `provider` does not take, and what its refusal says."""
    if "s3" not in provider.schemes:
        return "s3://bucket/templates", "takes? s3://"
    return "/srv/templates", "takes? file://"


def ids(value: object) -> str:
    if isinstance(value, Provider):
        return value.name
    return value.value if isinstance(value, Role) else str(value)


def good_location(provider: Provider, tmp_path: Path) -> str:
    scheme = next((s for s in provider.schemes if s in GOOD), None)
    assert scheme is not None, f"add a good location for {provider.schemes} to GOOD"
    return GOOD[scheme](tmp_path)


def test_the_built_in_providers_are_registered():
    names = {p.name for p in PROVIDERS}
    assert {"filesystem", "sharedmountpoint", "networkfilesystem", "nfs"} <= names
    assert "simulator" in names
    assert installed().broken == ()


@pytest.mark.parametrize("provider", PROVIDERS, ids=ids)
def test_a_provider_declares_what_it_is(provider: Provider):
    assert provider.name == provider.name.lower().strip()
    assert provider.name in installed().origins
    assert provider.roles
    assert provider.roles <= set(Role)
    assert provider.recorded_as.strip()
    assert provider.schemes
    assert all(s == s.lower() and "://" not in s for s in provider.schemes)
    caps = provider.capabilities
    assert caps.scopes
    assert caps.scopes <= set(SCOPES)
    assert isinstance(caps.linked_clones, bool)
    assert isinstance(caps.native_snapshots, bool)
    assert isinstance(caps.needs_staging_cache, bool)
    assert provider.driver.name
    assert set(provider.driver.handlers) <= set(Operation)
    assert all(callable(h) for h in provider.driver.handlers.values())
    assert provider.summary
    assert "\n" not in provider.summary


@pytest.mark.parametrize(("provider", "role"), SERVED, ids=ids)
class TestValidation:
    def test_a_good_location_is_accepted_in_its_canonical_form(
        self, provider, role, tmp_path
    ):
        good = good_location(provider, tmp_path)
        where = locate(role, provider.name, good + "/")
        assert (where.provider, where.recorded_as) == (
            provider.name,
            provider.recorded_as,
        )
        assert where.path == locate(role, provider.name, good).path
        if "file" in provider.schemes:
            assert where.path == str(tmp_path)
            as_url = locate(role, provider.name, tmp_path.as_uri())
            assert as_url.path == str(tmp_path)

    @pytest.mark.parametrize(
        ("bad", "says"),
        [
            ("{foreign}", "{refusal}"),
            ("{good}?region=eu", "query string"),
            ("relative/dir", "absolute|does not take file://"),
            ("{good}\n/etc", "control character"),
        ],
    )
    def test_a_bad_location_is_refused(self, provider, role, tmp_path, bad, says):
        other, refusal = foreign(provider)
        location = bad.format(good=good_location(provider, tmp_path), foreign=other)
        if "file" not in provider.schemes and says == "absolute":
            says = "take file://"  # a path is not this provider's at all
        with pytest.raises(InvalidInput, match=says.format(refusal=refusal)):
            locate(role, provider.name, location)

    def test_a_missing_directory_is_refused_where_disks_are_real(
        self, provider, role, tmp_path
    ):
        missing = tmp_path / "not-mounted"
        (tmp_path / "a-file").write_text("")
        if "file" not in provider.schemes:
            with pytest.raises(InvalidInput, match="does not take file://"):
                installed().locate(role, provider.name, str(missing))
            return
        if not provider.capabilities.disk_io:
            assert installed().locate(role, provider.name, str(missing)).path
            return
        for location, says in (
            (missing, "no such directory"),
            (tmp_path / "a-file", "not a directory"),
        ):
            with pytest.raises(InvalidInput, match=says):
                installed().locate(role, provider.name, str(location))


#: The refusals only one scheme has: (location, what the refusal says).
OWN_REFUSALS: dict[str, tuple[tuple[str, str], ...]] = {
    "rbd": (
        ("rbd://127.0.0.1:3300/storctl", "names no Ceph user"),
        ("rbd://admin:hunter2@127.0.0.1:3300/storctl", "no password"),
        ("rbd://admin@127.0.0.1:3300/", "names no pool"),
        ("rbd://admin@127.0.0.1:99999/storctl", "bad monitor port"),
        ("rbd://admin@127.0.0.1/a/b", "not one Ceph pool name"),
    ),
}


@pytest.mark.parametrize("scheme", sorted(OWN_REFUSALS))
def test_a_url_providers_own_bad_locations_are_refused(scheme: str) -> None:
    (provider,) = [p for p in PROVIDERS if scheme in p.schemes]
    role = next(iter(provider.roles))
    for location, says in OWN_REFUSALS[scheme]:
        with pytest.raises(InvalidInput, match=says) as caught:
            locate(role, provider.name, location)
        assert "hunter2" not in str(caught.value)


def test_an_unknown_provider_or_the_wrong_role_is_refused_naming_the_installed():
    with pytest.raises(InvalidInput, match="provider list") as caught:
        installed().locate(Role.PRIMARY, "sheepdog", "/srv/gold")
    assert "filesystem" in str(caught.value)
    with pytest.raises(InvalidInput, match="serves image stores, not primary"):
        installed().locate(Role.PRIMARY, "nfs", "/srv/gold")


# ------------------------------------------------------------ through the CLI


@pytest.fixture
def zone(db_url, tmp_path):
    run(db_url, "host", "add", "kvm-01", "--zone", "z1", "--cluster", "c1")
    return db_url


def add_argv(provider: Provider, role: Role, location: str) -> list[str]:
    named = ["--credentials", "unit"] if provider.credentials else []
    if role is Role.PRIMARY:
        return ["pool", "add", "p", "--zone", "z1", "--cluster", "c1", "--capacity",
                "1G", "--type", provider.name, "--path", location, *named]  # fmt: skip
    return ["store", "add", "s", "--zone", "z1", "--provider", provider.name,
            "--path", location, *named]  # fmt: skip


@pytest.mark.parametrize(("provider", "role"), SERVED, ids=ids)
def test_the_cli_refuses_each_bad_location_with_one_line_and_writes_nothing(
    zone, tmp_path, provider, role, monkeypatch
):
    monkeypatch.setattr(registry, "installed", lambda: OFFLINE)
    good = good_location(provider, tmp_path)
    bad = ["s3://bucket/x", f"{good}?x=1", "relative/dir"]
    if provider.capabilities.disk_io:
        bad.append(str(tmp_path / "not-mounted"))
    before = event_count(zone)
    for location in bad:
        result = run(zone, *add_argv(provider, role, location), code=2)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert location in lines[0]
        assert result.stdout == ""
    assert event_count(zone) == before
    if provider.credentials:
        without = [a for a in add_argv(provider, role, good) if a != "unit"]
        refused = run(zone, *without[: without.index("--credentials")], code=2)
        assert "needs --credentials" in refused.stderr
        assert event_count(zone) == before
    added = run(zone, *add_argv(provider, role, good))
    assert added["path"] == locate(role, provider.name, good).path
    recorded = added["type"] if role is Role.PRIMARY else added["providername"]
    assert recorded == provider.recorded_as


def test_an_s3_url_given_to_nfs_is_refused_naming_the_provider_that_takes_it(zone):
    before = event_count(zone)
    result = run(zone, "store", "add", "s3", "--zone", "z1", "--path",
                 "s3://bucket/templates", code=2)  # fmt: skip
    assert "provider nfs does not take s3:// locations; s3 does" in result.stderr
    assert event_count(zone) == before


def test_a_url_no_installed_provider_takes_is_refused_naming_them(zone):
    before = event_count(zone)
    result = run(zone, "store", "add", "x", "--zone", "z1", "--path",
                 "gs://bucket/templates", code=2)  # fmt: skip
    assert "nfs, s3, simulator, swift" in result.stderr
    assert "storctl provider list" in result.stderr
    assert event_count(zone) == before


def test_a_refused_first_command_leaves_no_database_file(tmp_path):
    db = tmp_path / "never.db"
    run(str(db), "store", "add", "s", "--zone", "z1", "--path", "/nowhere", code=2)
    assert not db.exists()


# ------------------------------------------------------------ the data path


def store_to(provider: Provider, role: Role, root: Path, name: str):
    root.mkdir()
    if role is Role.PRIMARY:
        return PrimaryDataStoreTO(f"{name}-id", name, provider.recorded_as, str(root))
    return ImageStoreTO(
        f"{name}-id", name, str(root), providerName=provider.recorded_as
    )


def volume(pool, uuid: str = VOL, path: str | None = None) -> VolumeObjectTO:
    return VolumeObjectTO(uuid, "vol", "DATADISK", 32 * MiB, pool, path=path)


@pytest.mark.qemu
@pytest.mark.parametrize(
    "provider", [p for p, r in DIRECTORY_BACKED if r is Role.PRIMARY], ids=ids
)
def test_a_directory_pool_creates_clones_copies_and_deletes_a_volume(
    tmp_path, provider
):
    agent = KvmAgent()
    pool = store_to(provider, Role.PRIMARY, tmp_path / "pool", "pool")
    other = store_to(provider, Role.PRIMARY, tmp_path / "other", "other")
    made = agent.handle(CreateObjectCommand("c-1", volume(pool)))
    assert made.result, made.details
    assert info(tmp_path / "pool" / VOL)["virtual-size"] == 32 * MiB

    qemu_img("create", "-q", "-f", "qcow2", str(tmp_path / "pool" / TMPL), "16M")
    base = TemplateObjectTO(TMPL, "tmpl", "QCOW2", pool, path=TMPL)
    clone = agent.handle(CopyCommand("c-2", base, volume(pool, COPY)))
    assert clone.result, clone.details
    assert info(tmp_path / "pool" / COPY)["backing-filename"] == str(
        tmp_path / "pool" / TMPL
    )

    copied = agent.handle(
        CopyCommand("c-3", volume(pool, COPY, COPY), volume(other, COPY))
    )
    assert copied.result, copied.details
    assert "backing-filename" not in info(tmp_path / "other" / COPY)

    for command_id, where in (("c-4", pool), ("c-5", other)):
        gone = agent.handle(DeleteCommand(command_id, volume(where, COPY, COPY)))
        assert gone.result, gone.details
    assert agent.handle(DeleteCommand("c-6", volume(pool, VOL, VOL))).result
    assert files_under(tmp_path / "other") == set()
    assert files_under(tmp_path / "pool") == {tmp_path / "pool" / TMPL}


@pytest.mark.qemu
@pytest.mark.parametrize(
    "provider", [p for p, r in DIRECTORY_BACKED if r is Role.IMAGE], ids=ids
)
def test_a_directory_image_store_downloads_serves_and_deletes_a_template(
    tmp_path, provider
):
    agent = KvmAgent()
    store = store_to(provider, Role.IMAGE, tmp_path / "store", "store")
    pool = PrimaryDataStoreTO("pool-id", "pool", "Filesystem", str(tmp_path / "pool"))
    (tmp_path / "pool").mkdir()
    image = tmp_path / "tiny.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", str(image), "16M")
    install = f"template/tmpl/{TMPL}/{TMPL}.qcow2"
    downloaded = agent.handle(
        DownloadCommand(
            "c-1",
            image.as_uri(),
            "QCOW2",
            "tiny",
            "TEMPLATE",
            install,
            store,
            allowedRoots=[str(tmp_path)],
        )
    )
    assert downloaded.result, downloaded.details
    on_store = TemplateObjectTO(TMPL, "tiny", "QCOW2", store, path=install)
    cached = agent.handle(
        CopyCommand("c-2", on_store, TemplateObjectTO(TMPL, "tiny", "QCOW2", pool))
    )
    assert cached.result, cached.details
    assert (tmp_path / "pool" / TMPL).is_file()
    assert agent.handle(DeleteCommand("c-3", on_store)).result
    assert files_under(tmp_path / "store") == set()


@pytest.mark.parametrize(
    ("provider", "role"),
    [(p, r) for p, r in SERVED if not p.capabilities.disk_io],
    ids=ids,
)
def test_a_provider_without_disk_io_answers_and_writes_nothing(
    tmp_path, provider, role
):
    store = store_to(provider, role, tmp_path / "store", "store")
    ran: list[list[str]] = []

    class Refusing:
        def run(self, argv, *, timeout, on_progress=None):
            ran.append(argv)
            raise AssertionError("no host tool may run")

    data = (
        volume(store)
        if role is Role.PRIMARY
        else TemplateObjectTO(TMPL, "t", "QCOW2", store)
    )
    command = (
        CreateObjectCommand("c-1", data)
        if role is Role.PRIMARY
        else DeleteCommand("c-1", data)
    )
    answer = KvmAgent(Refusing()).handle(command)
    assert answer.result, answer.details
    assert "no disk I/O" in answer.details
    assert ran == []
    assert files_under(tmp_path) == set()
