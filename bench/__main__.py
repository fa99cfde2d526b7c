"""`python -m bench [--quick] [--only NAME,...] [--store sqlite|postgres|both]`."""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from bench.common import Options, machine, pg_available, python_loop_ms, table

BENCHMARKS = (
    "append",
    "replay",
    "load",
    "datapath",
    "allocate",
    "startup",
    "iscsi",
    "s3",
    "rbd",
)
RESULTS = Path(__file__).with_name("results.json")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small N, for CI (<60 s)")
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    parser.add_argument(
        "--store", choices=("sqlite", "postgres", "both"), default="both"
    )
    parser.add_argument(
        "--output", type=Path, default=RESULTS, help="where to write the results JSON"
    )
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; one of {BENCHMARKS}")
    stores = ["sqlite", "postgres"] if args.store == "both" else [args.store]
    notes: list[str] = []
    if "postgres" in stores and not pg_available():
        if args.store == "postgres":
            print("error: PostgreSQL is not reachable", file=sys.stderr)
            return 1
        stores.remove("postgres")
        notes.append("PostgreSQL not reachable: SQLite only")
        print("# PostgreSQL not reachable: SQLite only", file=sys.stderr)

    workdir = Path(tempfile.mkdtemp(prefix="storctl-bench-"))
    opts = Options(quick=args.quick, stores=stores, workdir=workdir)
    results: dict[str, object] = {
        "machine": machine(),
        "mode": "quick" if args.quick else "full",
        "stores": stores,
        "command": "python -m bench " + " ".join(argv or sys.argv[1:]),
        "notes": notes,
        "benchmarks": {},
    }
    failed = False
    total = time.perf_counter()
    try:
        for name in names:
            module = importlib.import_module(f"bench.{name}")
            print(f"\n== {name} ==", flush=True)
            loop_before = python_loop_ms()
            start = time.perf_counter()
            try:
                figures = module.run(opts)
            except Exception as exc:
                traceback.print_exc()
                failed = True
                results["benchmarks"][name] = {"error": f"{type(exc).__name__}: {exc}"}  # type: ignore[index]
                continue
            elapsed = time.perf_counter() - start
            loops = [loop_before, python_loop_ms()]
            print(table(figures))
            print(
                f"({elapsed:.1f} s; Python loop {loops[0]} / {loops[1]} ms)", flush=True
            )
            results["benchmarks"][name] = {  # type: ignore[index]
                "seconds": round(elapsed, 2),
                "python_loop_ms": loops,
                "figures": [f.as_dict() for f in figures],
            }
            # written after every benchmark, so an interrupted run keeps its figures
            args.output.write_text(json.dumps(results, indent=2, default=str) + "\n")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results["seconds"] = round(time.perf_counter() - total, 2)
    args.output.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"\nwrote {args.output} ({results['seconds']} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
