#!/usr/bin/env python3
"""DuckDB peer of crates/dbopt/tests/differential.rs.

Reads one JSON request on stdin:
    {"targets": {"<name>": {"<table>": "<layout dir>", ...}, ...},
     "queries": ["SELECT ...", ...]}
and writes on stdout, for every target and query, either the result rows or the error:
    {"<name>": [{"rows": [[cell, ...], ...]} | {"error": "..."}, ...], ...}
Cells are tagged so both engines normalize to the same values:
    ["n"] NULL, ["i", "<decimal integer>"], ["f", <float> | "nan" | "inf" | "-inf"],
    ["dec", <float>, <scale>], ["s", "<text>"], ["b", true], ["d", <days since epoch>],
    ["t", <microseconds since epoch, UTC>], ["o", "<other, as text>"].
Every directory is read with hive partitioning on, as any engine reading a layout would.
"""

import json
import math
import sys

import duckdb
import pyarrow as pa


def connect(tables: dict) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET threads TO 1")
    con.execute("SET TimeZone = 'UTC'")
    for table, d in tables.items():
        con.execute(
            f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM read_parquet('{d}/**/*.parquet', "
            "hive_partitioning = true)"
        )
    return con


def floats(v):
    if v is None:
        return ["n"]
    if math.isnan(v):
        return ["f", "nan"]
    if math.isinf(v):
        return ["f", "inf" if v > 0 else "-inf"]
    return ["f", v]


def column_cells(col: pa.ChunkedArray) -> list:
    t = col.type
    if pa.types.is_dictionary(t):
        col = col.cast(t.value_type)
        t = t.value_type
    if pa.types.is_null(t):
        return [["n"]] * len(col)
    if pa.types.is_boolean(t):
        return [["n"] if v is None else ["b", v] for v in col.to_pylist()]
    if pa.types.is_integer(t):
        return [["n"] if v is None else ["i", str(v)] for v in col.to_pylist()]
    if pa.types.is_floating(t):
        return [floats(v) for v in col.to_pylist()]
    if pa.types.is_decimal(t):
        if t.scale == 0:
            return [["n"] if v is None else ["i", str(int(v))] for v in col.to_pylist()]
        return [["n"] if v is None else ["dec", float(v), t.scale] for v in col.to_pylist()]
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return [["n"] if v is None else ["s", v] for v in col.to_pylist()]
    if pa.types.is_date32(t):
        return [["n"] if v is None else ["d", v] for v in col.cast(pa.int32()).to_pylist()]
    if pa.types.is_date64(t):
        return [["n"] if v is None else ["d", v // 86_400_000] for v in col.cast(pa.int64()).to_pylist()]
    if pa.types.is_timestamp(t):
        per_us = {"s": None, "ms": None, "us": 1, "ns": 1000}
        raw = col.cast(pa.timestamp(t.unit, tz=t.tz)).cast(pa.int64()).to_pylist()
        if t.unit == "s":
            conv = lambda v: v * 1_000_000
        elif t.unit == "ms":
            conv = lambda v: v * 1000
        else:
            conv = lambda v, d=per_us[t.unit]: v // d
        return [["n"] if v is None else ["t", conv(v)] for v in raw]
    return [["n"] if v is None else ["o", str(v)] for v in col.to_pylist()]


def run(con, sql: str) -> dict:
    try:
        table = con.sql(sql).to_arrow_table()
    except duckdb.Error as e:
        return {"error": str(e).splitlines()[0][:300]}
    cols = [column_cells(table.column(i)) for i in range(table.num_columns)]
    return {"rows": [list(r) for r in zip(*cols)] if cols else []}


def main() -> None:
    request = json.load(sys.stdin)
    out = {}
    for name, tables in request["targets"].items():
        con = connect(tables)
        out[name] = [run(con, q) for q in request["queries"]]
        con.close()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
