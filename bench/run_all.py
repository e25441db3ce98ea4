"""Run every benchmark, print one table and write bench/RESULTS.md with the machine's facts.

Run: .venv/bin/python bench/run_all.py [--seconds 300] [--postgres URL] [--hosts 50] [--days 30]

It measures, in one run:
- siqd's CPU (% of one core) and peak RSS at a 10 s interval, once with
  the default rules and once with 5 checks added at their default
  `every` of 1m. The checks are HTTP and TCP against a server this
  script starts on 127.0.0.1, a process check, a systemd check and the
  check_disk plugin when it is installed. Debian's monit and prometheus-node-exporter
  (scraped every 10 s from 127.0.0.1) run beside them and are measured
  the same way when they are installed;
- `siqctl incidents list` and `show` with 10,000 incidents;
- store ingest for 50 hosts, SQLite and, with --postgres, PostgreSQL;
- store size and `siqctl host show` over 30 days of history, both stores.
Budgets are reported as met or missed; nothing here fails on a miss.
"""

import os
import platform
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import history  # noqa: E402
import ingest  # noqa: E402
from common import pop_option, postgres_schema, process_cpu_seconds, rss_mb, time_command  # noqa: E402
from seed import seed_incidents  # noqa: E402

BENCH = Path(__file__).parent
SIQCTL = str(Path(sys.executable).parent / "siqctl")
SIQD = str(Path(sys.executable).parent / "siqd")
CHECK_DISK = "/usr/lib/nagios/plugins/check_disk"
MONIT = shutil.which("monit")
NODE_EXPORTER = shutil.which("prometheus-node-exporter")

# Budgets: the daemon at or below prometheus-node-exporter (about 0.06% of one
# core and 20 MB RSS when measured this way), the CLI under 100 ms, ingest
# faster than 50x real time.
CPU_BUDGET = 0.06
RSS_BUDGET = 20.5
CLI_BUDGET_MS = 100.0
INGEST_BUDGET = 50.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_health_server() -> tuple[ThreadingHTTPServer, int]:
    """Serve "ok" on 127.0.0.1 for the HTTP and TCP checks."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def siqd_config(folder: Path, port: int | None) -> Path:
    """Write a config with the default rules, and with 5 checks (at their default every = 1m) when `port` is given."""
    name = "bench-checks" if port is not None else "bench"
    checks = "" if port is None else f"""
[[check]]
name = "web"
type = "http"
url = "http://127.0.0.1:{port}/health"

[[check]]
name = "web-port"
type = "tcp"
address = "127.0.0.1:{port}"

[[check]]
name = "siqd-running"
type = "process"
cmdline = "siqd run"

[[check]]
name = "cron-unit"
type = "systemd"
unit = "cron.service"
"""
    if port is not None and os.access(CHECK_DISK, os.X_OK):
        checks += f"""
[[check]]
name = "root-disk"
type = "command"
command = ["{CHECK_DISK}", "-w", "10%", "-c", "5%", "-p", "/"]
"""
    elif port is not None:  # no plugin installed: a fifth check of another kind
        checks += """
[[check]]
name = "root-disk-watch"
type = "process"
process = "^init$|^systemd$|^sh$"
"""
    # No [[rule]] tables: the built-in default rules apply, plus one rule per check.
    config = folder / f"{name}.toml"
    config.write_text(f'host = "{name}"\nstore = "sqlite:///{folder}/{name}.db"\ninterval = "10s"\n' + checks)
    config.chmod(0o600)
    return config


def monit_config(folder: Path) -> Path:
    interface = next((name for name in os.listdir("/sys/class/net") if name != "lo"), "lo")
    config = folder / "monitrc"
    config.write_text(f"""set daemon 10
set logfile {folder}/monit.log
set pidfile {folder}/monit.pid
set idfile {folder}/monit.id
set statefile {folder}/monit.state
check system bench
check filesystem root with path /
check network primary with interface {interface}
check process siqd matching "siqd run"
""")
    config.chmod(0o600)
    return config


def measure_agents(seconds: float, folder: Path) -> dict:
    """Run siqd and the peers side by side for `seconds`; return CPU % and peak RSS per agent."""
    server, port = start_health_server()
    agents: dict[str, subprocess.Popen] = {
        "siqd (default rules)": subprocess.Popen([SIQD, "run", "--config", str(siqd_config(folder, None))],
                                                 stderr=subprocess.DEVNULL),
        "siqd (default rules, 5 checks every 1m)": subprocess.Popen(
            [SIQD, "run", "--config", str(siqd_config(folder, port))], stderr=subprocess.DEVNULL),
    }
    scrape_url = None
    if MONIT:
        agents["monit"] = subprocess.Popen([MONIT, "-c", str(monit_config(folder)), "-I"],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if NODE_EXPORTER:
        exporter_port = free_port()
        agents["prometheus-node-exporter (scraped every 10 s)"] = subprocess.Popen(
            [NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{exporter_port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        scrape_url = f"http://127.0.0.1:{exporter_port}/metrics"
    try:
        time.sleep(10)  # start-up (imports, first round) is not the steady state
        cpu_start = {name: process_cpu_seconds(process.pid) for name, process in agents.items()}
        peak = dict.fromkeys(agents, 0.0)
        wall_start = time.monotonic()
        next_scrape = wall_start
        while time.monotonic() - wall_start < seconds:
            if scrape_url and time.monotonic() >= next_scrape:
                try:
                    urllib.request.urlopen(scrape_url, timeout=5).read()
                except OSError:
                    pass
                next_scrape += 10
            time.sleep(1)
            for name, process in agents.items():
                peak[name] = max(peak[name], rss_mb(process.pid))
        wall = time.monotonic() - wall_start
        results = {name: {"cpu_percent": (process_cpu_seconds(process.pid) - cpu_start[name]) / wall * 100,
                          "rss_mb": peak[name]} for name, process in agents.items()}
    finally:
        for process in agents.values():
            process.terminate()
        for process in agents.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        server.shutdown()
    return results


def measure_cli(folder: Path) -> dict:
    location = f"sqlite:///{folder}/incidents.db"
    seed_incidents(location, 10_000)
    config = folder / "incidents.toml"
    config.write_text(f'host = "bench"\nstore = "{location}"\n')
    env = dict(os.environ, SIQ_CONFIG=str(config))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as after a normal install, modules are compiled once
    return {
        "siqctl incidents list": time_command([SIQCTL, "incidents", "list"], env, 15)[0],
        "siqctl incidents show 5000": time_command([SIQCTL, "incidents", "show", "5000"], env, 15)[0],
    }


def measure_ingest(folder: Path, postgres: str | None) -> dict:
    minutes = 60.0
    found = {"SQLite": ingest.ingest(f"sqlite:///{folder}/ingest.db", minutes)}
    if postgres:
        with postgres_schema(postgres) as location:
            found["PostgreSQL"] = ingest.ingest(location, minutes)
    return {kind: (rows / seconds, minutes * 60 / seconds) for kind, (_, rows, seconds) in found.items()}


def measure_history(folder: Path, postgres: str | None, hosts: int, days: float) -> dict:
    found = {"SQLite": history.run("SQLite", f"sqlite:///{folder}/history.db", folder, hosts, days)}
    if postgres:
        with postgres_schema(postgres) as location:
            found["PostgreSQL"] = history.run("PostgreSQL", location, folder, hosts, days)
    return found


def machine_facts(postgres: str | None) -> list[str]:
    from siqd import __version__

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    memory_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                     if line.startswith("MemTotal:"))
    release = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line)
    facts = [
        f"date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"machine: {os.cpu_count()} × {cpu}, {memory_kb / 1024 / 1024:.0f} GiB RAM, {platform.machine()}",
        f"system: {release.get('PRETTY_NAME', '?').strip(chr(34))}, Linux {platform.release()}",
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, siq {__version__}",
    ]
    if postgres:
        import psycopg

        with psycopg.connect(postgres) as connection:
            facts.append("PostgreSQL " + connection.execute("SHOW server_version").fetchone()[0])
    for tool in (MONIT, NODE_EXPORTER):
        if tool:
            output = subprocess.run([tool, "--version"], capture_output=True, text=True)
            facts.append((output.stdout or output.stderr).splitlines()[0].strip())
    return facts


def verdict(met: bool) -> str:
    return "met" if met else "missed"


def main() -> None:
    args = sys.argv[1:]
    seconds = float(pop_option(args, "--seconds", 300))
    postgres = pop_option(args, "--postgres", None)
    hosts = int(pop_option(args, "--hosts", 50))
    days = float(pop_option(args, "--days", 30))
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        print(f"agents at a 10 s interval for {seconds:.0f} s …", flush=True)
        for agent, figures in measure_agents(seconds, folder).items():
            is_siqd = agent.startswith("siqd")
            rows.append((f"{agent}: CPU, % of one core", f"{figures['cpu_percent']:.3f}",
                         f"≤ {CPU_BUDGET}: {verdict(figures['cpu_percent'] <= CPU_BUDGET)}" if is_siqd else ""))
            rows.append((f"{agent}: peak RSS", f"{figures['rss_mb']:.1f} MB",
                         f"≤ {RSS_BUDGET} MB: {verdict(figures['rss_mb'] <= RSS_BUDGET)}" if is_siqd else ""))
        if not MONIT:
            rows.append(("monit", "not installed", ""))
        if not NODE_EXPORTER:
            rows.append(("prometheus-node-exporter", "not installed", ""))

        print("siqctl on 10,000 incidents …", flush=True)
        for command, median in measure_cli(folder).items():
            rows.append((f"`{command}`, 10,000 incidents", f"{median:.1f} ms",
                         f"< {CLI_BUDGET_MS:.0f} ms: {verdict(median < CLI_BUDGET_MS)}"))

        print("ingest, 50 hosts …", flush=True)
        for kind, (rate, speedup) in measure_ingest(folder, postgres).items():
            rows.append((f"{kind} ingest, 50 hosts × 24 series", f"{rate:,.0f} samples/s, {speedup:.0f}× real time",
                         f"> {INGEST_BUDGET:.0f}×: {verdict(speedup > INGEST_BUDGET)}"))

        print(f"history, {hosts} hosts over {days:g} days …", flush=True)
        for kind, figures in measure_history(folder, postgres, hosts, days).items():
            rows.append((f"{kind} store, {hosts} hosts × {figures['series']} series, {days:g} days",
                         f"{figures['size_bytes'] / 1e6:,.0f} MB", ""))
            for command, median in figures["timings_ms"].items():
                budget = ""
                if command == "siqctl host show HOST":
                    budget = f"< {CLI_BUDGET_MS:.0f} ms: {verdict(median < CLI_BUDGET_MS)}"
                rows.append((f"{kind}: `{command}`", f"{median:.1f} ms", budget))

    facts = machine_facts(postgres)
    table = ["| what | figure | budget |", "|---|---|---|"] + [f"| {what} | {figure} | {budget} |"
                                                             for what, figure, budget in rows]
    text = "\n".join([
        "# Benchmark results",
        "",
        "Written by `bench/run_all.py`; one run each, so treat small differences as noise.",
        "",
        *[f"- {fact}" for fact in facts],
        "",
        *table,
        "",
    ])
    (BENCH / "RESULTS.md").write_text(text)
    print()
    print("\n".join(table))
    print(f"\nwrote {BENCH / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
