"""Time `siqctl report` over 10,000 incidents in every format.

Run: .venv/bin/python bench/report.py
Budget: the report on 10,000 incidents renders in under a second.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from seed import seed_incidents  # noqa: E402

RUNS = 5
BUDGET_SECONDS = 1.0


def main() -> None:
    siqctl = str(Path(sys.executable).parent / "siqctl")
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "siq.toml"
        db = Path(folder) / "siq.db"
        config.write_text(f'host = "bench"\nstore = "sqlite:///{db}"\n')
        # All 10,000 incidents within the period the report covers.
        seed_incidents(f"sqlite:///{db}", 10_000, days=30)
        env = dict(os.environ, SIQ_CONFIG=str(config))
        print(f"{'siqctl report --since 31d, 10,000 incidents':<48} {'median s':>9} {'max s':>7}")
        worst_median = 0.0
        for output_format in ("text", "md", "json", "html"):
            command = [siqctl, "report", "--since", "31d", "--format", output_format, "--out",
                       str(Path(folder) / f"report.{output_format}")]
            times = []
            for _ in range(RUNS):
                started = time.perf_counter()
                subprocess.run(command, env=env, capture_output=True, check=True)
                times.append(time.perf_counter() - started)
            median = statistics.median(times)
            worst_median = max(worst_median, median)
            print(f"{'--format ' + output_format:<48} {median:>9.3f} {max(times):>7.3f}")
    verdict = "met" if worst_median < BUDGET_SECONDS else "missed"
    print(f"budget: under {BUDGET_SECONDS:.0f} s in every format: {verdict} (slowest median {worst_median:.3f} s)")


if __name__ == "__main__":
    main()
