"""Checks inside a real `siqd run`: incidents from a failing HTTP check, a hung target that delays
nothing, plugin performance data as series, `siqctl checks`, reloads, and siqd's imports without checks."""

import json
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager

import pytest

from check_targets import HttpTarget, SilentListener, closed_port
from conftest import BIN
from siqd.checks.systemd import systemd_available
from test_checks import PLUGINS, needs_plugins


@pytest.fixture
def web():
    target = HttpTarget()
    yield target
    target.stop()


@contextmanager
def running_siqd(siq):
    """Run `siqd run` on the siq fixture's config; stop it with SIGTERM and require a clean exit."""
    log_path = siq.folder / "siqd.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen([str(BIN / "siqd"), "run"], env=siq.env(), stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=log)
        try:
            yield process
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    assert process.returncode == 0, log_path.read_text()


def plugin_processes(marker: str) -> list:
    """Return the live processes that have `marker` among their arguments."""
    import psutil

    return [process for process in psutil.process_iter(["cmdline", "status"])
            if marker in (process.info["cmdline"] or []) and process.info["status"] != psutil.STATUS_ZOMBIE]


def wait_until(condition, timeout: float = 20.0, step: float = 0.2):
    """Poll `condition` until it returns something true or `timeout` passes; return its last value."""
    deadline = time.monotonic() + timeout
    value = condition()
    while not value and time.monotonic() < deadline:
        time.sleep(step)
        value = condition()
    return value


def check_results(siq) -> dict[str, dict]:
    store = siq.store()
    try:
        return {row["name"]: row for row in store.check_results("test-host")} if \
            store.table_exists("check_results") else {}
    finally:
        store.close()


def sample_times(siq, metric: str, labels: str = "") -> list[float]:
    store = siq.store()
    try:
        return [row["ts"] for row in store.rows(
            "SELECT s.ts FROM samples s JOIN series r ON r.id = s.series_id WHERE r.host = 'test-host' "
            "AND r.metric = ? AND r.labels = ? ORDER BY s.ts", (metric, labels))]
    finally:
        store.close()


def test_failing_http_check_opens_and_clears_incident(siq, web, receiver):
    web.status = 503
    siq.write_config(f"""
interval = "1s"
startup_grace = "0s"
[notify]
default = ["team"]
retry_initial = "1s"
[notify.channels]
team = ["{receiver.url()}"]
[[check]]
name = "shop"
type = "http"
url = "{web.url}/"
every = "1s"
timeout = "500ms"
description = "The shop's front page; users cannot buy when it fails."
""")
    with running_siqd(siq):
        def open_incidents():
            store = siq.store()
            try:
                return store.list_incidents(statuses=["open"])
            finally:
                store.close()

        incidents = wait_until(open_incidents)
        assert len(incidents) == 1
        incident = incidents[0]
        assert incident.rule == "shop"
        assert incident.title.startswith("test-host shop: HTTP 503 in ")
        assert incident.title.endswith(" (expected 200-399)")
        assert incident.reason == incident.title[len("test-host shop: "):]
        assert incident.labels == {"check": "shop"}
        opened = receiver.wait_for(1)
        assert len(opened) == 1
        assert "HTTP 503" in opened[0]["title"]
        assert "The shop's front page" in opened[0]["message"]

        shown = siq.siqctl("incidents", "show", str(incident.id), check=True).stdout
        assert f"Reason:     {incident.reason}" in shown

        web.status = 200
        cleared = wait_until(lambda: [i for i in open_incidents() if i.cleared_at is not None])
        assert len(cleared) == 1
        messages = receiver.wait_for(2)
        assert len(messages) == 2
        assert messages[1]["title"].endswith("condition cleared")
        assert "condition cleared: HTTP 200 in " in messages[1]["message"]

    listed = siq.siqctl_json("checks")
    assert [(row["host"], row["name"], row["type"], row["status"]) for row in listed] == \
        [("test-host", "shop", "http", "ok")]
    assert listed[0]["reason"].startswith("HTTP 200 in ")


def test_hung_target_delays_nothing(siq, web):
    silent = SilentListener()
    marker = f"siq-test-{uuid.uuid4().hex}"
    siq.write_config(f"""
interval = "1s"
startup_grace = "0s"
[[check]]
name = "hung"
type = "http"
url = "http://127.0.0.1:{silent.port}/"
every = "5s"
timeout = "3s"
[[check]]
name = "stuck-plugin"
type = "command"
command = ["{sys.executable}", "-c", "import time; time.sleep(60)", "{marker}"]
every = "5s"
timeout = "2s"
[[check]]
name = "slow-plugin"
type = "command"
command = ["{sys.executable}", "-c", "import time; time.sleep(60)", "{marker}-slow"]
every = "1m"
timeout = "30s"
[[check]]
name = "quick"
type = "tcp"
address = "127.0.0.1:{web.port}"
every = "1s"
timeout = "500ms"
""")
    try:
        with running_siqd(siq):
            results = wait_until(lambda: {name: row for name, row in check_results(siq).items()
                                          if row["status"] == 2}.keys() >= {"hung", "stuck-plugin"}, timeout=15)
            assert results
            time.sleep(3)
            assert len(plugin_processes(f"{marker}-slow")) == 1  # still running when siqd stops
    finally:
        silent.stop()

    rounds = sample_times(siq, "uptime.seconds")
    assert len(rounds) >= 6
    gaps = [later - earlier for earlier, later in zip(rounds, rounds[1:])]
    assert max(gaps) < 1.9, gaps
    quick = sample_times(siq, "check.status", "check=quick")
    assert len(quick) >= len(rounds) - 2
    quick_gaps = [later - earlier for earlier, later in zip(quick, quick[1:])]
    assert max(quick_gaps) < 2.7, quick_gaps

    stored = check_results(siq)
    assert stored["quick"]["status"] == 0
    assert stored["hung"]["reason"] == f"timed out after 3s waiting for the response (127.0.0.1:{silent.port})"
    assert stored["stuck-plugin"]["reason"].endswith("did not finish within 2s and was stopped")
    log = (siq.folder / "siqd.log").read_text()
    assert "check_skipped" not in log
    assert plugin_processes(marker) == []
    assert plugin_processes(f"{marker}-slow") == []
    assert "event=checks_stopped plugins_ended=" in log
    assert "Traceback" not in log


@needs_plugins
def test_plugin_perf_data_becomes_series(siq, web):
    siq.write_config(f"""
startup_grace = "0s"
[[check]]
name = "tcp-plugin"
type = "command"
command = ["{PLUGINS / 'check_tcp'}", "-H", "127.0.0.1", "-p", "{web.port}"]
[[check]]
name = "root-disk"
type = "command"
command = ["{PLUGINS / 'check_disk'}", "-w", "1%", "-c", "1%", "-p", "/"]
[[check]]
name = "cron"
type = "systemd"
unit = "cron.service"
[[check]]
name = "closed"
type = "tcp"
address = "127.0.0.1:{closed_port()}"
""")
    result = siq.siqd("run", "--once")
    assert result.returncode == 0, result.stderr

    perf = siq.siqctl_json("metrics", "test-host", "check.perf")
    by_series = {(entry["labels"]["check"], entry["labels"]["label"]): entry for entry in perf}
    assert ("tcp-plugin", "time") in by_series
    assert ("root-disk", "/") in by_series
    assert len(by_series[("tcp-plugin", "time")]["samples"]) == 1
    assert by_series[("root-disk", "/")]["samples"][0]["value"] > 0
    store = siq.store()
    try:
        units = {row["labels"]: row["unit"] for row in store.rows(
            "SELECT labels, unit FROM series WHERE metric = 'check.perf'")}
        status_series = {row["labels"] for row in store.rows(
            "SELECT labels FROM series WHERE metric = 'check.status'")}
    finally:
        store.close()
    assert units["check=tcp-plugin,label=time"] == "s"
    assert "check=cron" not in status_series  # unknown writes no status sample
    assert "check=closed" in status_series

    listed = {row["name"]: row for row in siq.siqctl_json("checks")}
    assert listed["tcp-plugin"]["status"] == "ok"
    assert listed["tcp-plugin"]["reason"].startswith("TCP OK - ")
    assert listed["root-disk"]["status"] == "ok"
    assert listed["closed"]["status"] == "critical"
    assert listed["closed"]["reason"].startswith("connection refused by 127.0.0.1:")
    assert listed["cron"]["type"] == "systemd"
    if systemd_available() is not None:
        assert listed["cron"]["status"] == "unknown"
        assert listed["cron"]["reason"] == "systemd not available"

    table = siq.siqctl("checks", check=True).stdout
    assert table.splitlines()[0].split() == ["HOST", "CHECK", "TYPE", "STATUS", "REASON", "RESULT", "FROM"]
    assert "connection refused by 127.0.0.1:" in table
    elsewhere = siq.siqctl("checks", "--host", "web-*", check=True).stdout
    assert elsewhere.strip() == "No check results on hosts matching 'web-*'; add [[check]] tables to the config " \
                                "and run 'siqd run'."
    assert siq.siqctl_json("checks", "--host", "test-*")[0]["host"] == "test-host"


def test_reload_takes_new_check_list(siq, web):
    refused = closed_port()
    base = 'interval = "1s"\nstartup_grace = "0s"\n'
    siq.write_config(base + f"""
[[check]]
name = "first"
type = "tcp"
address = "127.0.0.1:{web.port}"
every = "1s"
""")
    with running_siqd(siq) as process:
        assert wait_until(lambda: "first" in check_results(siq))
        siq.write_config(base + f"""
[[check]]
name = "second"
type = "tcp"
address = "127.0.0.1:{refused}"
every = "1s"
for = "0s"
""")
        process.send_signal(signal.SIGHUP)
        assert wait_until(lambda: list(check_results(siq)) == ["second"])

        def incidents():
            return siq.siqctl_json("incidents", "list")

        opened = wait_until(incidents)
        assert [incident["rule"] for incident in opened] == ["second"]
        assert opened[0]["reason"] == f"connection refused by 127.0.0.1:{refused}"
    assert "event=config_reloaded" in (siq.folder / "siqd.log").read_text()


IMPORT_PROBE = """
import json, sys
from pathlib import Path
from siqd.config import load_config
from siqd.daemon import Daemon
from siqd.store import open_store

config = load_config(Path(sys.argv[1]))
store = open_store(config.store)
daemon = Daemon(config, store)
daemon.update_checks()
daemon.collector.prime()
daemon.run_round()
daemon.stop_checks()
print(json.dumps([name for name in ("ssl", "http.client", "siqd.checks", "siqd.checks.runner")
                  if name in sys.modules]))
"""


@pytest.mark.parametrize("checks, expected", [
    ("", []),
    ('[[check]]\nname = "db"\ntype = "tcp"\naddress = "127.0.0.1:1"\n', ["siqd.checks", "siqd.checks.runner"]),
])
def test_daemon_imports_only_what_checks_need(tmp_path, checks, expected):
    config = tmp_path / "siq.toml"
    config.write_text(f'host = "h"\nstore = "{tmp_path}/siq.db"\n{checks}')
    result = subprocess.run([sys.executable, "-c", IMPORT_PROBE, str(config)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == expected
