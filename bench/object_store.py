#!/usr/bin/env python3
"""Local disk against object storage, side by side in one run (issue #19, first figures).

Starts moto's S3 server on loopback (`moto[server]`, bench/requirements.txt), generates the
events table, and times with the same binary:
  1. `export-layout` of the initial layout to s3://bench/events/ (multipart uploads);
  2. `load-dataset` of the same Parquet files from a local directory and from that prefix;
  3. one full scan of each loaded table (both local after the load, so the scans should match);
  4. the events loop with DATA_DIR on local disk, with DATA_DIR=s3://bench/ws/, and with
     DATA_DIR=s3://bench/cluster/ on a Ballista cluster of two executors started with the
     store's settings: generate, a workload, a sort(event_date) rewrite published and
     activated, the same workload again, gc. The workspaces must log about the same bytes.

moto is a Python server on the same 2 cores, so the object-store figures are a lower bound on
what a real S3 endpoint gives: the ratio shows dbopt's object-store path (listing, footer range
requests, streamed scan, multipart upload) against local reads, not S3's throughput. No timing
is asserted anywhere.

    python3 bench/object_store.py --rows 1000000 --binary ~/.cache/dbopt-release/release/dbopt
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from net import free_port, wait_listening  # noqa: E402
from run import Dbopt, measure_server  # noqa: E402
from ballista import Cluster  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def start_moto() -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_listening(port, "moto (pip install -r bench/requirements.txt)")
    except SystemExit:
        proc.kill()
        raise
    return proc, f"http://127.0.0.1:{port}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--queries", type=int, default=40, help="queries per workload of the events loop")
    p.add_argument("--binary", type=Path, default=ROOT / "target" / "release" / "dbopt")
    p.add_argument("--workdir", type=Path, default=None, help="kept when given")
    args = p.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="dbopt-objstore-"))
    workdir.mkdir(parents=True, exist_ok=True)
    moto, endpoint = start_moto()
    try:
        report = run(args, workdir, endpoint)
    finally:
        moto.kill()
        moto.wait()
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = ROOT / "bench" / "results" / f"object-store-{stamp}"
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    print(f"results: {out}.json and .md")


def run(args, workdir: Path, endpoint: str) -> dict:
    import boto3

    db = Dbopt(args.binary, workdir, threads=0, memory_limit="2GiB")
    db.env.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_REGION="us-east-1",
    )
    boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id="bench", aws_secret_access_key="bench", region_name="us-east-1"
    ).create_bucket(Bucket="bench")
    db.run("generate", "--table-name", "events", "--num-rows", str(args.rows), "--seed", "42", "--order", "shuffled")
    local = workdir / "local-copy"
    shutil.copytree(db.data_dir / "events" / "layout_initial", local)
    (local / "_dbopt_layout.json").unlink()
    size = sum(f.stat().st_size for f in local.glob("*.parquet"))

    _, export_s, _ = db.run("export-layout", "--table-name", "events", "--to", "s3://bench/events/")
    _, load_local_s, _ = db.run("load-dataset", "--table-name", "from_local", "--source-path", str(local))
    _, load_s3_s, _ = db.run("load-dataset", "--table-name", "from_s3", "--source-path", "s3://bench/events/")
    scans = {}
    for table in ("from_local", "from_s3"):
        sql = f"SELECT count(*) AS n, round(sum(amount), 2) AS amount, count(DISTINCT session_id) AS sessions FROM {table}"
        out, scan_s, _ = db.run("query", "--table-name", table, "--format", "json", sql)
        scans[table] = {"seconds": scan_s, "result": json.loads(out)}
    same = scans["from_local"]["result"] == scans["from_s3"]["result"]
    delta = register_delta(args, workdir, endpoint, local)
    iceberg = iceberg_loop(args, workdir, endpoint, local)
    loops = [events_loop(args, workdir / name, endpoint, data_dir, served=True) for name, data_dir in
             (("loop-local", None), ("loop-s3", "s3://bench/ws/"))]
    cluster = Cluster(args.binary, 2, workdir / "cluster", env=store_env(endpoint))
    try:
        loops.append(events_loop(args, workdir / "loop-s3-cluster", endpoint, "s3://bench/cluster/", cluster.address))
    finally:
        cluster.stop()
    return {
        "rows": args.rows,
        "parquet_bytes": size,
        "binary": str(args.binary),
        "cores": os.cpu_count(),
        "endpoint": "moto (Python, loopback)",
        "export_seconds": export_s,
        "load_local_seconds": load_local_s,
        "load_s3_seconds": load_s3_s,
        "scan_local_seconds": scans["from_local"]["seconds"],
        "scan_s3_loaded_seconds": scans["from_s3"]["seconds"],
        "same_result": same,
        "delta_register": delta,
        "iceberg": iceberg,
        "results": {t: scans[t]["result"] for t in scans},
        "queries": args.queries,
        "loops": loops,
        # Two runs of the same loop write slightly different files (parallel writers, sort
        # ties), so per-query bytes differ a little even between two local runs: totals compared.
        "loop_bytes_ratio": {
            phase: loops[1][f"bytes_{phase}"] / loops[0][f"bytes_{phase}"] for phase in ("initial", "adapted")
        },
        "cluster_bytes_ratio": {
            phase: loops[2][f"bytes_{phase}"] / loops[0][f"bytes_{phase}"] for phase in ("initial", "adapted")
        },
    }


def register_delta(args, workdir: Path, endpoint: str, parquet_dir: Path) -> dict:
    """`register-table --delta` of the same rows written by `deltalake` on local disk (linked)
    and in the bucket (copied server-side into DATA_DIR, then read back for the digest)."""
    import deltalake
    import pyarrow.dataset as ds

    rows = ds.dataset(str(parquet_dir)).to_table()
    options = {"AWS_ALLOW_HTTP": "true", "conditional_put": "etag", **store_env(endpoint)}
    out = {}
    for name, location in (("local", str(workdir / "delta-events")), ("s3", "s3://bench/delta/events")):
        deltalake.write_deltalake(location, rows, storage_options=options if name == "s3" else None)
        (workdir / f"delta-{name}").mkdir(parents=True, exist_ok=True)
        db = Dbopt(args.binary, workdir / f"delta-{name}", threads=0, memory_limit="2GiB")
        db.env.update(store_env(endpoint))
        if name == "s3":
            db.env["DATA_DIR"] = "s3://bench/delta-ws/"
        _, out[name], _ = db.run("register-table", "--table-name", "events", "--delta", location)
    return out


def iceberg_loop(args, workdir: Path, endpoint: str, parquet_dir: Path) -> dict:
    """The same rows as an Iceberg table written by pyiceberg (SQL catalog on local SQLite), its
    warehouse on local disk and in the bucket: `register-table` (linked, or copied server-side),
    a sort(event_date) rewrite, and `promote` (a replace snapshot: the layout's files placed in
    the table, manifests and metadata written, the catalog swapped). Seconds of each step."""
    import pyarrow as pa
    import pyarrow.dataset as ds
    from pyiceberg.catalog.sql import SqlCatalog

    rows = ds.dataset(str(parquet_dir)).to_table()
    # Iceberg has no 8- or 16-bit integers and no unsigned ones.
    fields = [pa.field(f.name, pa.int32() if pa.types.is_integer(f.type) and f.type.bit_width < 32
                       else pa.int64() if pa.types.is_unsigned_integer(f.type) else f.type)
              for f in rows.schema]
    rows = rows.cast(pa.schema(fields))
    s3 = {"s3.endpoint": endpoint, "s3.access-key-id": "bench", "s3.secret-access-key": "bench",
          "s3.region": "us-east-1"}
    out = {}
    for name, warehouse in (("local", f"file://{workdir / 'iceberg-local'}"), ("s3", "s3://bench/iceberg")):
        home = workdir / f"iceberg-{name}"
        home.mkdir(parents=True, exist_ok=True)
        catalog = SqlCatalog("default", uri=f"sqlite:///{home}/catalog.db", warehouse=warehouse,
                             **(s3 if name == "s3" else {}))
        catalog.create_namespace("db")
        catalog.create_table("db.events", schema=rows.schema).append(rows)
        (home / "ws").mkdir(exist_ok=True)
        db = Dbopt(args.binary, home / "ws", threads=0, memory_limit="2GiB")
        db.env.update(store_env(endpoint))
        if name == "s3":
            db.env["DATA_DIR"] = "s3://bench/iceberg-ws/"
        steps = {}
        _, steps["register"], _ = db.run("register-table", "--table-name", "events", "--iceberg-catalog",
                                         f"sqlite:///{home}/catalog.db", "--iceberg-table", "db.events")
        enqueued, _, _ = db.run("enqueue-migration", "--table-name", "events", "--sort-by", "event_date")
        layout = next(w for w in enqueued.split() if len(w) == 16 and all(c in "0123456789abcdef" for c in w))
        _, steps["rewrite"], _ = db.run("migration-worker", "--once")
        _, steps["promote"], _ = db.run("promote", "--table-name", "events", "--layout", layout)
        _, steps["rollback"], _ = db.run("rollback", "--table-name", "events")
        out[name] = steps
    return out


def logged_bytes(db: Dbopt, since_id: int) -> tuple[int, list[int]]:
    """The last query-log id and the bytes each query after `since_id` scanned."""
    con = sqlite3.connect(db.metadata_db)
    rows = con.execute("SELECT id, bytes_scanned FROM query_log WHERE id > ? ORDER BY id", (since_id,)).fetchall()
    con.close()
    return (rows[-1][0] if rows else since_id), [b for _, b in rows]


def store_env(endpoint: str) -> dict:
    """The object store's settings, for dbopt and the cluster's processes."""
    return {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_REGION": "us-east-1"}


def events_loop(args, workdir: Path, endpoint: str, data_dir: str | None, ballista: str | None = None,
                served: bool = False) -> dict:
    """The events loop in a fresh workspace, its layouts in `data_dir` (None: local disk), its
    queries and rewrite on the Ballista scheduler `ballista` when given; with `served`, the
    adapted workload's queries also through `dbopt serve`, its column-chunk cache on and off."""
    workdir.mkdir(parents=True, exist_ok=True)
    db = Dbopt(args.binary, workdir, threads=0, memory_limit="2GiB")
    db.env.update(store_env(endpoint))
    if data_dir:
        db.env["DATA_DIR"] = data_dir
    if ballista:
        db.env["DBOPT_BALLISTA"] = ballista
    steps = {}
    _, steps["generate"], _ = db.run("generate", "--table-name", "events", "--num-rows", str(args.rows), "--seed", "42",
                                     "--order", "shuffled")
    workload = ("run-workload", "--table-name", "events", "--num-queries", str(args.queries), "--seed", "5")
    _, steps["workload_initial"], _ = db.run(*workload)
    last_id, initial_bytes = logged_bytes(db, 0)
    _, steps["propose"], _ = db.run("propose", "--table-name", "events")
    db.run("enqueue-migration", "--table-name", "events", "--sort-by", "event_date", "--activate")
    _, steps["rewrite"], _ = db.run("migration-worker", "--once")
    _, steps["workload_adapted"], _ = db.run(*workload)
    _, adapted_bytes = logged_bytes(db, last_id)
    _, steps["gc"], _ = db.run("gc", "--table-name", "events")
    server = served_with_and_without_cache(db, last_id) if served else None
    return {
        "data_dir": data_dir or "local disk",
        "ballista": ballista,
        "server": server,
        "seconds": steps,
        "bytes_initial": sum(initial_bytes),
        "bytes_adapted": sum(adapted_bytes),
        "bytes_per_query": initial_bytes + adapted_bytes,
    }


def served_with_and_without_cache(db: Dbopt, since_id: int) -> dict:
    """The adapted workload's distinct queries through `dbopt serve` (psycopg; each run three
    times, the first warming), with the column-chunk cache at its default and off: the sums of
    the per-query medians of the hot runs."""
    con = sqlite3.connect(db.metadata_db)
    sqls = [r[0] for r in con.execute("SELECT sql FROM query_log WHERE id > ? ORDER BY id", (since_id,))]
    con.close()
    queries = [{"sql": q, "template": str(i)} for i, q in enumerate(dict.fromkeys(sqls))]
    out = {}
    for name, size in (("cache_on", None), ("cache_off", "0")):
        saved = dict(db.env)
        if size is not None:
            db.env["DBOPT_CACHE_MAX_BYTES"] = size
        try:
            measured = measure_server(db, "events", queries, repeats=2)
        finally:
            db.env = saved
        out[name] = {
            "latency_ms_total": sum(q["latency_ms"] for q in measured["queries"]),
            "chunk_cache_hit_rate": measured["chunk_cache_hit_rate"],
        }
    out["queries"] = len(queries)
    return out


def markdown(r: dict) -> str:
    mib = r["parquet_bytes"] / 2**20
    rate = lambda s: f"{mib / s:.1f} MiB/s" if s > 0 else "-"  # noqa: E731
    lines = [
        f"# Local disk against object storage ({r['rows']:,} events, {mib:.1f} MiB of Parquet)",
        "",
        f"Binary `{r['binary']}`, {r['cores']} cores, endpoint: {r['endpoint']}. Wall times of whole commands.",
        "",
        "| step | local | object store | object store / local |",
        "|---|---|---|---|",
        f"| load-dataset (list, check footers, stream, write the initial layout) | {r['load_local_seconds']:.2f} s "
        f"({rate(r['load_local_seconds'])}) | {r['load_s3_seconds']:.2f} s ({rate(r['load_s3_seconds'])}) | "
        f"{r['load_s3_seconds'] / r['load_local_seconds']:.2f} |",
        f"| export-layout (multipart upload, manifest last) | - | {r['export_seconds']:.2f} s ({rate(r['export_seconds'])}) | |",
        f"| full scan of the loaded table (local in both) | {r['scan_local_seconds']:.2f} s | "
        f"{r['scan_s3_loaded_seconds']:.2f} s | {r['scan_s3_loaded_seconds'] / r['scan_local_seconds']:.2f} |",
        "",
        f"Same rows and aggregates from both loads: {'yes' if r['same_result'] else 'NO'}.",
        "",
        f"`register-table --delta` of the same rows written by deltalake: {r['delta_register']['local']:.2f} s on "
        f"local disk (hard links, then the digest), {r['delta_register']['s3']:.2f} s in the bucket (server-side "
        f"copies into DATA_DIR, then the digest read back by range requests): "
        f"{r['delta_register']['s3'] / r['delta_register']['local']:.2f}x.",
        "",
        "The same rows as an Iceberg table written by pyiceberg, its warehouse on local disk and in the "
        "bucket (DATA_DIR in the same bucket):",
        "",
        "| step | local | object store | object store / local |",
        "|---|---|---|---|",
        *[f"| {step} | {r['iceberg']['local'][step]:.2f} s | {r['iceberg']['s3'][step]:.2f} s | "
          f"{r['iceberg']['s3'][step] / r['iceberg']['local'][step]:.2f} |" for step in r["iceberg"]["local"]],
        "",
        f"## The events loop with DATA_DIR on local disk and on the object store ({r['rows']:,} rows, "
        f"{r['queries']} queries per workload)",
        "",
        "| step | local DATA_DIR | DATA_DIR=s3:// | object store / local | s3:// on 2 Ballista executors "
        "| cluster on s3 / local |",
        "|---|---|---|---|---|---|",
    ]
    local, remote, cluster = r["loops"]
    for step, seconds in local["seconds"].items():
        other, far = remote["seconds"][step], cluster["seconds"][step]
        lines.append(f"| {step} | {seconds:.2f} s | {other:.2f} s | {other / seconds:.2f} | {far:.2f} s "
                     f"| {far / seconds:.2f} |")
    lines += [
        "",
        f"Bytes scanned, initial / adapted layout: local {local['bytes_initial'] / 2**20:.1f} / "
        f"{local['bytes_adapted'] / 2**20:.1f} MiB, object store {remote['bytes_initial'] / 2**20:.1f} / "
        f"{remote['bytes_adapted'] / 2**20:.1f} MiB (object store / local: "
        f"{r['loop_bytes_ratio']['initial']:.3f} and {r['loop_bytes_ratio']['adapted']:.3f}; two runs of "
        "the loop write slightly different files, so per-query bytes differ a little even between two local runs). "
        f"On the cluster: {cluster['bytes_initial'] / 2**20:.1f} / {cluster['bytes_adapted'] / 2**20:.1f} MiB "
        f"({r['cluster_bytes_ratio']['initial']:.3f} and {r['cluster_bytes_ratio']['adapted']:.3f} of local; each "
        "executor reads footers and page indexes itself).",
        "",
    ]
    if local.get("server") and remote.get("server"):
        ls, rs = local["server"], remote["server"]
        lines += [
            f"### The adapted workload through `dbopt serve` ({rs['queries']} distinct queries, psycopg, "
            "sum of per-query medians of the hot runs)",
            "",
            "| column-chunk cache | local DATA_DIR | DATA_DIR=s3:// | object store / local |",
            "|---|---|---|---|",
        ]
        for name, label in (("cache_off", "off (cache_max_bytes = 0)"), ("cache_on", "on (1 GiB, default)")):
            a, b = ls[name]["latency_ms_total"], rs[name]["latency_ms_total"]
            rate = rs[name]["chunk_cache_hit_rate"]
            hit = f", hit rate {rate:.0%}" if rate is not None else ""
            lines.append(f"| {label} | {a:.0f} ms | {b:.0f} ms{hit} | {b / a:.2f} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
