"""`make soak`: the soak of `tests/integration/soak.py` for minutes, with its figures.

    python tools/soak.py [--minutes 3] [--seed 1] [--port 5444]

Runs on a PostgreSQL cluster of its own in `var/soak/pg` (127.0.0.1 only, the given
port), made anew each run: a cluster an earlier run left running there is stopped
first (by the PID its folder records), and this run's is stopped at the end; the
shared server on 5432 is never touched. The report (jobs, kills, restarts, faults,
what was lost: 0) goes to `var/soak/last.json` and stdout; progress to stderr.
Exit 0 when every check held, 1 (with the one line that failed) otherwise.
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.pg_cluster import PgCluster  # noqa: E402
from tests.integration.soak import Soak  # noqa: E402


def log(line: str) -> None:
    sys.stderr.write(f"soak {time.strftime('%H:%M:%S')} {line}\n")
    sys.stderr.flush()


def port_taken(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--port", type=int, default=5444)
    parser.add_argument("--dir", type=Path, default=ROOT / "var" / "soak")
    args = parser.parse_args()

    folder: Path = args.dir.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)  # the postgres user walks into it to its data
    cluster = PgCluster(folder / "pg", args.port)
    cluster.stop()  # an earlier run's, by the PID its folder records
    if port_taken(args.port):
        log(f"error: 127.0.0.1:{args.port} is taken by something else; use --port")
        return 1
    soak = Soak(cluster, seconds=args.minutes * 60, seed=args.seed, log=log)
    report_file = folder / "last.json"
    try:
        log(f"PostgreSQL cluster in {cluster.folder}, port {args.port}")
        soak.run()
        log("checking the books, replay verify, doctor, a rebuild")
        soak.check()
    except AssertionError as e:
        log(f"FAILED: {str(e).splitlines()[0] if str(e) else 'assertion'}")
        report_file.write_text(soak.report.json() + "\n")
        return 1
    finally:
        cluster.stop()
    report_file.write_text(soak.report.json() + "\n")
    sys.stdout.write(soak.report.json() + "\n")
    log(f"passed; report in {report_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
