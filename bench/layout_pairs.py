#!/usr/bin/env python3
"""Which table's layout makes a join slower: the same queries on every combination of two
tables' layouts (each table's initial layout and its active one), in one run.

A workspace left by `bench/run.py --dataset tpch --keep` holds lineitem and orders each with
an initial and an adapted layout. This script runs rounds: in each, every combination is
activated in turn (`dbopt activate-layout`, the order reversed every other round, ABBA) and
the chosen queries replayed with `run-workload` (a warm-up run, then the hot runs; engine time
from the query log). A slow spell of the machine then falls on every combination alike, which
consecutive phases cannot promise. It restores the active layouts and prints one row per
template: the median over rounds on each combination, divided by both tables initial.

    python3 bench/run.py --dataset tpch --scale-factor 1 --no-delta --no-server --keep --workdir /tmp/tpch1
    python3 bench/layout_pairs.py --workdir /tmp/tpch1 --templates q21,q9,q4,q17,q13,q11 --per-template 2

Asserts no timing: it reports ratios measured side by side on the same machine in one run.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import Dbopt, find_binary, replay  # noqa: E402


def queries(db: Dbopt, workload: str, templates: list[str], per_template: int, seed: int) -> list[dict]:
    """`per_template` queries of each template, drawn by `dbopt workload-sql`."""
    out, _, _ = db.run("workload-sql", "--workload", workload, "--num-queries", str(40 * per_template * len(templates)), "--seed", str(seed))
    picked: dict[str, list[dict]] = {t: [] for t in templates}
    for line in out.splitlines():
        if line.strip():
            q = json.loads(line)
            if q["template"] in picked and len(picked[q["template"]]) < per_template:
                picked[q["template"]].append(q)
    missing = [t for t, qs in picked.items() if not qs]
    if missing:
        raise SystemExit(f"error: the workload {workload} drew no query of {', '.join(missing)}")
    return [q for t in templates for q in picked[t]]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", type=Path, required=True, help="workspace kept by bench/run.py --keep")
    p.add_argument("--tables", default="lineitem,orders", help="the two tables whose layouts are combined")
    p.add_argument("--log-table", default="lineitem", help="table the queries are logged against")
    p.add_argument("--workload", default="tpch-filter", help="workload-sql generator")
    p.add_argument("--templates", required=True, help="comma-separated templates to replay")
    p.add_argument("--per-template", type=int, default=3, help="queries per template (fresh literals)")
    p.add_argument("--repeats", type=int, default=2, help="runs per query in each round (first is a warm-up)")
    p.add_argument("--rounds", type=int, default=6, help="rounds over every combination (ABBA order)")
    p.add_argument("--seed", type=int, default=33)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--memory-limit", default="4GiB")
    p.add_argument("--binary", type=Path, help="dbopt binary (default: release build, else debug)")
    args = p.parse_args()

    binary = find_binary(args.binary)
    if binary is None:
        raise SystemExit("error: no dbopt binary found: build it with `cargo build --release` or pass --binary")
    db = Dbopt(binary.resolve(), args.workdir, args.threads, args.memory_limit)
    tables = args.tables.split(",")
    info = db.tables()
    active = {t: info[t]["active_layout"] for t in tables}
    if any(active[t] == "initial" for t in tables):
        raise SystemExit(f"error: each of {', '.join(tables)} needs an adapted active layout (run bench/run.py first)")
    qs = queries(db, args.workload, args.templates.split(","), args.per_template, args.seed)

    combos = list(itertools.product(*[["initial", active[t]] for t in tables]))
    # Per combination and template: the template's summed latency in each round.
    rounds: dict[tuple[str, ...], dict[str, list[float]]] = {c: {} for c in combos}
    try:
        for k in range(args.rounds):
            for combo in combos if k % 2 == 0 else combos[::-1]:
                for t, layout in zip(tables, combo):
                    db.run("activate-layout", "--table-name", t, "--layout", layout)
                runs = replay(db, args.log_table, qs, args.repeats, "pairs_" + "_".join(c[:8] for c in combo))
                per: dict[str, float] = {}
                for r in runs:
                    per[r["template"]] = per.get(r["template"], 0.0) + r["latency_ms"]
                for template, ms in per.items():
                    rounds[combo].setdefault(template, []).append(ms)
    finally:
        for t in tables:
            db.run("activate-layout", "--table-name", t, "--layout", active[t])
    results = {c: {t: statistics.median(v) for t, v in per.items()} for c, per in rounds.items()}

    base = combos[0]
    names = [" + ".join(f"{t} {'initial' if c == 'initial' else 'adapted'}" for t, c in zip(tables, combo)) for combo in combos]
    print(f"| template | ms, {names[0]} | " + " | ".join(f"{n} / first" for n in names[1:]) + " |")
    print("|---" * len(combos) + "|---|")
    for template in results[base]:
        b = results[base][template]
        cells = [f"{results[c][template] / b:.2f}" for c in combos[1:]]
        print(f"| {template} | {b / args.per_template:.1f} | " + " | ".join(cells) + " |")
    print(f"\n{args.per_template} queries per template, {args.rounds} rounds of {args.repeats} runs each (median over rounds of the hot runs); "
          f"binary {db.binary}; layouts: " + ", ".join(f"{t} {active[t]}" for t in tables))
    return 0


if __name__ == "__main__":
    sys.exit(main())
