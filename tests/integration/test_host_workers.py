"""Per-host workers and VM destruction.

`storctl executor run --hosts H` takes only the commands whose endpoint is H (a worker
on each KVM host against a shared PostgreSQL); the general worker leaves those hosts'
commands to them. And `vm destroy [--expunge]` takes the ROOT volume with the VM.
"""

from __future__ import annotations

import signal

from tests.integration.conftest import Storctl, finish, simulator_zone, wait_for


def two_clusters(cli: Storctl) -> None:
    for host, cluster in (("sim-a", "ca"), ("sim-b", "cb")):
        cli.ok("host", "add", host, "--zone", "z1", "--cluster", cluster,
               "--hypervisor", "simulator")  # fmt: skip
        cli.ok("pool", "add", f"pool-{cluster}", "--zone", "z1", "--cluster", cluster,
               "--path", f"/sim/{cluster}", "--capacity", "100G",
               "--type", "simulator")  # fmt: skip


def test_host_worker_takes_only_its_hosts_commands(cli):
    two_clusters(cli)
    worker = cli.popen("executor", "run", "--hosts", "sim-a")
    try:
        # vb (sim-b's) is requested first: when va is done, the worker has read past it.
        vb = cli.ok("volume", "create", "vb", "--zone", "z1", "--size", "1G",
                    "--pool", "pool-cb", run_async=True)  # fmt: skip
        va = cli.ok("volume", "create", "va", "--zone", "z1", "--size", "1G",
                    "--pool", "pool-ca", run_async=True)  # fmt: skip
        # A host worker only dispatches: the answer moves the volume, and the
        # management side's workflows settle the job later.
        wait_for(lambda: cli.volume("va")["state"] == "Ready", what="va created")
        assert cli.job(va["jobid"])["status"] == "pending"
        assert cli.volume("vb")["state"] == "Creating"
        # The general worker runs what no host worker claims, and the workflows.
        cli.ok("executor", "run", "--once")
        assert cli.volume("vb")["state"] == "Ready"
        assert cli.job(vb["jobid"])["status"] == "succeeded"
        assert cli.job(va["jobid"])["status"] == "succeeded"
    finally:
        worker.send_signal(signal.SIGTERM)
        result = finish(worker)
    assert result.code == 0, result


def test_vm_destroy_takes_the_root_volume_and_expunge_its_file(cli):
    zone = simulator_zone(cli)
    before = cli.pool("p1")["disksizeallocated"]
    cli.ok("vm", "deploy", "web-1", "--template", "t1", "--zone", "z1")
    root = cli.ok("volume", "list", "--vm", "web-1")[0]
    assert cli.pool("p1")["disksizeallocated"] > before
    refused = cli.run("volume", "delete", root["id"])
    assert refused.code == 2
    assert "goes with the VM" in refused.err
    data = cli.ok("volume", "create", "d1", "--zone", "z1", "--size", "1G")
    cli.ok("volume", "attach", data["id"], "--vm", "web-1")
    refused = cli.run("vm", "destroy", "web-1")
    assert refused.code == 2
    assert "detach them first" in refused.err
    cli.ok("volume", "detach", data["id"])
    vm = cli.ok("vm", "destroy", "web-1", "--expunge")
    assert vm["state"] == "Expunging"
    assert cli.volume(root["id"])["state"] == "Expunged"
    # ROOT released; what stays is the data volume and the cached template base.
    data_size = 1 << 30
    assert (
        cli.pool("p1")["disksizeallocated"]
        == before + data_size + (zone.template["size"])
    )
