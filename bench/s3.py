"""`s3`: a template download into an S3 store against boto3's own `upload_file`.

The lab's RGW (`make lab`; the profile `lab-s3` in `$STORCTL_CREDENTIALS`, else
the lab's own file) holds a bucket; a qcow2 template with real data (full: 256
MiB written; quick: 48 MiB) sits in a local directory. `KvmAgent().handle(...)`
runs the `DownloadCommand` of its `file://` URL into an `s3` store, as the
dispatcher would: the fetch to a temporary file with its sha256, `qemu-img info`,
then the multipart upload with the measures as metadata. The baseline is boto3's
`upload_file` of the same file with its defaults, in the same run, to the same
bucket; ratio = boto3 time / agent time (1.0: as fast as boto3 alone). The two
alternate (which goes first alternates too) after one untimed round, each object
removed before the next run; medians of 3 pairs (quick: 2). Every object goes at
the end, but RGW keeps a deleted object's data until its garbage collection runs
(`rgw gc obj min wait`, 2 h by default), and the lab's OSD is 20 GiB: the sizes
stay small so repeated runs do not fill it. With the lab down the benchmark says
so and measures nothing.
"""

from __future__ import annotations

import os
import subprocess
import time
import tomllib
import uuid
from pathlib import Path
from typing import Any

from bench.common import Figure, Options, median

MiB = 1 << 20
PROFILE = "lab-s3"


def _profile() -> tuple[Path, dict[str, Any]] | None:
    """The credentials file that has the lab's S3 profile, and that profile."""
    root = Path(__file__).resolve().parents[1]
    lab = Path(os.environ.get("STORCTL_LAB_DIR") or root / "var" / "lab")
    for candidate in (os.environ.get("STORCTL_CREDENTIALS"), lab / "credentials.toml"):
        if candidate and Path(candidate).is_file():
            with Path(candidate).open("rb") as f:
                profile = tomllib.load(f).get(PROFILE)
            if profile:
                return Path(candidate), profile
    return None


def _client(profile: dict[str, Any], *, probe: bool = False) -> Any:
    """boto3's client with its defaults (the baseline); `probe`: one quick try,
    to tell a lab that is down."""
    import boto3
    from botocore.config import Config

    config = Config(s3={"addressing_style": "path"})
    if probe:
        config = config.merge(Config(connect_timeout=2, retries={"max_attempts": 1}))
    return boto3.client(
        "s3",
        endpoint_url=profile["endpoint"],
        aws_access_key_id=profile["access_key"],
        aws_secret_access_key=profile["secret_key"],
        region_name="us-east-1",
        config=config,
    )


def _template(path: Path, written: int) -> None:
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path),
                    str(2 * written)], check=True)  # fmt: skip
    cmds: list[str] = []
    chunk = 16 * MiB
    for offset in range(0, written, chunk):
        cmds += ["-c", f"write -P 0x{(offset // chunk) % 255 + 1:02x} {offset} {chunk}"]
    subprocess.run(["qemu-io", *cmds, str(path)], check=True, capture_output=True)


def run(opts: Options) -> list[Figure]:
    found = _profile()
    if found is None:
        print(f"# s3: no [{PROFILE}] profile (make lab): skipped, nothing measured")
        return []
    path, profile = found
    bucket = profile["bucket"]
    try:
        _client(profile, probe=True).head_bucket(Bucket=bucket)
    except Exception as exc:
        print(f"# s3: the lab's S3 does not answer ({type(exc).__name__}): skipped")
        return []
    os.environ["STORCTL_CREDENTIALS"] = str(path)
    client = _client(profile)

    from executors.agents.kvm import KvmAgent
    from ledger.commands import DownloadCommand, ImageStoreTO

    written = (48 if opts.quick else 256) * MiB
    pairs = 2 if opts.quick else 3
    source = opts.workdir / "s3-template.qcow2"
    _template(source, written)
    size = source.stat().st_size
    prefix = f"bench-{uuid.uuid4().hex[:12]}"
    url = f"s3://{bucket}/{prefix}?endpoint={profile['endpoint']}"
    store = ImageStoreTO("bench-s3", "bench-s3", url, "S3", credentials=PROFILE)
    install = "template/tmpl/bench/bench.qcow2"
    agent = KvmAgent()

    def by_agent() -> None:
        command = DownloadCommand(
            "bench",
            source.as_uri(),
            "QCOW2",
            "bench",
            "TEMPLATE",
            install,
            store,
            allowedRoots=[str(source.parent)],
        )
        answer = agent.handle(command)
        assert answer.result, answer.details

    def by_boto3() -> None:
        client.upload_file(str(source), bucket, f"{prefix}/baseline.qcow2")

    def clean() -> None:
        for key in (f"{prefix}/{install}", f"{prefix}/baseline.qcow2"):
            client.delete_object(Bucket=bucket, Key=key)

    times: dict[str, list[float]] = {"agent": [], "boto3": []}
    try:
        for i in range(pairs + 1):
            order = [("agent", by_agent), ("boto3", by_boto3)]
            for name, fn in order if i % 2 else order[::-1]:
                clean()
                start = time.perf_counter()
                fn()
                if i:  # the first round warms the page cache and the connections
                    times[name].append(time.perf_counter() - start)
    finally:
        clean()
        found = client.list_multipart_uploads(Bucket=bucket, Prefix=f"{prefix}/")
        for upload in found.get("Uploads", []):  # a baseline upload that failed
            client.abort_multipart_upload(
                Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )
    agent_s, boto3_s = median(times["agent"]), median(times["boto3"])
    label = f"{written // MiB} MiB written, {size / MiB:.0f} MiB file"
    return [
        Figure(
            benchmark="s3",
            name=f"template download into S3 ({label})",
            value=agent_s,
            unit="s",
            baseline="boto3 upload_file, same file, same bucket",
            baseline_value=boto3_s,
            ratio=boto3_s / agent_s,
            target=0.8,
            target_text=">= 0.8 of boto3",
            extra={"agent_s": times["agent"], "boto3_s": times["boto3"], "bytes": size},
        )
    ]
