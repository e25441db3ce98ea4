"""Measure how fast the store takes in samples from 50 hosts.

Run: .venv/bin/python bench/ingest.py [MINUTES]   (default 60 simulated minutes)
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


def main() -> None:
    minutes = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
    rounds = int(minutes * 60 / INTERVAL)
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(f"sqlite:///{Path(folder) / 'siq.db'}")
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
        size = sum(path.stat().st_size for path in Path(folder).iterdir())
        store.close()
    speedup = minutes * 60 / elapsed
    print(f"SQLite store: {HOSTS} hosts x {rounds} rounds ({minutes:g} simulated minutes), one transaction each")
    print(f"{'samples':<28}{rows:>12,}")
    print(f"{'wall time, s':<28}{elapsed:>12.2f}")
    print(f"{'samples per second':<28}{rows / elapsed:>12,.0f}")
    print(f"{'speed vs real time':<28}{speedup:>11.0f}x   budget {BUDGET_SPEEDUP:.0f}x: "
          f"{'met' if speedup >= BUDGET_SPEEDUP else 'missed'}")
    print(f"{'store size, MB':<28}{size / 1e6:>12.1f}")


if __name__ == "__main__":
    main()
