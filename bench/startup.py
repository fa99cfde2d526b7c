"""`startup`: `storctl --help` against `python -c pass`, medians of repeated runs.

Both run as fresh processes of the same interpreter (the venv's), so the ratio is
what storctl's imports add to bare Python's start; the target is 2x (lazy imports).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from bench.common import Figure, Options, median, percentile


def _run(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def run(opts: Options) -> list[Figure]:
    repeats = 5 if opts.quick else 20
    storctl = Path(sys.executable).with_name("storctl")
    cli = (
        [str(storctl), "--help"]
        if storctl.exists()
        else [sys.executable, "-m", "cli", "--help"]
    )
    bare = [sys.executable, "-c", "pass"]
    env = {k: v for k, v in os.environ.items() if k != "STORCTL_DB"}
    env["STORCTL_DB"] = str(opts.workdir / "startup-never-created.db")
    _run(cli, env)  # warm the page cache and the bytecode cache
    _run(bare, env)
    cli_times, bare_times = [], []
    for _ in range(repeats):  # interleaved, so a noisy moment hits both
        cli_times.append(_run(cli, env))
        bare_times.append(_run(bare, env))
    c, b = median(cli_times), median(bare_times)
    return [
        Figure(
            benchmark="startup",
            name="storctl --help (median)",
            value=c * 1000,
            unit="ms",
            baseline="python -c pass (median)",
            baseline_value=b * 1000,
            ratio=c / b,
            target=2.0,
            direction="lower",
            target_text="<= 2x",
            extra={
                "repeats": repeats,
                "p90_ms": percentile(cli_times, 90) * 1000,
                "baseline_p90_ms": percentile(bare_times, 90) * 1000,
                "argv": cli,
            },
        )
    ]
