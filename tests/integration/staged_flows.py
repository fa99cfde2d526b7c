"""The end-to-end flows `test_s3` and `test_swift` both run through the CLI, each
against its own provider in the lab (see `staged_stores`)."""

from __future__ import annotations

from typing import Any

from tests.integration.staged_stores import (
    MiB,
    Zone,
    add_stores,
    assert_no_secret_anywhere,
    image,
    reads,
    volume_file,
    write,
)


def register(zone: Zone, name: str, data: int) -> dict[str, Any]:
    source = image(zone.root / "img" / f"{name}.qcow2", data)
    made = zone.cli.ok("template", "register", name, "--zone", "z1", "--url",
                       source.as_uri(), "--format", "qcow2")  # fmt: skip
    assert made["isready"] is True, made
    return dict(made)


def template_key(template: dict[str, Any]) -> str:
    tid = template["id"]
    return f"template/tmpl/{tid}/{tid}.qcow2"


def whole_life(zone: Zone) -> None:
    """Register into the store, deploy through the cache, back up through the
    cache (full, then a delta), restore, revert, template from a volume, delete,
    evict; then no secret anywhere."""
    store = add_stores(zone)
    assert (
        store["providername"] == {"s3": "S3", "swift": "Swift"}[zone.backend.provider]
    )
    assert "secret" not in store["path"]
    assert "key" not in store["path"]

    # a template above the part size lands in the store, whole
    tiny = register(zone, "tiny", zone.backend.part_size + 4 * MiB)
    key = template_key(tiny)
    objects = zone.images()
    assert set(objects) == {key}
    assert zone.size(key) == tiny["physicalsize"]

    # a deploy reaches the pool through the cache, whose copy is a template_store_ref
    vm = zone.cli.ok("vm", "deploy", "web-1", "--template", "tiny", "--zone", "z1")
    assert vm["state"] == "Running"
    assert zone.cache_files() == {key}
    cache = zone.cli.ok("store", "show", "stage")
    refs = zone.rows(
        "select state, install_path from template_store_ref "
        "where template_id = ? and store_id = ?",
        tiny["id"],
        cache["id"],
    )
    assert refs == [{"state": "Ready", "install_path": key}]
    assert (zone.root / "p1" / tiny["id"]).is_file()

    # backups land in the store through the cache: a full one, then a delta
    zone.cli.ok("volume", "create", "d1", "--zone", "z1", "--size", "32M",
                "--pool", "p1")  # fmt: skip
    disk = volume_file(zone, "d1")
    write(disk, 0xAA)
    s1 = zone.cli.ok("snapshot", "create", "d1", "--name", "s1")
    write(disk, 0xBB)
    s2 = zone.cli.ok("snapshot", "create", "d1", "--name", "s2")
    assert (s1["state"], s2["state"], s2["parentid"]) == ("BackedUp",) * 2 + (s1["id"],)
    volume_id = zone.cli.volume("d1")["id"]
    backups = {f"snapshots/{volume_id}/{s['id']}.qcow2" for s in (s1, s2)}
    assert backups <= set(zone.images())
    assert not list((zone.root / "p1").rglob("snapshots/*/*"))  # removed after copy
    assert zone.cache_files() == {key}  # the hops left nothing in the cache

    # a volume from the delta (its parent fetched too), a revert from the full one
    restored = zone.cli.ok("volume", "create", "r2", "--from-snapshot", "s2")
    assert restored["state"] == "Ready"
    assert reads(volume_file(zone, "r2"), 0xBB)
    write(disk, 0xCC)
    zone.cli.ok("snapshot", "revert", "s1")
    assert reads(disk, 0xAA)
    assert zone.cache_files() == {key}

    # a template from a volume goes into the store; deleting it removes the object
    gold = zone.cli.ok("template", "create", "gold", "--from-volume", "d1")
    assert gold["isready"] is True, gold
    assert template_key(gold) in zone.objects()
    zone.cli.ok("template", "delete", "gold")
    assert template_key(gold) not in zone.objects()

    # past storage.cache.size the least recently used copy leaves the cache
    zone.cli.ok("config", "set", "storage.cache.size", str(tiny["physicalsize"] + 1))
    other = register(zone, "other", 2 * MiB)
    zone.cli.ok("vm", "deploy", "web-2", "--template", "other", "--zone", "z1")
    assert zone.cache_files() == {template_key(other)}
    states = {
        r["template_id"]: r["state"]
        for r in zone.rows(
            "select template_id, state from template_store_ref where store_id = ?",
            cache["id"],
        )
    }
    assert states == {tiny["id"]: "Destroyed", other["id"]: "Ready"}

    # snapshot deletes remove their backups; template deletes their objects
    zone.cli.ok("snapshot", "delete", "s2")
    zone.cli.ok("snapshot", "delete", "s1")
    assert not backups & set(zone.objects())
    for vm_name in ("web-1", "web-2"):
        zone.cli.ok("vm", "destroy", vm_name, "--expunge")
    for name in ("tiny", "other"):
        zone.cli.ok("template", "delete", name)
    assert zone.objects() == {}
    assert_no_secret_anywhere(zone)


def refused_store_adds(zone: Zone, bad_url: str, bad_auth: str) -> None:
    """`store add` refuses an unreachable endpoint, refused credentials and a
    missing bucket or container: exit 2, one line, no secret, nothing written."""
    backend = zone.backend
    good = backend.url(zone.lab, zone.bucket, zone.prefix)
    bucket = zone.bucket
    cases = [
        (bad_url, backend.credentials, "cannot reach"),
        (good, bad_auth, "refused the credentials"),
        (good.replace(f"//{bucket}/", "//storctl-no-such-bucket/"),
         backend.credentials, "no "),
    ]  # fmt: skip
    for url, credentials, says in cases:
        result = zone.cli.run(
            "store", "add", "os1", "--zone", "z1", "--provider", backend.provider,
            "--url", url, "--credentials", credentials,
        )  # fmt: skip
        assert result.code == 2, result
        lines = result.err.strip().splitlines()
        assert len(lines) == 1, result
        assert says in lines[0], result
        assert result.out == ""
    assert zone.cli.ok("store", "list") == []
    assert_no_secret_anywhere(zone)
