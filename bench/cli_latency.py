"""Time `siqctl incidents list` and `siqctl incidents show` against a store of 10,000 incidents.

Run: .venv/bin/python bench/cli_latency.py
Budget: `siqctl incidents list` under 100 ms with 10,000 incidents.
"""

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import time_command  # noqa: E402
from seed import seed_incidents  # noqa: E402

RUNS = 15
BUDGET_MS = 100.0


def main() -> None:
    siqctl = str(Path(sys.executable).parent / "siqctl")
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "siq.toml"
        db = Path(folder) / "siq.db"
        config.write_text(f'host = "bench"\nstore = "sqlite:///{db}"\n')
        seed_incidents(f"sqlite:///{db}", 10_000)
        env = dict(os.environ, SIQ_CONFIG=str(config))
        cases = [
            ("siqctl incidents list", [siqctl, "incidents", "list"]),
            ("siqctl incidents list --json", [siqctl, "incidents", "list", "--json"]),
            ("siqctl incidents list --status all", [siqctl, "incidents", "list", "--status", "all"]),
            ("siqctl incidents list --status all --host 'host-0*'",
             [siqctl, "incidents", "list", "--status", "all", "--host", "host-0*"]),
            ("siqctl incidents show 5000", [siqctl, "incidents", "show", "5000"]),
            ("python -c pass (interpreter start)", [sys.executable, "-c", "pass"]),
        ]
        print(f"{'command (10,000 incidents)':<58} {'median ms':>10} {'max ms':>8}")
        for name, command in cases:
            median, worst = time_command(command, env, RUNS)
            print(f"{name:<58} {median:>10.1f} {worst:>8.1f}")
            if name == "siqctl incidents list":
                verdict = "met" if median < BUDGET_MS else "missed"
                list_line = f"budget: incidents list under {BUDGET_MS:.0f} ms: {verdict} ({median:.1f} ms median)"
        print(list_line)


if __name__ == "__main__":
    main()
