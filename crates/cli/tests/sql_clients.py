"""Real PostgreSQL clients against `dbopt serve --sql-addr`, checked against DuckDB.

Run by crates/cli/tests/sql_endpoint.rs:

    python3 sql_clients.py HOST PORT DATA_DIR [--password P] [--tls]

psycopg (extended protocol, server-side parameters) and psql (simple protocol) run the same
queries; each answer, with its types (timestamptz, date, float with nulls, text), must equal
what DuckDB reads from the table's initial layout files. Exits 1 with the first mismatch.
"""

import argparse
import datetime as dt
import os
import subprocess
import sys

import duckdb
import psycopg


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("data_dir")
    ap.add_argument("--password", default=None)
    ap.add_argument("--tls", action="store_true")
    args = ap.parse_args()

    files = os.path.join(args.data_dir, "events", "layout_initial", "**", "*.parquet")
    duck = duckdb.connect()
    duck.execute("SET TimeZone = 'UTC'")
    duck.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet('{files}')")

    conninfo = dict(host=args.host, port=args.port, user="dbopt", dbname="dbopt")
    if args.password is not None:
        conninfo["password"] = args.password
    conninfo["sslmode"] = "require" if args.tls else "disable"

    checks = [
        # (SQL with %s placeholders for psycopg, params, DuckDB SQL with ? placeholders)
        (
            "SELECT event_id, event_ts, event_date, amount, referrer, country FROM events "
            "WHERE event_id BETWEEN %s AND %s ORDER BY event_id",
            (100, 140),
            "SELECT event_id, event_ts, event_date, amount, referrer, country FROM events "
            "WHERE event_id BETWEEN ? AND ? ORDER BY event_id",
        ),
        (
            "SELECT country, count(*) AS n, sum(amount) AS total FROM events "
            "WHERE event_date >= %s AND event_type = %s GROUP BY country ORDER BY country",
            (dt.date(2025, 3, 1), "purchase"),
            "SELECT country, count(*) AS n, sum(amount) AS total FROM events "
            "WHERE event_date >= ? AND event_type = ? GROUP BY country ORDER BY country",
        ),
        (
            "SELECT count(*) FROM events WHERE event_ts < %s AND amount IS NULL",
            (dt.datetime(2025, 2, 1, tzinfo=dt.timezone.utc),),
            "SELECT count(*) FROM events WHERE event_ts < ? AND amount IS NULL",
        ),
    ]
    with psycopg.connect(**conninfo) as conn:
        if args.tls:
            assert conn.pgconn.ssl_in_use, "TLS was asked for but the connection is plain"
        for sql, params, duck_sql in checks:
            got = conn.execute(sql, params).fetchall()
            want = duck.execute(duck_sql, list(params)).fetchall()
            if not same(got, want):
                print(f"psycopg: {sql} {params}\n  got  {got[:3]}\n  want {want[:3]}")
                return 1
            if not got or not got[0]:
                print(f"psycopg: {sql} returned nothing; the check would prove nothing")
                return 1
        # A statement the endpoint refuses leaves the session usable.
        try:
            conn.execute("DELETE FROM events")
            print("psycopg: DELETE was not refused")
            return 1
        except psycopg.errors.ReadOnlySqlTransaction:
            conn.rollback()
        if conn.execute("SELECT 1 AS one").fetchone() != (1,):
            print("psycopg: the session did not recover after an error")
            return 1

    # psql: the simple protocol, several statements in one message.
    env = dict(os.environ)
    if args.password is not None:
        env["PGPASSWORD"] = args.password
    env["PGSSLMODE"] = "require" if args.tls else "disable"
    out = subprocess.run(
        [
            "psql", "-h", args.host, "-p", str(args.port), "-U", "dbopt", "-d", "dbopt",
            "-X", "-At", "-v", "ON_ERROR_STOP=1",
            "-c", "SELECT count(*) FROM events WHERE country = 'US'; SELECT max(event_date) FROM events",
        ],
        capture_output=True, text=True, env=env, timeout=120,
    )
    if out.returncode != 0 or out.stderr.strip():
        # psql warns on stderr (exit 0) about a malformed command tag such as "SELECT 20 20".
        print(f"psql failed ({out.returncode}): {out.stderr}")
        return 1
    lines = out.stdout.split()
    want = duck.execute(
        "SELECT (SELECT count(*) FROM events WHERE country = 'US'), "
        "(SELECT max(event_date) FROM events)"
    ).fetchone()
    if lines != [str(want[0]), str(want[1])]:
        print(f"psql: got {lines}, want {want}")
        return 1
    print("ok: psycopg and psql agree with DuckDB")
    return 0


def same(got, want) -> bool:
    if len(got) != len(want):
        return False
    for g, w in zip(got, want):
        if len(g) != len(w):
            return False
        for a, b in zip(g, w):
            if isinstance(a, float) or isinstance(b, float):
                if a is None or b is None:
                    if a is not b:
                        return False
                elif abs(a - b) > 1e-6 * max(1.0, abs(b)):
                    return False
            elif isinstance(a, dt.datetime) and isinstance(b, dt.datetime):
                if a.tzinfo is None or b.tzinfo is None or a != b:
                    return False
            elif a != b or type(a) is not type(b):
                return False
    return True


if __name__ == "__main__":
    sys.exit(main())
