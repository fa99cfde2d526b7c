"""A real storctl session on the embedded default: SQLite, pools as directories,
real qemu-img. Run by `make quickstart`; prints each command and what it answered.

It builds a small qcow2 template with a known pattern, registers a KVM host, a pool,
an image store and the template, deploys two VMs (one cached base, two linked
clones), walks a data volume through attach, detach, delete, recover and expunge, and
shows the audit trail of one volume.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path


def run(*args: str, check: bool = True) -> str:
    cmd = [sys.executable, "-m", "cli", *args]
    print(f"$ storctl {shlex.join(args)}")
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    out = (proc.stdout + proc.stderr).rstrip()
    if out:
        print("  " + out.replace("\n", "\n  "))
    if check and proc.returncode != 0:
        sys.exit(f"quickstart: storctl exited {proc.returncode}")
    return proc.stdout


def main() -> None:
    work = Path(os.environ.get("QUICKSTART_DIR") or tempfile.mkdtemp(prefix="storctl-"))
    for sub in ("primary", "silver", "secondary", "images"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    image = work / "images" / "tiny.qcow2"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", str(image), "256M"], check=True
    )
    subprocess.run(
        ["qemu-io", "-c", "write -P 0xab 0 1M", str(image)],
        check=True,
        capture_output=True,
    )
    os.environ["STORCTL_DB"] = str(work / "ledger.db")
    print(f"# ledger: {os.environ['STORCTL_DB']}\n")

    run("host", "add", "kvm-01", "--zone", "z1", "--cluster", "c1")
    run(
        "pool",
        "add",
        "gold",
        "--zone",
        "z1",
        "--cluster",
        "c1",
        "--path",
        str(work / "primary"),
        "--capacity",
        "10G",
        "--overprovision",
        "1",
    )
    run("store", "add", "sec-1", "--zone", "z1", "--path", str(work / "secondary"))
    # file:// templates only from a directory the operator allows (never /etc)
    run("config", "set", "template.url.allowed.roots", str(image.parent))
    run(
        "-o",
        "table",
        "template",
        "register",
        "tiny",
        "--url",
        image.as_uri(),
        "--format",
        "qcow2",
        "--zone",
        "z1",
    )
    run("-o", "table", "vm", "deploy", "web-1", "--template", "tiny", "--zone", "z1")
    run("-o", "table", "vm", "deploy", "web-2", "--template", "tiny", "--zone", "z1")
    run("-o", "table", "volume", "create", "data-1", "--zone", "z1", "--size", "1G")
    run("-o", "table", "volume", "attach", "data-1", "--vm", "web-1")
    run("-o", "table", "volume", "detach", "data-1")
    run("-o", "table", "volume", "delete", "data-1")
    run("-o", "table", "volume", "recover", "data-1")
    run("-o", "table", "volume", "delete", "data-1")
    run("-o", "table", "volume", "expunge", "data-1")
    print("# snapshots, a restore and StorageMotion:")
    run(
        "pool",
        "add",
        "silver",
        "--zone",
        "z1",
        "--cluster",
        "c1",
        "--path",
        str(work / "silver"),
        "--capacity",
        "10G",
        "--overprovision",
        "1",
    )
    run(
        "-o",
        "table",
        "volume",
        "create",
        "data-2",
        "--zone",
        "z1",
        "--size",
        "512M",
        "--pool",
        "gold",
    )
    run("-o", "table", "snapshot", "create", "data-2", "--name", "nightly")
    run("-o", "table", "snapshot", "revert", "nightly")
    run("-o", "table", "volume", "create", "restored", "--from-snapshot", "nightly")
    run("-o", "table", "volume", "migrate", "data-2", "--pool", "silver")
    run("-o", "table", "why", "data-2")
    print("# refused, nothing written (exit 2):")
    run("volume", "delete", "ROOT-web-1", check=False)
    run(
        "pool",
        "add",
        "gold",
        "--zone",
        "z1",
        "--cluster",
        "c1",
        "--path",
        "/srv",
        "--capacity",
        "1G",
        check=False,
    )
    run("-o", "table", "volume", "list")
    run("-o", "table", "pool", "list")
    run("-o", "table", "job", "list")
    print(
        f"\n# files on the pool: {sorted(p.name for p in (work / 'primary').iterdir())}"
    )
    print(
        f"# all in {work}; try: source .venv/bin/activate && "
        f"STORCTL_DB={work / 'ledger.db'} storctl --help"
    )


if __name__ == "__main__":
    main()
