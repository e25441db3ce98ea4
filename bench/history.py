"""Store size and `siqctl host show` latency with 50 hosts' history over 30 days.

Run: .venv/bin/python bench/history.py [--hosts N] [--days D] [--postgres URL]

It writes what the store contains in steady state after D days at a 10 s
interval: the last 48 hours of raw samples and D days of 5-minute roll-ups,
for N hosts with 28 series each (cpu, 3 loads, memory, swap, processes,
uptime, 4 mounts x 3 disk metrics, 2 block devices and 2 network
interfaces x 2 rates). Rows go in with bulk inserts rather than through
siqd, so seeding takes minutes, not days. It then prints the store's size
and times siqctl's history commands on one of the hosts.

Budget: `siqctl host show` over 30 days of history under 100 ms.
"""

import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from siqd.store import open_store

sys.path.insert(0, str(Path(__file__).parent))
from common import pop_option, postgres_schema, time_command  # noqa: E402

INTERVAL = 10.0
RAW_HOURS = 48
ROLLUP = 300.0
RUNS = 11
BUDGET_MS = 100.0

MOUNTS = ("/", "/var", "/srv", "/home")
SERIES = (
    [("cpu.percent", {}, "%"), ("load.per_core_1m", {}, ""), ("load.per_core_5m", {}, ""),
     ("load.per_core_15m", {}, ""), ("memory.used_percent", {}, "%"), ("swap.used_percent", {}, "%"),
     ("procs.count", {}, ""), ("uptime.seconds", {}, "s")]
    + [(metric, {"mount": mount}, unit) for mount in MOUNTS
       for metric, unit in (("disk.used_percent", "%"), ("disk.used_bytes", "B"), ("disk.inodes_used_percent", "%"))]
    + [(metric, {"device": device}, "B/s") for device in ("sda", "sdb")
       for metric in ("disk.read_bytes_per_s", "disk.write_bytes_per_s")]
    + [(metric, {"nic": nic}, "B/s") for nic in ("eth0", "eth1")
       for metric in ("net.in_bytes_per_s", "net.out_bytes_per_s")]
)


def level(rng: random.Random, metric: str) -> float:
    if metric.endswith("percent"):
        return rng.uniform(5, 80)
    if metric == "disk.used_bytes":
        return rng.uniform(10e9, 400e9)
    if metric.endswith("per_s"):
        return rng.uniform(1e3, 50e6)
    return rng.uniform(0.1, 300)


def seed_host(store, host: str, now: float, days: float, rng: random.Random) -> int:
    """Write one host's raw samples and roll-ups; return how many rows went in."""
    with store.transaction():
        ids = [(store.series_id(host, metric, labels, unit), level(rng, metric)) for metric, labels, unit in SERIES]
        store.mark_host_seen(host, now - days * 86400, INTERVAL, "bench")
        store.mark_host_seen(host, now, INTERVAL, "bench")
    raw_start = now - RAW_HOURS * 3600
    rolled_until = now - now % ROLLUP - ROLLUP
    first_bucket = now - days * 86400
    first_bucket -= first_bucket % ROLLUP

    def wave(base: float, ts: float) -> float:
        return base * (1 + 0.2 * math.sin(ts / 5000.0))

    rollups = [(series_id, bucket, wave(base, bucket) * 0.9, wave(base, bucket), wave(base, bucket) * 1.1, 30)
               for series_id, base in ids
               for bucket in _steps(first_bucket, rolled_until, ROLLUP)]
    samples = [(series_id, ts, wave(base, ts)) for series_id, base in ids
               for ts in _steps(raw_start, now, INTERVAL)]
    with store.transaction():
        _bulk(store, "rollups", ("series_id", "bucket", "min_value", "avg_value", "max_value", "samples"), rollups)
        _bulk(store, "samples", ("series_id", "ts", "value"), samples)
        store.execute("INSERT INTO rollup_progress (host, rolled_until) VALUES (?, ?)", (host, rolled_until))
    return len(rollups) + len(samples)


def _steps(start: float, end: float, step: float) -> list[float]:
    return [start + index * step for index in range(int((end - start) // step))]


def _bulk(store, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    cursor = store.connection.cursor()
    if store.kind == "postgresql":
        with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        marks = ", ".join("?" for _ in columns)
        cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)


def run(kind: str, location: str, folder: Path, hosts: int, days: float) -> dict:
    """Seed the store at `location`, print its size and the timings, and return them."""
    store = open_store(location)
    rng = random.Random(1)
    now = time.time()
    started = time.perf_counter()
    rows = sum(seed_host(store, f"host-{index:02d}", now, days, rng) for index in range(hosts))
    seeded = time.perf_counter() - started
    if store.kind == "sqlite":
        store.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    if store.kind == "postgresql":  # this schema's tables with their indexes, not the whole database
        size = int(store.scalar("SELECT SUM(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n "
                                "ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'"))
    else:
        size = store.size_bytes()
    store.close()
    print(f"{kind}: {hosts} hosts x {len(SERIES)} series, {days:g} days of 5-minute roll-ups "
          f"and {RAW_HOURS} h of raw samples")
    print(f"  {'rows':<34}{rows:>14,}   (seeded in {seeded:.0f} s)")
    print(f"  {'store size':<34}{size / 1e6:>11,.0f} MB   ({size / rows:.0f} bytes a row, "
          f"{size / hosts / 1e6:.0f} MB a host)")

    config = folder / "siq.toml"
    config.write_text(f'host = "bench"\nstore = "{location}"\n')
    env = dict(os.environ, SIQ_CONFIG=str(config))
    siqctl = str(Path(sys.executable).parent / "siqctl")
    host = f"host-{min(7, hosts - 1):02d}"
    cases = [
        (f"siqctl host show {host}", [siqctl, "host", "show", host]),
        (f"siqctl host show {host} --since 7d", [siqctl, "host", "show", host, "--since", "7d"]),
        (f"siqctl host show {host} --since {days:g}d", [siqctl, "host", "show", host, "--since", f"{days:g}d"]),
        ("siqctl hosts", [siqctl, "hosts"]),
        (f"siqctl metrics {host} cpu.percent --since {days:g}d",
         [siqctl, "metrics", host, "cpu.percent", "--since", f"{days:g}d"]),
    ]
    figures = {"rows": rows, "size_bytes": size, "series": len(SERIES), "timings_ms": {}}
    for name, command in cases:
        median, _ = time_command(command, env, RUNS)
        figures["timings_ms"][name.replace(host, "HOST")] = median
        verdict = ""
        if name.startswith("siqctl host show"):
            verdict = f"   budget {BUDGET_MS:.0f} ms: {'met' if median < BUDGET_MS else 'missed'}"
        print(f"  {name:<52}{median:>8.1f} ms median of {RUNS}{verdict}")
    return figures


def main() -> None:
    args = sys.argv[1:]
    hosts = int(pop_option(args, "--hosts", 50))
    days = float(pop_option(args, "--days", 30))
    postgres = pop_option(args, "--postgres", None)
    with tempfile.TemporaryDirectory() as folder:
        run("SQLite", f"sqlite:///{Path(folder) / 'siq.db'}", Path(folder), hosts, days)
        if postgres:
            with postgres_schema(postgres) as location:
                run("PostgreSQL", location, Path(folder), hosts, days)

if __name__ == "__main__":
    main()
