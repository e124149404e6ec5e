"""Benchmark runs into the experiment store (`dbopt exp`), and the history BENCHMARKS.md shows.

Every run of bench/run.py is stored in bench/results/store (partitioned by dataset) under the
grid id of its parameters: the dataset and workload options, the command line and the git
commit it measured. Its events are the per-query measurements (one row per query, layout and
engine); its seed summary is the run's headline ratios. Rerunning the same command on the
same commit replaces that run; another commit is another grid.

  python3 bench/store.py backfill [--binary PATH]   # store every bench/results/*.json
  python3 bench/store.py history  [--binary PATH]   # the Markdown table BENCHMARKS.md embeds
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
STORE = RESULTS / "store"
# A benchmark's workloads are drawn from fixed seeds: every run is seed 1 of its grid.
SEED = 1

EVENT_SCHEMA = pa.schema(
    [
        ("layout", pa.string()),
        ("engine", pa.string()),
        ("query", pa.int64()),
        ("template", pa.string()),
        ("latency_ms", pa.float64()),
        ("bytes_scanned", pa.int64()),
        ("table_bytes", pa.int64()),
        ("rows_returned", pa.int64()),
        ("files_total", pa.int64()),
        ("files_pruned", pa.int64()),
        ("row_groups_total", pa.int64()),
        ("row_groups_pruned", pa.int64()),
        ("ideal_bytes", pa.float64()),
        ("bytes_over_ideal", pa.float64()),
        ("layouts_read", pa.string()),
    ]
)


def commit_at(started_at: str) -> str:
    """The commit the checkout was at when a run started (the last one before it)."""
    when = dt.datetime.strptime(started_at, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
    out = subprocess.run(
        ["git", "-C", str(REPO), "rev-list", "-1", f"--before={when.isoformat()}", "HEAD"],
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()[:12] or "unknown"


def head_commit() -> str:
    out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip()[:12] or "unknown"


def run_params(report: dict, commit: str) -> dict:
    """The grid parameters of a run: what was measured and how, nothing that varies by chance."""
    dataset = {k: v for k, v in report["dataset"].items() if not k.endswith("_seconds")}
    return {
        "bench": "run.py",
        "dataset": report["dataset"]["name"].replace(" ", "-"),
        "data": dataset,
        "workload": report.get("workload", {}),
        "repeats": report.get("repeats"),
        "quick": report.get("quick", False),
        "memory_limit": report.get("memory_limit"),
        "command": report.get("command"),
        "commit": commit,
        "cores": report.get("machine", {}).get("cores"),
    }


def event_rows(report: dict) -> list[dict]:
    rows = []
    for layout, measured in report.get("layouts", {}).items():
        for engine in ("dbopt", "duckdb"):
            for i, q in enumerate(measured.get(engine) or []):
                rows.append(
                    {
                        "layout": layout,
                        "engine": engine,
                        "query": i,
                        "template": q.get("template"),
                        "latency_ms": q.get("latency_ms"),
                        "bytes_scanned": q.get("bytes_scanned"),
                        "table_bytes": q.get("table_bytes"),
                        "rows_returned": q.get("rows"),
                        "files_total": q.get("files_total"),
                        "files_pruned": q.get("files_pruned"),
                        "row_groups_total": q.get("row_groups_total"),
                        "row_groups_pruned": q.get("row_groups_pruned"),
                        "ideal_bytes": q.get("ideal_bytes"),
                        "bytes_over_ideal": q.get("bytes_over_ideal"),
                        "layouts_read": ",".join(q.get("layouts") or []),
                    }
                )
    return rows


def summary_row(report: dict) -> dict:
    """One row: the run's headline ratios (floats), when it ran and how long it took."""
    row = {
        "started_at": report["started_at"],
        "total_seconds": float(report.get("total_seconds") or 0.0),
        "migrated": bool(report.get("migrated", False)),
        "chosen": (report.get("chosen_proposal") or {}).get("description"),
        "predicted_over_measured": (report.get("prediction") or {}).get("predicted_over_measured"),
        "size_ratio": (report.get("size_check") or {}).get("ratio"),
    }
    for key, value in (report.get("ratios") or {}).items():
        if isinstance(value, (int, float)) or value is None:
            row[key] = None if value is None else float(value)
    return row


def summary_table(row: dict) -> pa.Table:
    fields = []
    for key, value in row.items():
        if key in ("started_at", "chosen"):
            fields.append((key, pa.string()))
        elif key == "migrated":
            fields.append((key, pa.bool_()))
        else:
            fields.append((key, pa.float64()))
            row[key] = None if value is None else float(value)
    schema = pa.schema(fields)
    return pa.Table.from_pylist([row], schema=schema)


def store_report(report: dict, binary: Path, store: Path = STORE, commit: str | None = None) -> str:
    """Writes one bench run into the store; returns dbopt's one-line answer."""
    commit = commit or head_commit()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "params.json").write_text(json.dumps(run_params(report, commit)))
        events = event_rows(report)
        pq.write_table(pa.Table.from_pylist(events, schema=EVENT_SCHEMA), tmp / "events.parquet")
        pq.write_table(summary_table(summary_row(report)), tmp / "seeds.parquet")
        args = [
            str(binary), "exp", "write", str(store),
            "--params-file", str(tmp / "params.json"),
            "--seed", str(SEED),
            "--seeds", str(tmp / "seeds.parquet"),
            "--partition-by", "dataset",
        ]
        if events:
            args += ["--events", str(tmp / "events.parquet")]
        out = subprocess.run(args, capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"dbopt exp write failed: {out.stderr.strip()}")
        return out.stdout.strip()


def history(binary: Path, store: Path = STORE) -> str:
    """The Markdown table of every stored full run, newest first, read back with `exp query`."""
    out = subprocess.run(
        [str(binary), "exp", "query", str(store), "seeds", "--where", "NOT quick", "--format", "json"],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise RuntimeError(f"dbopt exp query failed: {out.stderr.strip()}")
    rows = json.loads(out.stdout or "[]")
    rows.sort(key=lambda r: r.get("started_at", ""), reverse=True)

    def f(x):
        return "" if x is None else f"{x:.2f}"

    lines = [
        "| started | dataset | commit | grid | bytes initial/adapted | latency initial/adapted | bytes/ideal adapted | predicted/measured |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.get('started_at', '')} | {r.get('dataset', '')} | {r.get('commit', '')} | {r.get('grid_id', '')} "
            f"| {f(r.get('bytes_initial_over_adapted_total'))} | {f(r.get('latency_initial_over_adapted_total'))} "
            f"| {f(r.get('bytes_over_ideal_geomean_adapted'))} | {f(r.get('predicted_over_measured'))} |"
        )
    return "\n".join(lines)


BENCHMARKS = REPO / "BENCHMARKS.md"
HISTORY_HEADING = "## Every stored run"
HISTORY_INTRO = (
    "Read back from the experiment store (bench/results/store) with "
    "`python3 bench/store.py history`, i.e. `dbopt exp query bench/results/store seeds --where \"NOT quick\"`; "
    "each run's per-query measurements are its `events`."
)


def history_section(table: str) -> str:
    return f"{HISTORY_HEADING}\n\n{HISTORY_INTRO}\n\n{table}\n"


def write_history(table: str) -> None:
    """Replaces the history section of BENCHMARKS.md (or adds it before the kept analysis)."""
    text = BENCHMARKS.read_text()
    section = history_section(table)
    if HISTORY_HEADING in text:
        start = text.index(HISTORY_HEADING)
        rest = text[start + len(HISTORY_HEADING):]
        nxt = min((i for i in (rest.find("\n## "), rest.find("\n<!--")) if i >= 0), default=len(rest))
        text = text[:start] + section + ("\n" + rest[nxt + 1:] if nxt < len(rest) else "")
    else:
        marker = "<!-- analysis: kept across runs -->"
        at = text.index(marker) if marker in text else len(text)
        text = text[:at] + section + "\n" + text[at:]
    BENCHMARKS.write_text(text)


def default_binary() -> Path:
    import os

    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    for b in (target / "release" / "dbopt", target / "debug" / "dbopt"):
        if b.exists():
            return b
    sys.exit("error: no dbopt binary found: build it with `cargo build --release` or pass --binary")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=["backfill", "history"])
    p.add_argument("--binary", type=Path, help="dbopt binary (default: release build, else debug)")
    p.add_argument("--write-benchmarks", action="store_true", help="history: replace the table in BENCHMARKS.md")
    p.add_argument("--store", type=Path, default=STORE, help=f"the store (default {STORE.relative_to(REPO)})")
    args = p.parse_args()
    binary = args.binary or default_binary()
    if args.action == "history":
        table = history(binary, args.store)
        if args.write_benchmarks:
            write_history(table)
            print(f"updated {BENCHMARKS.relative_to(REPO)}")
        else:
            print(table)
        return 0
    for path in sorted(RESULTS.glob("*.json")):
        report = json.loads(path.read_text())
        if "started_at" not in report or "dataset" not in report:
            print(f"skipped {path.name}: not a run report", file=sys.stderr)
            continue
        print(f"{path.name}: {store_report(report, binary, args.store, commit_at(report['started_at']))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
