#!/usr/bin/env python3
"""Queries and a rewrite in this process against a Ballista cluster of 1, 2 and 4 executors,
side by side in one run (issue #19: scaling measured, not assumed).

Generates the events table, then for each setting runs, with the same binary:
  1. the same seeded workload (`run-workload`, every query on the active, initial layout);
  2. the rewrite of the initial layout into sort(event_date) (`enqueue-migration` then
     `migration-worker --once`), whose scan and sort run where the queries do;
  3. an incremental rewrite into sort(customer_id), one unit per `--unit-files` source files,
     whose units sort several at once on a cluster (one at a time in this process).
Each cluster is a scheduler and N executors started here as `dbopt cluster ...` processes on
loopback, every executor allowed as many tasks as there are cores. This machine has the cores
`os.cpu_count()` gives, so N executors share them: the figures show what the distribution
costs and what it buys on one host, not a many-host speedup. The query log's bytes per query
are compared between settings (they must agree: the same files are read). No timing is
asserted anywhere.

    python3 bench/ballista.py --rows 2000000 --binary ~/.cache/dbopt-release/release/dbopt
"""

import argparse
import datetime
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from net import free_port, wait_listening  # noqa: E402
from run import Dbopt  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


class Cluster:
    """A scheduler and `n` executors of the binary under test, on loopback."""

    def __init__(self, binary: Path, n: int, workdir: Path, env: dict | None = None):
        self.env = {**os.environ, "RUST_LOG": "warn", **(env or {})}
        self.procs = []
        port = free_port()
        self.address = f"127.0.0.1:{port}"
        self.procs.append(self._spawn(binary, ["cluster", "scheduler", "--port", str(port)]))
        wait_listening(port, "the scheduler")
        for i in range(n):
            flight, grpc = free_port(), free_port()
            work = workdir / f"executor-{n}-{i}"
            work.mkdir(parents=True, exist_ok=True)
            self.procs.append(
                self._spawn(
                    binary,
                    ["cluster", "executor", "--scheduler", self.address, "--port", str(flight),
                     "--grpc-port", str(grpc), "--work-dir", str(work)],
                )
            )
            wait_listening(flight, f"executor {i}")
        time.sleep(2)  # listening comes just before registering with the scheduler

    def _spawn(self, binary: Path, args: list[str]) -> subprocess.Popen:
        return subprocess.Popen([str(binary), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=self.env)

    def stop(self) -> None:
        for p in self.procs:
            p.kill()
            p.wait()


def logged_bytes(db: Dbopt, since_id: int) -> tuple[int, list[int]]:
    con = sqlite3.connect(db.metadata_db)
    rows = con.execute("SELECT id, bytes_scanned FROM query_log WHERE id > ? ORDER BY id", (since_id,)).fetchall()
    con.close()
    return (rows[-1][0] if rows else since_id), [b for _, b in rows]


def measure(db: Dbopt, setting: str, ballista: str | None, args, last_id: int, index: int) -> tuple[dict, int]:
    extra = ["--ballista", ballista] if ballista else []
    _, workload_s, _ = db.run("run-workload", "--table-name", "events", "--num-queries", str(args.queries),
                              "--seed", "5", "--format", "json", *extra)
    last_id, bytes_per_query = logged_bytes(db, last_id)
    # Each setting builds its own layout: one row more per row group makes a new layout id.
    db.run("enqueue-migration", "--table-name", "events", "--sort-by", "event_date",
           "--row-group-rows", str(122_880 + index))
    _, rewrite_s, _ = db.run("migration-worker", "--once", *extra)
    # The same rewrite in units of --unit-files source files each (incremental mode): on a
    # cluster several units sort at once.
    db.run("enqueue-migration", "--table-name", "events", "--mode", "incremental",
           "--batch-files", str(args.unit_files), "--sort-by", "customer_id",
           "--row-group-rows", str(122_880 + index))
    _, units_s, _ = db.run("migration-worker", "--once", *extra)
    return {
        "setting": setting,
        "workload_seconds": workload_s,
        "queries": args.queries,
        "bytes_scanned": sum(bytes_per_query),
        "bytes_per_query": bytes_per_query,
        "rewrite_seconds": rewrite_s,
        "units_rewrite_seconds": units_s,
        "rows": args.rows,
    }, last_id


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=2_000_000)
    p.add_argument("--queries", type=int, default=40)
    p.add_argument("--files", type=int, default=8, help="files of the generated table (units of the incremental rewrite)")
    p.add_argument("--unit-files", type=int, default=1, help="source files per unit of the incremental rewrite")
    p.add_argument("--executors", default="1,2,4", help="cluster sizes to measure, comma-separated")
    p.add_argument("--binary", type=Path, default=ROOT / "target" / "release" / "dbopt")
    p.add_argument("--workdir", type=Path, default=None, help="kept when given")
    args = p.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="dbopt-ballista-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        report = run(args, workdir)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = ROOT / "bench" / "results" / f"ballista-{stamp}"
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    print(f"results: {out}.json and .md")


def run(args, workdir: Path) -> dict:
    db = Dbopt(args.binary, workdir, threads=0, memory_limit="2GiB")
    db.run("generate", "--table-name", "events", "--num-rows", str(args.rows), "--seed", "42", "--order", "shuffled",
           "--rows-per-file", str(max(1, args.rows // args.files)))
    results = []
    last_id = 0
    local, last_id = measure(db, "this process", None, args, last_id, 0)
    results.append(local)
    for i, n in enumerate([int(x) for x in args.executors.split(",") if x], start=1):
        cluster = Cluster(args.binary, n, workdir)
        try:
            r, last_id = measure(db, f"{n} executor{'s' if n > 1 else ''}", cluster.address, args, last_id, i)
        finally:
            cluster.stop()
        results.append(r)
    return {
        "rows": args.rows,
        "binary": str(args.binary),
        "cores": os.cpu_count(),
        "results": results,
        "same_bytes_everywhere": all(r["bytes_per_query"] == local["bytes_per_query"] for r in results),
    }


def markdown(r: dict) -> str:
    base = r["results"][0]
    lines = [
        f"# Queries and a rewrite on a Ballista cluster ({r['rows']:,} events, {r['cores']} cores)",
        "",
        f"Binary `{r['binary']}`. Wall times of whole commands; every executor process shares "
        f"this machine's {r['cores']} cores.",
        "",
        "| setting | workload (s) | / this process | rewrite sort(event_date) (s) | / this process | "
        "incremental rewrite sort(customer_id) (s) | / this process | bytes scanned |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for x in r["results"]:
        lines.append(
            f"| {x['setting']} | {x['workload_seconds']:.2f} | {x['workload_seconds'] / base['workload_seconds']:.2f} | "
            f"{x['rewrite_seconds']:.2f} | {x['rewrite_seconds'] / base['rewrite_seconds']:.2f} | "
            f"{x['units_rewrite_seconds']:.2f} | {x['units_rewrite_seconds'] / base['units_rewrite_seconds']:.2f} | "
            f"{x['bytes_scanned'] / 2**20:.1f} MiB ({x['bytes_scanned'] / base['bytes_scanned']:.2f}x) |"
        )
    lines += [
        "",
        f"Bytes per query identical in every setting: {'yes' if r['same_bytes_everywhere'] else 'no'} "
        "(bytes come from the executors' scan metrics; each executor reads the Parquet footers and "
        "page indexes itself, with no cache shared with this process, so a cluster can read more).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
