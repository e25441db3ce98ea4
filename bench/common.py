"""Helpers the benchmark scripts share: timing commands, per-process CPU and memory, a scratch schema."""

import os
import statistics
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path


def time_command(command: list[str], env: dict, runs: int) -> tuple[float, float]:
    """Return (median, max) wall-clock milliseconds of `command` over `runs` runs, after one warm-up run."""
    subprocess.run(command, env=env, capture_output=True, check=True)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, env=env, capture_output=True, check=True)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), max(times)


def process_cpu_seconds(pid: int) -> float:
    """Return user + system CPU seconds of a process and its reaped children, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """Return a process's resident memory in MB (VmRSS), or 0 once it has exited."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pop_option(args: list[str], name: str, default):
    """Remove `name VALUE` from a command line and return VALUE, or `default` when it is absent."""
    if name not in args:
        return default
    position = args.index(name)
    value = args[position + 1]
    del args[position:position + 2]
    return value


@contextmanager
def postgres_schema(url: str):
    """Yield a store location for a fresh schema in the database at `url`, dropped afterwards."""
    import psycopg

    schema = f"siq_bench_{os.getpid()}_{int(time.time())}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        try:
            separator = "&" if "?" in url else "?"
            yield f"{url}{separator}options=-csearch_path%3D{schema}"
        finally:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")
