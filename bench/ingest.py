"""Measure how fast the store takes in samples from 50 hosts.

Run: .venv/bin/python bench/ingest.py [MINUTES] [--postgres URL]
(default 60 simulated minutes into a temporary SQLite file; with --postgres,
into a schema of its own in that database, dropped afterwards)
Each host writes one transaction per 10 s round, as siqd does: 24 series
(cpu, load, memory, swap, 4 mounts x 2, 2 disks x 2, 2 NICs x 2, procs,
uptime). Budget: 50 hosts' samples faster than 50x real time.
"""

import random
import sys
import tempfile
import time
from pathlib import Path

from siqd.collect.host import Sample
from siqd.store import open_store

sys.path.insert(0, str(Path(__file__).parent))
from common import pop_option, postgres_schema  # noqa: E402

HOSTS = 50
INTERVAL = 10.0
BUDGET_SPEEDUP = 50.0


def host_round(rng: random.Random) -> list[Sample]:
    samples = [Sample("cpu.percent", {}, rng.uniform(0, 100)),
               Sample("memory.used_percent", {}, rng.uniform(20, 90)),
               Sample("swap.used_percent", {}, rng.uniform(0, 10)),
               Sample("procs.count", {}, float(rng.randint(100, 400))),
               Sample("uptime.seconds", {}, 86400.0)]
    samples += [Sample(f"load.per_core_{window}", {}, rng.uniform(0, 2)) for window in ("1m", "5m", "15m")]
    for mount in ("/", "/var", "/srv", "/tmp"):
        samples.append(Sample("disk.used_percent", {"mount": mount}, rng.uniform(10, 95)))
        samples.append(Sample("disk.inodes_used_percent", {"mount": mount}, rng.uniform(1, 30)))
    for device in ("sda", "sdb"):
        samples.append(Sample("disk.read_bytes_per_s", {"device": device}, rng.uniform(0, 1e7)))
        samples.append(Sample("disk.write_bytes_per_s", {"device": device}, rng.uniform(0, 1e7)))
    for nic in ("eth0", "eth1"):
        samples.append(Sample("net.in_bytes_per_s", {"nic": nic}, rng.uniform(0, 1e8)))
        samples.append(Sample("net.out_bytes_per_s", {"nic": nic}, rng.uniform(0, 1e8)))
    return samples


def ingest(location: str, minutes: float) -> tuple[int, int, float]:
    """Write `minutes` of 50 hosts' rounds; return (rounds, samples, seconds)."""
    rounds = int(minutes * 60 / INTERVAL)
    rng = random.Random(7)
    store = open_store(location)
    start_ts = time.time() - minutes * 60
    rows = 0
    started = time.perf_counter()
    for index in range(rounds):
        ts = start_ts + index * INTERVAL
        for host in range(HOSTS):
            samples = host_round(rng)
            with store.transaction():
                store.mark_host_seen(f"host-{host:02d}", ts, INTERVAL, "bench")
                store.write_samples(f"host-{host:02d}", ts, samples)
            rows += len(samples)
    elapsed = time.perf_counter() - started
    store.close()
    return rounds, rows, elapsed


def report(kind: str, minutes: float, rounds: int, rows: int, elapsed: float) -> None:
    speedup = minutes * 60 / elapsed
    print(f"{kind}: {HOSTS} hosts x {rounds} rounds ({minutes:g} simulated minutes), one transaction each")
    print(f"  {'samples':<26}{rows:>12,}")
    print(f"  {'wall time, s':<26}{elapsed:>12.2f}")
    print(f"  {'samples per second':<26}{rows / elapsed:>12,.0f}")
    print(f"  {'speed vs real time':<26}{speedup:>11.0f}x   budget {BUDGET_SPEEDUP:.0f}x: "
          f"{'met' if speedup >= BUDGET_SPEEDUP else 'missed'}")


def main() -> None:
    args = sys.argv[1:]
    postgres = pop_option(args, "--postgres", None)
    minutes = float(args[0]) if args else 60.0
    with tempfile.TemporaryDirectory() as folder:
        report("SQLite", minutes, *ingest(f"sqlite:///{Path(folder) / 'siq.db'}", minutes))
    if postgres:
        with postgres_schema(postgres) as location:
            report("PostgreSQL", minutes, *ingest(location, minutes))

if __name__ == "__main__":
    main()
