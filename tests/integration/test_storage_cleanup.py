"""The garbage-collecting allocator, through the CLI, on SQLite and PostgreSQL.

CloudStack's last allocator: when no pool can take a disk, storage cleanup destroys
the template copies no volume uses and the chain runs again. A copy a volume still
clones from is never taken; a template cleaned up from a pool is copied again (a new
generation of the copy) the next time a volume needs it there.
"""

from __future__ import annotations

from typing import Any

from .conftest import SimZone, Storctl, simulator_zone

GIB = 1 << 30


def _spool(cli: Storctl, template: str) -> list[dict[str, Any]]:
    rows = cli.db_rows(
        "SELECT r.id, r.state FROM template_spool_ref r"
        " JOIN vm_template t ON t.uuid = r.template_id WHERE t.name = ?"
        " ORDER BY r.created",
        [template],
    )
    return rows


def _zone_with_unused_copy(cli: Storctl) -> SimZone:
    """p1 (10 GiB, threshold 0.85): vm1 from t1 (copy 2 + root 2 GiB), and t2's copy
    left behind by vm2, destroyed and expunged: 6 GiB allocated."""
    sim = simulator_zone(cli, capacity="10G")
    cli.ok("config", "set", "storage.overprovisioning.factor", "1")
    cli.ok("template", "register", "t2", "--zone", "z1",
           "--url", "http://example.invalid/t2.qcow2", "--format", "qcow2")  # fmt: skip
    cli.ok("vm", "deploy", "vm1", "--template", "t1", "--zone", "z1")
    cli.ok("vm", "deploy", "vm2", "--template", "t2", "--zone", "z1")
    assert cli.pool("p1")["disksizeallocated"] == 8 * GIB
    cli.ok("vm", "destroy", "vm2", "--expunge")
    assert cli.pool("p1")["disksizeallocated"] == 6 * GIB
    assert [r["state"] for r in _spool(cli, "t2")] == ["Ready"]
    return sim


def test_cleanup_frees_an_unused_template_copy_and_takes_the_pool(
    cli: Storctl,
) -> None:
    _zone_with_unused_copy(cli)

    # 6 + 3 GiB would pass 85% of 10 GiB; without t2's copy it is 4 + 3
    vol = cli.ok("volume", "create", "d1", "--zone", "z1", "--size", "3G",
                 "--pool", "p1")  # fmt: skip
    assert vol["state"] == "Ready"
    assert cli.pool("p1")["disksizeallocated"] == 7 * GIB
    why = cli.ok("why", "d1")
    taken = [v for v in why["verdicts"] if v["taken"]]
    assert [(v["pool"], v["allocator"]) for v in taken] == [("p1", "garbage")]
    assert "cleaning up unused template copies (2 GiB)" in taken[0]["reason"]

    # t2's copy is gone from the pool (its file deleted by the agent); t1's copy,
    # which vm1's root volume clones from, stays
    assert [r["state"] for r in _spool(cli, "t2")] == ["Destroyed"]
    assert [r["state"] for r in _spool(cli, "t1")] == ["Ready"]

    # t2 on p1 again: a new copy (the next generation), not the destroyed one
    cli.ok("volume", "delete", "d1")
    assert cli.pool("p1")["disksizeallocated"] == 4 * GIB
    vm3 = cli.ok("vm", "deploy", "vm3", "--template", "t2", "--zone", "z1")
    assert vm3["state"] == "Running"
    rows = _spool(cli, "t2")
    assert [r["state"] for r in rows] == ["Destroyed", "Ready"]
    assert rows[0]["id"] != rows[1]["id"]
    assert cli.pool("p1")["disksizeallocated"] == 8 * GIB


def test_a_copy_a_volume_clones_from_is_never_cleaned_up(cli: Storctl) -> None:
    _zone_with_unused_copy(cli)
    cli.ok("vm", "deploy", "vm3", "--template", "t2", "--zone", "z1")  # t2 used again
    assert cli.pool("p1")["disksizeallocated"] == 8 * GIB

    refused = cli.run("volume", "create", "d1", "--zone", "z1", "--size", "1G",
                      "--pool", "p1")  # fmt: skip
    assert refused.code == 3, refused
    why = cli.ok("why", "d1")
    assert [v["taken"] for v in why["verdicts"]] == [False]
    assert "over the 85% threshold" in why["verdicts"][0]["reason"]
    assert [r["state"] for r in _spool(cli, "t1")] == ["Ready"]
    assert [r["state"] for r in _spool(cli, "t2")] == ["Ready"]
    assert cli.pool("p1")["disksizeallocated"] == 8 * GIB


def test_cleanup_disabled_refuses_instead(cli: Storctl) -> None:
    _zone_with_unused_copy(cli)
    cli.ok("config", "set", "storage.cleanup.enabled", "false")

    refused = cli.run("volume", "create", "d1", "--zone", "z1", "--size", "3G",
                      "--pool", "p1")  # fmt: skip
    assert refused.code == 3, refused
    assert [r["state"] for r in _spool(cli, "t2")] == ["Ready"]
    assert cli.pool("p1")["disksizeallocated"] == 6 * GIB
