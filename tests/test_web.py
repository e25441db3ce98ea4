"""The dashboard and /metrics that `siqd run` serves with [web] listen: pages, escaping, token, errors, a browser."""

import signal
import socket
import sqlite3
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import BIN, Siq, free_port

HOSTILE_TITLE = "<script>alert(1)</script>"
ESCAPED_TITLE = "&lt;script&gt;alert(1)&lt;/script&gt;"
TOKEN = "t0ken-for-tests-0123456789"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--no-proxy-server", "--hide-scrollbars"]


def web_config(port: int, web_extra: str = "") -> str:
    """Return a config that serves the dashboard on `port` and has a rule that fires on any machine."""
    return f"""
interval = "1s"
dashboard_url = "http://127.0.0.1:{port}"
[web]
listen = "127.0.0.1:{port}"
{web_extra}
[[rule]]
name = "memory-any"
metric = "memory.used_percent"
above = 1
severity = "warning"
description = "any memory use <b>counts</b>"
"""


class RunningSiqd:
    """A `siqd run` subprocess whose stderr log lines are collected as they come."""

    def __init__(self, siq: Siq):
        self.process = subprocess.Popen([str(BIN / "siqd"), "run"], env=siq.env(), stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def log(self) -> str:
        return "\n".join(self.lines)

    def wait_for_log(self, text: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if text in line:
                    return line
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"siqd logged no line with {text!r} within {timeout}s; log:\n{self.log()}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._reader.join(5)
        return self.process.returncode


@pytest.fixture
def start_siqd():
    """Start `siqd run` for a Siq config; every daemon started is stopped after the test."""
    started: list[RunningSiqd] = []

    def start(siq: Siq) -> RunningSiqd:
        daemon = RunningSiqd(siq)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.stop()


@pytest.fixture
def sqlite_siq(tmp_path):
    """A config and an SQLite store, for tests whose subject does not depend on the store backend."""
    instance = Siq(tmp_path, f"sqlite://{tmp_path / 'siq.db'}")
    instance.write_config("")
    instance.store().close()
    return instance


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


# No proxy: every request goes straight to siqd on 127.0.0.1.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)


def fetch(url: str, headers: dict | None = None) -> tuple[int, dict, str]:
    """GET `url` without following redirects; return status, headers and the body text."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with _OPENER.open(request, timeout=20) as response:
            return response.status, response.headers, response.read().decode("utf-8")
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode("utf-8")


def wait_until_served(base: str, daemon: RunningSiqd, headers: dict | None = None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status, _, _ = fetch(base + "/hosts", headers)
            if status in (200, 401):
                return
        except urllib.error.URLError:
            pass
        if daemon.process.poll() is not None:
            break
        time.sleep(0.2)
    raise AssertionError(f"{base} did not answer within {timeout}s; siqd log:\n{daemon.log()}")


def wait_for_rule_incident(siq: Siq, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [incident for incident in siq.siqctl_json("incidents", "list") if incident["rule"] == "memory-any"]
        if found:
            return found[0]
        time.sleep(0.3)
    raise AssertionError(f"the memory-any rule opened no incident within {timeout}s")


def start_dashboard(siq: Siq, start_siqd, web_extra: str = "", headers: dict | None = None):
    port = free_port()
    siq.write_config(web_config(port, web_extra))
    daemon = start_siqd(siq)
    base = f"http://127.0.0.1:{port}"
    wait_until_served(base, daemon, headers)
    daemon.wait_for_log("event=first_round_done")  # the host has reported: its page exists
    return daemon, base, port


def open_hostile_incident(siq: Siq) -> int:
    result = siq.siqctl_json("open", "--title", HOSTILE_TITLE, "--severity", "critical",
                             "-m", "from CI <img src=x onerror=alert(2)>")
    return result["id"]


# -- pages ---------------------------------------------------------------------------------


def test_pages_show_incidents_and_escape_text(siq, start_siqd):
    daemon, base, _ = start_dashboard(siq, start_siqd)
    manual_id = open_hostile_incident(siq)
    rule_incident = wait_for_rule_incident(siq)
    rule_id = rule_incident["id"]
    siq.siqctl("comment", str(rule_id), "checked <b>memory</b>", check=True)

    status, headers, page = fetch(base + "/")
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert ESCAPED_TITLE in page
    assert HOSTILE_TITLE not in page
    assert "<script" not in page
    assert '<meta http-equiv="refresh" content="30">' in page
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert f'href="/incidents/{manual_id}"' in page
    assert f'href="/incidents/{rule_id}"' in page
    assert 'href="/hosts/test-host"' in page
    assert "memory-any" in page
    assert "Open incidents (2)" in page

    status, _, page = fetch(f"{base}/incidents/{manual_id}")
    assert status == 200
    assert f"#{manual_id} {ESCAPED_TITLE}" in page
    assert "from CI &lt;img src=x onerror=alert(2)&gt;" in page
    assert "<img" not in page
    assert "<script" not in page
    assert "Opened by hand" in page

    status, _, page = fetch(f"{base}/incidents/{rule_id}")
    assert status == 200
    assert "<svg" in page
    assert 'class="threshold"' in page
    assert "above 1.0%" in page
    assert "memory.used_percent" in page
    assert "checked &lt;b&gt;memory&lt;/b&gt;" in page
    assert "any memory use &lt;b&gt;counts&lt;/b&gt;" in page
    assert f'siqctl resolve {rule_id} -m' in page

    status, _, page = fetch(base + "/hosts")
    assert status == 200
    assert 'href="/hosts/test-host"' in page
    assert ">up<" in page

    status, _, page = fetch(base + "/hosts/test-host")
    assert status == 200
    assert page.count("<svg") >= 2
    assert "cpu.percent" in page
    assert "memory.used_percent" in page
    assert "Open incidents (2)" in page
    assert ESCAPED_TITLE in page
    assert 'href="/hosts/test-host?since=6h"' in page

    status, _, page = fetch(base + "/hosts/test-host?since=6h")
    assert status == 200
    assert "Last 6h" in page
    status, _, page = fetch(base + "/hosts/test-host?since=soon")
    assert status == 400
    assert "invalid since=soon" in page

    assert daemon.stop() == 0
    assert "event=web_stopped" in daemon.log()


def test_dashboard_links_from_siqctl_land_on_pages(siq, start_siqd):
    _, base, _ = start_dashboard(siq, start_siqd)
    incident = wait_for_rule_incident(siq)
    assert incident["url"] == f"{base}/incidents/{incident['id']}"
    status, _, page = fetch(incident["url"])
    assert status == 200
    assert f"#{incident['id']} " in page

    host_show_output = siq.siqctl("host", "show", "test-host", check=True).stdout
    link = next(line.split(": ", 1)[1] for line in host_show_output.splitlines() if line.startswith("Dashboard: "))
    assert link == f"{base}/hosts/test-host"
    status, _, page = fetch(link)
    assert status == 200
    assert "<h1>test-host" in page


def test_unknown_pages_answer_404(sqlite_siq, start_siqd):
    _, base, _ = start_dashboard(sqlite_siq, start_siqd)
    cases = {
        "/incidents/999999": ("Incident #999999 is not in this store.", 'href="/"'),
        "/incidents/0": ("&#x27;0&#x27; is not an incident number.", 'href="/"'),
        "/incidents/abc": ("&#x27;abc&#x27; is not an incident number.", 'href="/"'),
        "/incidents/99999999999999999999": ("is not an incident number", 'href="/"'),
        "/hosts/nobody": ("Host &#x27;nobody&#x27; has not reported to this store.", 'href="/hosts"'),
        "/hosts/%3Cscript%3E": ("Host &#x27;&lt;script&gt;&#x27; has not reported", 'href="/hosts"'),
        "/nothing/here": ("There is no page at /nothing/here.", 'href="/"'),
    }
    for path, (message, link) in cases.items():
        status, _, page = fetch(base + path)
        assert status == 404, path
        assert message in page, path
        assert link in page, path
        assert "<script>" not in page, path


def test_store_error_answers_503_and_recovers(sqlite_siq, start_siqd):
    daemon, base, _ = start_dashboard(sqlite_siq, start_siqd)
    database = sqlite3.connect(sqlite_siq.db, timeout=30)
    database.execute("ALTER TABLE incidents RENAME TO incidents_moved")
    database.commit()
    try:
        status, _, page = fetch(base + "/")
        assert status == 503
        assert "no such table: incidents" in page
        assert "Traceback" not in page
        status, _, text = fetch(base + "/metrics")
        assert status == 503
        assert "no such table: incidents" in text
    finally:
        database.execute("ALTER TABLE incidents_moved RENAME TO incidents")
        database.commit()
        database.close()
    status, _, _ = fetch(base + "/")
    assert status == 200
    assert "event=web_store_error" in daemon.log()
    assert daemon.process.poll() is None


# -- Prometheus ----------------------------------------------------------------------------


def test_metrics_parse_as_prometheus_text(siq, start_siqd):
    from prometheus_client.parser import text_string_to_metric_families

    from siqd.metrics import CATALOG

    _, base, _ = start_dashboard(siq, start_siqd)
    open_hostile_incident(siq)
    siq.siqctl("open", "--host", "web-2", "--title", "backup failed", "--severity", "info", check=True)
    wait_for_rule_incident(siq)

    status, headers, text = fetch(base + "/metrics")
    assert status == 200
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    families = {family.name: family for family in text_string_to_metric_families(text)}

    memory = families["siq_memory_used_percent"]
    assert memory.type == "gauge"
    assert memory.documentation == CATALOG["memory.used_percent"].description
    assert len(memory.samples) == 1
    assert memory.samples[0].labels == {"host": "test-host"}
    assert 0 < memory.samples[0].value <= 100
    assert families["siq_cpu_percent"].samples[0].labels == {"host": "test-host"}

    open_counts = {(sample.labels["host"], sample.labels["severity"]): sample.value
                   for sample in families["siq_open_incidents"].samples}
    assert open_counts[("test-host", "warning")] == 1
    assert open_counts[("test-host", "critical")] == 1
    assert open_counts[("test-host", "info")] == 0
    assert open_counts[("web-2", "info")] == 1

    up = {sample.labels["host"]: sample.value for sample in families["siq_host_up"].samples}
    assert up == {"test-host": 1.0}
    last_seen = families["siq_host_last_seen_seconds"].samples[0].value
    assert abs(last_seen - time.time()) < 30
    assert all(name.startswith("siq_") for name in families)


def test_metrics_escape_label_values_and_help():
    from prometheus_client.parser import text_string_to_metric_families

    from siqd.web.prometheus import Exposition, metric_name

    exposition = Exposition()
    odd = 'mnt/"quoted"\\back\nline'
    exposition.add(metric_name("disk.used_percent"), "help with \\ and\nnewline", {"host": "h", "mount": odd}, 42.5)
    exposition.add(metric_name("disk.used_percent"), "help with \\ and\nnewline", {"host": "h", "mount": "/"}, 1.0)
    families = list(text_string_to_metric_families(exposition.text()))
    assert len(families) == 1
    assert families[0].name == "siq_disk_used_percent"
    assert families[0].documentation == "help with \\ and\nnewline"
    assert families[0].samples[0].labels == {"host": "h", "mount": odd}
    assert families[0].samples[0].value == 42.5


# -- the token -----------------------------------------------------------------------------


def test_token_required_for_every_request(sqlite_siq, start_siqd):
    from prometheus_client.parser import text_string_to_metric_families

    bearer = {"Authorization": f"Bearer {TOKEN}"}
    daemon, base, _ = start_dashboard(sqlite_siq, start_siqd, f'token = "{TOKEN}"', bearer)

    for path in ("/", "/hosts", "/hosts/test-host", "/incidents/1", "/nothing"):
        status, headers, page = fetch(base + path)
        assert status == 401, path
        assert headers["WWW-Authenticate"] == 'Bearer realm="siq"', path
    assert "Authorization: Bearer TOKEN" in page
    assert "?token=TOKEN" in page
    assert TOKEN not in page

    status, _, _ = fetch(base + "/", {"Authorization": "Bearer not-the-token-at-all"})
    assert status == 401
    status, _, _ = fetch(base + "/", bearer)
    assert status == 200

    status, headers, _ = fetch(f"{base}/hosts/test-host?since=6h&token={TOKEN}")
    assert status == 303
    assert headers["Location"] == "/hosts/test-host?since=6h"
    cookie = headers["Set-Cookie"]
    assert cookie.startswith(f"siq_token={TOKEN};")
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    status, _, page = fetch(base + "/hosts/test-host?since=6h", {"Cookie": f"theme=dark; siq_token={TOKEN}"})
    assert status == 200
    assert "Last 6h" in page

    status, headers, _ = fetch(base + "/?token=wrong-token-0123456789")
    assert status == 401
    assert headers["Set-Cookie"] is None

    status, headers, text = fetch(base + "/metrics")
    assert status == 401
    assert headers["Content-Type"].startswith("text/plain")
    assert "Authorization: Bearer TOKEN" in text
    status, _, text = fetch(base + "/metrics", bearer)
    assert status == 200
    assert "siq_host_up" in {family.name for family in text_string_to_metric_families(text)}

    assert TOKEN not in daemon.log()


def test_changed_web_on_reload_waits_for_restart(sqlite_siq, start_siqd):
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    daemon, base, port = start_dashboard(sqlite_siq, start_siqd, f'token = "{TOKEN}"', bearer)
    sqlite_siq.write_config(web_config(port, 'token = "another-token-0123456789"'))
    daemon.process.send_signal(signal.SIGHUP)
    line = daemon.wait_for_log("event=reload_partial")
    assert "[web] changes take effect when siqd restarts" in line
    daemon.wait_for_log("event=config_reloaded")
    status, _, _ = fetch(base + "/", bearer)
    assert status == 200


# -- config --------------------------------------------------------------------------------


@pytest.mark.parametrize("web, message", [
    ('listen = "0.0.0.0:8765"', "web.listen: '0.0.0.0:8765' is reachable from other machines and web.token is not "
                                "set; set web.token or listen on 127.0.0.1"),
    ('listen = "[::]:8765"', "set web.token or listen on 127.0.0.1"),
    ('listen = "8765"', 'web.listen: expected HOST:PORT'),
    ('listen = "127.0.0.1:70000"', "web.listen: invalid port '70000'"),
    ('listen = "monitor.internal:8765"', "web.listen: invalid IP address 'monitor.internal'"),
    ('listen = "::1:8765"', "web.listen: write an IPv6 address in brackets"),
    ('listen = "127.0.0.1:8765"\ntoken = "short"', "web.token: too short (5 characters)"),
    ('listen = "127.0.0.1:8765"\ntoken = "has spaces in the token"', "web.token: may contain only"),
    ('port = 8765', "web.port: unknown key"),
])
def test_config_rejects_bad_web_settings(sqlite_siq, web, message):
    sqlite_siq.write_config(f"[web]\n{web}\n")
    result = sqlite_siq.siqctl("config", "check")
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_siqd_refuses_public_listen_without_token(sqlite_siq):
    sqlite_siq.write_config('[web]\nlisten = "0.0.0.0:8765"\n')
    result = sqlite_siq.siqd("run", timeout=30)
    assert result.returncode == 2
    assert "web.listen" in result.stderr
    assert "set web.token or listen on 127.0.0.1" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_config_check_masks_token_and_warns(sqlite_siq):
    sqlite_siq.write_config(f'[web]\nlisten = "0.0.0.0:8765"\ntoken = "{TOKEN}"\n')
    sqlite_siq.config_path.chmod(0o644)
    result = sqlite_siq.siqctl("config", "check")
    assert result.returncode == 0, result.stderr
    assert 'listen = "0.0.0.0:8765"' in result.stdout
    assert 'token = "****"' in result.stdout
    assert TOKEN not in result.stdout + result.stderr
    assert "contains web.token" in result.stderr
    assert f"chmod o-r {sqlite_siq.config_path}" in result.stderr


def test_starter_config_documents_web(tmp_path, sqlite_siq):
    target = tmp_path / "starter.toml"
    sqlite_siq.siqctl("init", "--path", str(target), check=True)
    text = target.read_text()
    assert '#   listen = "127.0.0.1:8765"' in text
    assert "Authorization: Bearer TOKEN" in text
    assert sqlite_siq.siqctl("config", "check", str(target)).returncode == 0


# -- server behaviour ----------------------------------------------------------------------


def test_port_in_use_keeps_monitoring(sqlite_siq, start_siqd):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        sqlite_siq.write_config(web_config(port))
        daemon = start_siqd(sqlite_siq)
        line = daemon.wait_for_log("event=web_failed")
        assert f"listen=127.0.0.1:{port}" in line
        assert "already in use" in line
        daemon.wait_for_log("event=first_round_done")
        store = sqlite_siq.store()
        try:
            deadline = time.monotonic() + 20
            rounds = 0
            while time.monotonic() < deadline and rounds < 3:
                rounds = store.scalar("SELECT COUNT(DISTINCT ts) FROM samples")
                time.sleep(0.3)
        finally:
            store.close()
        assert rounds >= 3
        assert daemon.process.poll() is None
        assert daemon.stop() == 0


def test_stalled_client_does_not_block_others(sqlite_siq, start_siqd):
    _, base, port = start_dashboard(sqlite_siq, start_siqd)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as stalled:
        stalled.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # headers never end
        started = time.monotonic()
        status, _, _ = fetch(base + "/hosts")
        assert status == 200
        assert time.monotonic() - started < 5


def test_request_timeout_closes_stalled_connection(sqlite_siq, monkeypatch):
    from siqd.config import load_config
    from siqd.web import server

    monkeypatch.setattr(server.DashboardHandler, "timeout", 1.0)
    port = free_port()
    sqlite_siq.write_config(web_config(port))
    config = load_config(sqlite_siq.config_path)
    dashboard = server.start_dashboard(config, lambda: config)
    assert dashboard is not None
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as stalled:
            stalled.sendall(b"GET / HTTP/1.1\r\n")
            started = time.monotonic()
            assert stalled.recv(1024) == b""  # the server closed the connection
            assert time.monotonic() - started < 8
    finally:
        dashboard.stop()


def test_chart_breaks_line_at_gaps():
    from siqd.web.charts import series_chart

    bucket = (10.0, 20.0, 30.0)
    buckets = [bucket, bucket, None, None, None, None, bucket, bucket]
    svg = series_chart(buckets, 0.0, 60.0, "%", "cpu <b>", threshold=50.0, threshold_label="above 50%",
                       interval=10.0)
    mean_path = svg.split('class="mean" d="')[1].split('"')[0]
    assert mean_path.count("M") == 2
    assert svg.count('class="band"') == 2
    assert 'class="threshold"' in svg
    assert 'aria-label="cpu &lt;b&gt;"' in svg
    assert "<b>" not in svg

    # Buckets narrower than the sampling interval leave every other one empty: no gap.
    sparse = [bucket, None, bucket, None, bucket]
    svg = series_chart(sparse, 0.0, 5.0, "%", "cpu", interval=10.0)
    assert svg.split('class="mean" d="')[1].split('"')[0].count("M") == 1


# -- a real browser ------------------------------------------------------------------------


def test_chromium_renders_incident_and_host_pages(sqlite_siq, start_siqd, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is not installed (scripts/run-tests installs it as root)")
    _, base, _ = start_dashboard(sqlite_siq, start_siqd)
    manual_id = open_hostile_incident(sqlite_siq)
    rule_id = wait_for_rule_incident(sqlite_siq)["id"]
    runs = 0

    def chromium(*args: str) -> subprocess.CompletedProcess:
        nonlocal runs
        runs += 1
        profile = tmp_path / f"chromium-profile-{runs}"
        return subprocess.run([str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=120)

    for name, path in (("incident", f"/incidents/{rule_id}"), ("host", "/hosts/test-host")):
        for size in ("1280,1600", "390,844"):
            shot = tmp_path / f"{name}-{size.replace(',', 'x')}.png"
            chromium(f"--window-size={size}", f"--screenshot={shot}", base + path)
            assert shot.exists(), f"no screenshot of {path} at {size}"
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert shot.stat().st_size > 5000
        dom = chromium("--dump-dom", base + path).stdout
        assert "<svg" in dom, path
        assert "<polygon" in dom or "<circle" in dom, path

    dom = chromium("--dump-dom", f"{base}/incidents/{manual_id}").stdout
    assert ESCAPED_TITLE in dom
    assert HOSTILE_TITLE not in dom
