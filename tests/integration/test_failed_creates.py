"""A create that failed before anything was made frees its name (issue 20, item 8).

Through the CLI on a simulator zone, on SQLite and PostgreSQL: the retry of
`volume create big-5`, `vm deploy web-1` or `template register t2` is the only
object by that name, and the failure stays findable by id in `job show` and
`history`.
"""

from __future__ import annotations

from .conftest import SimZone


def _fail_next(sim: SimZone, command: str) -> None:
    sim.cli.ok("simulator", "configure", "--host", "sim1", "--command", command,
               "--fail", "insufficient space", "--count", "1")  # fmt: skip


def _failed_job(sim: SimZone, cmd: str) -> dict:
    """The one failed job of `cmd` (the zone's own setup succeeded)."""
    jobs = sim.cli.ok("job", "list")
    [job] = [j for j in jobs if j["cmd"] == cmd and j["status"] == "failed"]
    return job


def test_a_retried_volume_create_is_the_only_volume_by_its_name(sim: SimZone) -> None:
    cli = sim.cli
    before = cli.pool("p1")["disksizeallocated"]
    _fail_next(sim, "CreateObjectCommand")
    create = ("volume", "create", "big-5", "--zone", "z1", "--size", "1G",
              "--pool", "p1")  # fmt: skip
    failed = cli.run(*create)
    assert failed.code == 3, failed
    job = _failed_job(sim, "volume.create")
    assert cli.pool("p1")["disksizeallocated"] == before

    retry = cli.ok(*create)
    assert retry["state"] == "Ready"
    assert retry["id"] != job["objectid"]
    assert cli.volume("big-5")["id"] == retry["id"]
    assert [v["id"] for v in cli.ok("volume", "list") if v["name"] == "big-5"] == [
        retry["id"]
    ]

    # the failure stays: the old volume by its id, its job, its history
    gone = cli.volume(job["objectid"])
    assert gone["state"] == "Expunged"
    history = cli.ok("history", "volume", job["objectid"])
    answered = [e for e in history if e["event"] == "CreateAnswered"]
    assert answered, history
    assert "insufficient space" in str(answered[0]), answered
    assert "insufficient space" in cli.job(job["jobid"])["error"]


def test_a_retried_vm_deploy_is_the_only_vm_by_its_name(sim: SimZone) -> None:
    cli = sim.cli
    _fail_next(sim, "CopyCommand")
    failed = cli.run("vm", "deploy", "web-1", "--template", "t1", "--zone", "z1")
    assert failed.code == 3, failed
    job = _failed_job(sim, "vm.deploy")
    refused = cli.run("vm", "show", "web-1")
    assert refused.code == 2, refused
    assert "not found" in refused.err

    vm = cli.ok("vm", "deploy", "web-1", "--template", "t1", "--zone", "z1")
    assert vm["state"] == "Running"
    assert cli.ok("vm", "show", "web-1")["id"] == vm["id"] != job["objectid"]
    roots = [v for v in cli.ok("volume", "list") if v["name"] == "ROOT-web-1"]
    assert [v["state"] for v in roots] == ["Ready"]


def test_a_template_whose_download_failed_keeps_its_name_until_deleted(
    sim: SimZone,
) -> None:
    """Unlike a volume, a failed download may have made something on the store
    (an S3 upload's parts): the template stays; its name is refused to a second
    register with what to do, and after `template delete` it is free."""
    cli = sim.cli
    _fail_next(sim, "DownloadCommand")
    url = "http://example.invalid/t2.qcow2"
    register = ("template", "register", "t2", "--zone", "z1", "--url", url,
                "--format", "qcow2")  # fmt: skip
    failed = cli.run(*register)
    assert failed.code == 3, failed
    job = _failed_job(sim, "template.register")

    taken = cli.run(*register)
    assert taken.code == 2, taken
    assert "template names are unique" in taken.err, taken.err
    cli.ok("template", "delete", job["objectid"])
    again = cli.ok(*register)
    assert again["isready"] is True
    assert again["id"] != job["objectid"]
    assert [t["id"] for t in cli.ok("template", "list") if t["name"] == "t2"] == [
        again["id"]
    ]
