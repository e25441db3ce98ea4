"""Measure siqd's CPU and memory at its default 10 s interval.

Run: .venv/bin/python bench/daemon_usage.py [SECONDS]   (default 120)
Budget: at or below prometheus-node-exporter, about 0.06% of one core and
20 MB RSS, measured the same way (120 s at a 10 s interval).
"""

import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import process_cpu_seconds, rss_mb  # noqa: E402

CPU_BUDGET_PERCENT = 0.06
RSS_BUDGET_MB = 20.5


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 120.0
    siqd = str(Path(sys.executable).parent / "siqd")
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "siq.toml"
        config.write_text(f'host = "bench"\nstore = "sqlite:///{folder}/siq.db"\ninterval = "10s"\n')
        process = subprocess.Popen([siqd, "run", "--config", str(config)], stderr=subprocess.DEVNULL)
        try:
            time.sleep(5)  # start-up (imports, first round) is not the steady state
            cpu_start, wall_start = process_cpu_seconds(process.pid), time.monotonic()
            peak = 0.0
            while time.monotonic() - wall_start < seconds:
                time.sleep(1)
                peak = max(peak, rss_mb(process.pid))
            cpu = process_cpu_seconds(process.pid) - cpu_start
            wall = time.monotonic() - wall_start
        finally:
            process.terminate()
            process.wait(10)
    percent = cpu / wall * 100
    print(f"siqd at a 10 s interval over {wall:.0f} s, default rules, SQLite store")
    print(f"{'CPU, % of one core':<24}{percent:>8.3f}   budget {CPU_BUDGET_PERCENT}: "
          f"{'met' if percent <= CPU_BUDGET_PERCENT else 'missed'}")
    print(f"{'peak RSS, MB':<24}{peak:>8.1f}   budget {RSS_BUDGET_MB}: {'met' if peak <= RSS_BUDGET_MB else 'missed'}")
    print("CPU is counted in clock ticks (10 ms each), so short runs are coarse.")


if __name__ == "__main__":
    main()
