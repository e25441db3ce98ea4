"""Each check kind's run function against real targets on this machine, the plugin output parser,
the check runner's schedule, and every invalid [[check]] key through `siqctl config check`."""

import datetime
import os
import socket
import subprocess
import sys
import threading
import time
import types
import uuid
from pathlib import Path

import psutil
import pytest

from check_targets import (
    Certificates, HttpTarget, SilentListener, closed_port, ipv6_loopback_works, server_context,
)
from conftest import BIN
from siqd.checks import CRITICAL, KIND_MODULES, OK, UNKNOWN, WARNING, run_check
from siqd.checks.plugin import parse_output, parse_perfdata
from siqd.checks.runner import CheckRunner
from siqd.checks.systemd import judge as judge_unit, parse_show, systemd_available
from siqd.config import parse_config

PLUGINS = Path("/usr/lib/nagios/plugins")
needs_plugins = pytest.mark.skipif(not (PLUGINS / "check_tcp").exists(),
                                   reason="Debian's monitoring-plugins-basic is not installed; scripts/run-tests "
                                          "installs it as root")
needs_ipv6 = pytest.mark.skipif(not ipv6_loopback_works(), reason="this machine has no ::1")


def make_check(**table):
    """Read one [[check]] table the way siqd does and return its Check."""
    table.setdefault("name", "probe")
    config = parse_config({"host": "h", "store": "/tmp/unused.db", "check": [table]}, "test.toml")
    return config.checks[0]


@pytest.fixture
def web():
    target = HttpTarget()
    yield target
    target.stop()


@pytest.fixture
def certificates(tmp_path):
    return Certificates(tmp_path)


# --- HTTP ----------------------------------------------------------------------------------------


def test_http_ok(web):
    result = run_check(make_check(type="http", url=web.url + "/"))
    assert result.status == OK
    assert result.reason.startswith("HTTP 200 in ")
    assert result.reason.endswith(" ms")
    assert 0 < result.duration < 5


def test_http_error_status(web):
    web.status = 503
    result = run_check(make_check(type="http", url=web.url + "/"))
    assert result.status == CRITICAL
    assert result.reason.startswith("HTTP 503 in ")
    assert result.reason.endswith("(expected 200-399)")


@pytest.mark.parametrize("expect, status, outcome", [
    (404, 404, OK),
    ([200, "500-503"], 502, OK),
    ("200-299", 302, CRITICAL),
    ("204", 200, CRITICAL),
])
def test_http_expect_status(web, expect, status, outcome):
    web.status = status
    result = run_check(make_check(type="http", url=web.url + "/", expect_status=expect))
    assert result.status == outcome, result.reason


def test_http_body_contains_and_regex(web):
    found = run_check(make_check(type="http", url=web.url + "/", body_contains="Welcome",
                                 body_regex=r"\bshop$"))
    assert found.status == OK
    missing = run_check(make_check(type="http", url=web.url + "/", body_contains="Checkout"))
    assert missing.status == CRITICAL
    assert "body does not contain 'Checkout'" in missing.reason
    unmatched = run_check(make_check(type="http", url=web.url + "/", body_regex=r"^Sold out"))
    assert unmatched.status == CRITICAL
    assert "body does not match '^Sold out'" in unmatched.reason


def test_http_max_latency(web):
    web.delay = 0.3
    result = run_check(make_check(type="http", url=web.url + "/", max_latency="100ms"))
    assert result.status == CRITICAL
    assert "slower than max_latency 100ms" in result.reason
    assert result.duration >= 0.3


def test_http_redirects(web):
    followed = run_check(make_check(type="http", url=web.url + "/old"))
    assert followed.status == OK
    assert "after 1 redirect" in followed.reason
    not_followed = run_check(make_check(type="http", url=web.url + "/old", follow_redirects=False))
    assert not_followed.status == OK
    assert not_followed.reason.startswith("HTTP 302 in ")
    strict = run_check(make_check(type="http", url=web.url + "/old", follow_redirects=False, expect_status=200))
    assert strict.status == CRITICAL
    looping = run_check(make_check(type="http", url=web.url + "/loop"))
    assert looping.status == CRITICAL
    assert looping.reason.startswith("more than 10 redirects")


def test_http_sends_method_and_headers(web):
    run_check(make_check(type="http", url=web.url + "/health?deep=1", method="HEAD",
                         headers={"Authorization": "Bearer s3cret-token", "X-Probe": "siq"}))
    request = web.requests[-1]
    assert request["method"] == "HEAD"
    assert request["path"] == "/health?deep=1"
    assert request["headers"]["Authorization"] == "Bearer s3cret-token"
    assert request["headers"]["X-Probe"] == "siq"
    assert request["headers"]["User-Agent"].startswith("siq-check/")


def test_http_connection_refused():
    port = closed_port()
    result = run_check(make_check(type="http", url=f"http://127.0.0.1:{port}/"))
    assert result.status == CRITICAL
    assert result.reason == f"connection refused by 127.0.0.1:{port}"


def test_http_silent_server_times_out():
    listener = SilentListener()
    try:
        started = time.monotonic()
        result = run_check(make_check(type="http", url=f"http://127.0.0.1:{listener.port}/", timeout="1s",
                                      every="5s"))
        elapsed = time.monotonic() - started
    finally:
        listener.stop()
    assert result.status == CRITICAL
    assert result.reason == f"timed out after 1s waiting for the response (127.0.0.1:{listener.port})"
    assert 0.9 <= elapsed < 2.5


def test_http_trickling_body_times_out():
    """A server that sends one byte of body every 0.2 s never trips a socket timeout; the check's timeout ends it."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    stop = threading.Event()

    def serve():
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n")
            while not stop.is_set():
                try:
                    connection.sendall(b"x")
                except OSError:
                    return
                time.sleep(0.2)

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        started = time.monotonic()
        result = run_check(make_check(type="http", url=f"http://127.0.0.1:{port}/", timeout="1s", every="5s"))
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        listener.close()
    assert result.status == CRITICAL
    assert result.reason == f"timed out after 1s reading the body (127.0.0.1:{port})"
    assert elapsed < 2.5


@needs_ipv6
def test_http_over_ipv6():
    target = HttpTarget("::1")
    try:
        result = run_check(make_check(type="http", url=target.url + "/"))
    finally:
        target.stop()
    assert result.status == OK, result.reason


# --- HTTPS and certificates ----------------------------------------------------------------------


def https_target(certificates, name, valid_from, valid_until, self_signed=False) -> HttpTarget:
    cert, key = certificates.leaf(name, valid_from, valid_until, self_signed=self_signed)
    return HttpTarget(tls=server_context(cert, key))


def test_https_certificate_expiring_in_two_days(certificates):
    target = https_target(certificates, "soon", -datetime.timedelta(days=1), datetime.timedelta(days=2))
    try:
        result = run_check(make_check(type="http", url=target.url + "/", ca_file=str(certificates.ca_file)))
    finally:
        target.stop()
    assert result.status == WARNING
    assert result.reason.startswith("certificate expires in 1d23h (on ")
    assert "; HTTP 200 in " in result.reason
    days = [value for metric, _, value, _ in result.measures if metric == "check.tls_days_left"]
    assert len(days) == 1
    assert 1.9 < days[0] <= 2.0


def test_https_warn_days_below_expiry(certificates):
    target = https_target(certificates, "soon", -datetime.timedelta(days=1), datetime.timedelta(days=2))
    try:
        result = run_check(make_check(type="http", url=target.url + "/", ca_file=str(certificates.ca_file),
                                      tls_warn_days=1))
    finally:
        target.stop()
    assert result.status == OK
    assert result.reason.endswith("; certificate valid for 1d23h")


def test_https_error_status_keeps_certificate_warning(certificates):
    target = https_target(certificates, "soon", -datetime.timedelta(days=1), datetime.timedelta(days=2))
    target.status = 500
    try:
        result = run_check(make_check(type="http", url=target.url + "/", ca_file=str(certificates.ca_file)))
    finally:
        target.stop()
    assert result.status == CRITICAL
    assert result.reason.startswith("HTTP 500 in ")
    assert "; certificate expires in 1d23h" in result.reason


def test_https_unknown_ca_needs_ca_file(certificates):
    target = https_target(certificates, "private", -datetime.timedelta(days=1), datetime.timedelta(days=90))
    try:
        result = run_check(make_check(type="http", url=target.url + "/"))
    finally:
        target.stop()
    assert result.status == CRITICAL
    assert result.reason.startswith("TLS certificate of 127.0.0.1 is not trusted (")
    assert result.reason.endswith("set ca_file to the CA that signed it")


def test_https_self_signed(certificates):
    target = https_target(certificates, "selfie", -datetime.timedelta(days=1), datetime.timedelta(days=90),
                          self_signed=True)
    try:
        result = run_check(make_check(type="http", url=target.url + "/"))
    finally:
        target.stop()
    assert result.status == CRITICAL
    assert "is not trusted (self" in result.reason
    assert "signed certificate" in result.reason


def test_https_expired_certificate(certificates):
    target = https_target(certificates, "old", -datetime.timedelta(days=30), -datetime.timedelta(days=1))
    try:
        result = run_check(make_check(type="http", url=target.url + "/", ca_file=str(certificates.ca_file)))
    finally:
        target.stop()
    assert result.status == CRITICAL
    assert result.reason == "TLS certificate of 127.0.0.1 has expired"


# --- TCP -----------------------------------------------------------------------------------------


def test_tcp_connects(web):
    result = run_check(make_check(type="tcp", address=f"127.0.0.1:{web.port}"))
    assert result.status == OK
    assert result.reason.startswith(f"connected to 127.0.0.1:{web.port} in ")


def test_tcp_refused():
    port = closed_port()
    result = run_check(make_check(type="tcp", address=f"127.0.0.1:{port}"))
    assert result.status == CRITICAL
    assert result.reason == f"connection refused by 127.0.0.1:{port}"


@needs_ipv6
def test_tcp_over_ipv6():
    target = HttpTarget("::1")
    try:
        result = run_check(make_check(type="tcp", address=f"[::1]:{target.port}"))
    finally:
        target.stop()
    assert result.status == OK
    assert result.reason.startswith(f"connected to [::1]:{target.port} in ")


# --- processes -----------------------------------------------------------------------------------


@pytest.fixture
def sleeper():
    """A `sleep` process with a unique argument (sleep adds its arguments up), ended by PID afterwards."""
    marker = f"0.{uuid.uuid4().int % 10**9:09d}"
    process = subprocess.Popen(["sleep", "300", marker])
    yield marker
    process.kill()
    process.wait()


def test_process_running(sleeper):
    result = run_check(make_check(type="process", process="^sleep$", cmdline=rf"^sleep 300 {sleeper}$"))
    assert result.status == OK
    assert result.reason == f"1 process matches process '^sleep$' and cmdline '^sleep 300 {sleeper}$'"
    assert result.measures == [("check.process_count", {}, 1.0, "")]


def test_process_count_bounds(sleeper):
    too_few = run_check(make_check(type="process", cmdline=sleeper, min=2))
    assert too_few.status == CRITICAL
    assert too_few.reason == f"1 process matches cmdline '{sleeper}', fewer than min 2"
    too_many = run_check(make_check(type="process", cmdline=sleeper, min=0, max=0))
    assert too_many.status == CRITICAL
    assert too_many.reason == f"1 process matches cmdline '{sleeper}', more than max 0"


def test_process_gone():
    marker = f"0.{uuid.uuid4().int % 10**9:09d}"
    process = subprocess.Popen(["sleep", "300", marker])
    process.kill()
    process.wait()
    result = run_check(make_check(type="process", cmdline=marker))
    assert result.status == CRITICAL
    assert result.reason == f"no process matches cmdline '{marker}'"
    assert result.measures == [("check.process_count", {}, 0.0, "")]


# --- systemd -------------------------------------------------------------------------------------


@pytest.mark.skipif(systemd_available() is None, reason="this machine runs systemd")
def test_systemd_not_available_is_unknown():
    result = run_check(make_check(type="systemd", unit="cron.service"))
    assert result.status == UNKNOWN
    assert result.reason.startswith("systemd not available")


SHOW_OUTPUT = "LoadState={load}\nActiveState={active}\nSubState={sub}\nResult={result}\n"


@pytest.mark.parametrize("load, active, sub, result, status, reason", [
    ("loaded", "active", "running", "success", OK, "nginx.service is active (running)"),
    ("loaded", "activating", "start", "success", WARNING, "nginx.service is activating (start)"),
    ("loaded", "failed", "failed", "exit-code", CRITICAL, "nginx.service is failed (failed), result exit-code"),
    ("loaded", "inactive", "dead", "success", CRITICAL, "nginx.service is inactive (dead)"),
    ("not-found", "inactive", "dead", "success", CRITICAL, "unit nginx.service not found"),
    ("masked", "inactive", "dead", "success", CRITICAL, "unit nginx.service is masked"),
])
def test_systemd_show_parsing(load, active, sub, result, status, reason):
    judged = judge_unit("nginx.service", parse_show(SHOW_OUTPUT.format(load=load, active=active, sub=sub,
                                                                        result=result)))
    assert judged.status == status
    assert judged.reason == reason


def test_systemd_show_without_state_is_unknown():
    judged = judge_unit("nginx.service", parse_show("Failed to connect to bus\n"))
    assert judged.status == UNKNOWN


# --- Nagios plugins ------------------------------------------------------------------------------


@needs_plugins
def test_plugin_check_tcp_ok(web):
    result = run_check(make_check(type="command", command=[str(PLUGINS / "check_tcp"), "-H", "127.0.0.1",
                                                           "-p", str(web.port)]))
    assert result.status == OK
    assert result.reason.startswith("TCP OK - ")
    perf = {extra["label"]: (value, unit) for metric, extra, value, unit in result.measures}
    assert perf["time"][1] == "s"
    assert 0 <= perf["time"][0] < 5


@needs_plugins
def test_plugin_found_on_path_and_refused(monkeypatch):
    monkeypatch.setenv("PATH", f"{os.environ.get('PATH', '')}:{PLUGINS}")
    port = closed_port()
    check = make_check(type="command", command=["check_tcp", "-H", "127.0.0.1", "-p", str(port)])
    assert check.options.command[0] == str(PLUGINS / "check_tcp")
    result = run_check(check)
    assert result.status == CRITICAL
    assert result.reason == f"connect to address 127.0.0.1 and port {port}: Connection refused"


@needs_plugins
def test_plugin_check_disk_perf_data():
    result = run_check(make_check(type="command", command=[str(PLUGINS / "check_disk"), "-w", "1%", "-c", "1%",
                                                           "-p", "/"]))
    assert result.status == OK
    assert result.reason.startswith("DISK OK")
    perf = {extra["label"]: (value, unit) for metric, extra, value, unit in result.measures}
    assert "/" in perf
    assert perf["/"][0] > 0
    assert perf["/"][1] in ("B", "KB", "MB", "MiB", "GB")


@needs_plugins
@pytest.mark.parametrize("code, status", [(0, OK), (1, WARNING), (2, CRITICAL), (3, UNKNOWN)])
def test_plugin_exit_codes(code, status):
    result = run_check(make_check(type="command", command=[str(PLUGINS / "check_dummy"), str(code), "from dummy"]))
    assert result.status == status
    assert result.reason.endswith(": from dummy")


def test_plugin_exit_code_out_of_range():
    result = run_check(make_check(type="command", command=[sys.executable, "-c",
                                                           "import sys; print('broken'); sys.exit(7)"]))
    assert result.status == UNKNOWN
    assert result.reason.endswith("exited with code 7, which is not a plugin status (0-3): broken")


def test_plugin_timeout_ends_process_group():
    marker = f"0.{uuid.uuid4().int % 10**9:09d}"
    script = f"import subprocess, time; subprocess.Popen(['sleep', '300', '{marker}']); time.sleep(300)"
    started = time.monotonic()
    result = run_check(make_check(type="command", command=[sys.executable, "-c", script], timeout="1s",
                                  every="10s"))
    elapsed = time.monotonic() - started
    assert result.status == CRITICAL
    assert result.reason.endswith("did not finish within 1s and was stopped")
    assert elapsed < 4
    deadline = time.monotonic() + 5
    left = ["sleeping child"]
    while left and time.monotonic() < deadline:
        left = [p for p in psutil.process_iter(["cmdline", "status"])
                if marker in (p.info["cmdline"] or []) and p.info["status"] != psutil.STATUS_ZOMBIE]
        time.sleep(0.1)
    assert left == []


def test_perfdata_forms():
    values = parse_perfdata("time=0.000826s;;;0.000000;10.000000 'free space'=80%;20;10;0;100 "
                            "'it''s'=3c bad-item 'unknown'=U load1=5,84;50;60;0; 'a,b'=1")
    found = {value.label: value for value in values}
    assert list(found) == ["time", "free space", "it's", "load1", "a_b"]
    assert found["time"].value == pytest.approx(0.000826)
    assert found["time"].unit == "s"
    assert found["time"].max == 10.0
    assert found["free space"].unit == "%"
    assert found["free space"].warn == "20"
    assert found["free space"].crit == "10"
    assert found["it's"].unit == "c"
    assert found["load1"].value == pytest.approx(5.84)


def test_output_with_long_text_and_more_perf():
    summary, perf = parse_output("DISK WARNING - /var 91% | /=10B;;;0;100\nlong text line\nmore | /var=91%;80;90\n")
    assert summary == "DISK WARNING - /var 91%"
    assert [(value.label, value.value, value.unit) for value in perf] == [("/", 10.0, "B"), ("/var", 91.0, "%")]


# --- runner --------------------------------------------------------------------------------------


def test_runner_stale_result_gives_no_samples(web):
    check = make_check(type="tcp", address=f"127.0.0.1:{web.port}", every="10s")
    runner = CheckRunner([check])
    runner.run_all_once()
    finished = runner.latest()["probe"].finished_at
    fresh = runner.samples(finished + 1)
    assert [sample.metric for sample in fresh] == ["check.status", "check.duration_seconds"]
    assert fresh[0].value == 0.0
    assert fresh[0].text.startswith("connected to")
    assert runner.samples(finished + 10.5) == []


def test_runner_unknown_has_no_status_sample():
    check = make_check(type="command", command=[sys.executable, "-c", "print('cannot tell'); raise SystemExit(3)"])
    runner = CheckRunner([check])
    runner.run_all_once()
    samples = runner.samples(time.time())
    assert [sample.metric for sample in samples] == ["check.duration_seconds"]
    assert runner.unsaved_results()[0][1].reason == "cannot tell"


@pytest.fixture
def stuck_kind(monkeypatch):
    """A check type whose run blocks until the test releases it, for the runner's overrun watchdog."""
    release = threading.Event()
    module = types.ModuleType("siq_test_stuck_kind")

    def run(check):
        release.wait(30)
        from siqd.checks import Result

        return Result(OK, "finished after all")

    module.run = run
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(KIND_MODULES, "stuck", module.__name__)
    monkeypatch.setattr("siqd.checks.runner.OVERRUN_GRACE", 0.5)
    yield release
    release.set()


def test_runner_reports_overrun_and_keeps_others_going(stuck_kind, web):
    from siqd.checks import Check
    from siqd.checks.tcp import TcpOptions

    stuck = Check(name="stuck", kind="stuck", every=2.0, timeout=0.5, options=TcpOptions(host="x", port=1))
    fast = make_check(name="fast", type="tcp", address=f"127.0.0.1:{web.port}", every="1s")
    runner = CheckRunner([stuck, fast])
    runner.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "stuck" not in runner.latest():
            time.sleep(0.05)
        overrun = runner.latest()["stuck"]
        first_fast = runner.latest()["fast"].finished_at
        time.sleep(2.2)
        later_fast = runner.latest()["fast"].finished_at
        stuck_kind.set()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and runner.latest()["stuck"].status != OK:
            time.sleep(0.05)
        recovered = runner.latest()["stuck"]
    finally:
        runner.stop()
    assert overrun.status == CRITICAL
    assert overrun.reason.startswith("did not finish within 1s")
    assert later_fast - first_fast >= 1.5
    assert recovered.reason == "finished after all"


# --- config errors -------------------------------------------------------------------------------


def config_error(tmp_path, text: str) -> str:
    """Return the one-line error of `siqctl config check` on a config made of `text`; it must exit 2."""
    path = tmp_path / "siq.toml"
    path.write_text(f'host = "h"\nstore = "{tmp_path}/siq.db"\n' + text
                    + '[notify.channels]\nteam = ["json://127.0.0.1:9/x"]\n')
    result = subprocess.run([str(BIN / "siqctl"), "config", "check", str(path)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {path}: ")
    return lines[0][len(f"error: {path}: "):]


def check_table(**keys) -> str:
    return check_tables(keys)


def check_tables(*tables: dict) -> str:
    import tomli_w

    return tomli_w.dumps({"check": list(tables)})


HTTP = {"name": "web", "type": "http", "url": "http://127.0.0.1:8080/"}


@pytest.mark.parametrize("keys, expected", [
    ({"type": "tcp", "address": "127.0.0.1:1"}, "check[#1].name: missing; expected a string"),
    ({"name": "a b", "type": "tcp", "address": "127.0.0.1:1"}, "check[#1].name: invalid check name 'a b'"),
    ({"name": "disk-full", "type": "tcp", "address": "127.0.0.1:1"},
     "check[#1].name: 'disk-full' is already the name of a rule"),
    ({"name": "x", "type": "ftp"}, "check[x].type: unknown check type 'ftp'; expected one of http, tcp"),
    ({"name": "x", "address": "127.0.0.1:1"}, "check[x].type: missing; expected a string"),
    ({**HTTP, "every": "500ms"}, "check[web].every: must be at least 1s"),
    ({**HTTP, "every": "10s", "timeout": "10s"}, "check[web].timeout: must be below every (10s), got 10s"),
    ({**HTTP, "timeout": "0s"}, "check[web].timeout: must be more than 0s"),
    ({**HTTP, "for": "soon"}, "check[web].for: expected a number with a unit"),
    ({**HTTP, "severity": "high"}, "check[web].severity: expected one of info, warning, critical"),
    ({**HTTP, "alert_on": "ok"}, "check[web].alert_on: expected \"critical\" or \"warning\""),
    ({**HTTP, "notify": ["pager"]}, "check[web].notify: unknown channel 'pager'"),
    ({**HTTP, "urll": "x"}, "check[web].urll: unknown key; known keys here:"),
    ({"name": "web", "type": "http"}, "check[web].url: missing; expected a string"),
    ({**HTTP, "url": "ftp://127.0.0.1/"}, "check[web].url: expected an http:// or https:// URL"),
    ({**HTTP, "url": "http://127.0.0.1:99999/"}, "check[web].url: invalid port"),
    ({**HTTP, "method": "FETCH"}, "check[web].method: expected one of GET, HEAD"),
    ({**HTTP, "expect_status": "2xx"}, "check[web].expect_status: invalid status '2xx'"),
    ({**HTTP, "expect_status": [200, 700]}, "check[web].expect_status: invalid status 700"),
    ({**HTTP, "max_latency": "fast"}, "check[web].max_latency: expected a number with a unit"),
    ({**HTTP, "body_regex": "(unclosed"}, "check[web].body_regex: invalid regular expression '(unclosed'"),
    ({**HTTP, "method": "HEAD", "body_contains": "ok"}, "check[web].method: a HEAD response has no body"),
    ({**HTTP, "headers": {"X-A": "a\nb"}}, "check[web].headers.X-A: must not contain a line break"),
    ({**HTTP, "headers": {"Bad Name": "x"}}, "check[web].headers: invalid header name 'Bad Name'"),
    ({**HTTP, "follow_redirects": "yes"}, "check[web].follow_redirects: expected true or false"),
    ({**HTTP, "tls_warn_days": -1}, "check[web].tls_warn_days: must be 0 or more"),
    ({**HTTP, "ca_file": "/nonexistent/ca.pem"}, "check[web].ca_file: /nonexistent/ca.pem not found"),
    ({**HTTP, "ca_file": "ca.pem"}, "check[web].ca_file: expected an absolute path"),
    ({"name": "db", "type": "tcp", "address": "127.0.0.1"}, "check[db].address: expected \"HOST:PORT\""),
    ({"name": "db", "type": "tcp", "address": "::1:5432"}, "check[db].address: write an IPv6 address in brackets"),
    ({"name": "db", "type": "tcp", "address": "127.0.0.1:0"}, "check[db].address: invalid port '0'"),
    ({"name": "p", "type": "process"}, "check[p].process: missing; set process"),
    ({"name": "p", "type": "process", "cmdline": "[unclosed"}, "check[p].cmdline: invalid regular expression"),
    ({"name": "p", "type": "process", "process": "nginx", "min": 3, "max": 2},
     "check[p].max: must be at least min (3), got 2"),
    ({"name": "u", "type": "systemd"}, "check[u].unit: missing; expected a string"),
    ({"name": "u", "type": "systemd", "unit": "bad unit"}, "check[u].unit: invalid unit name 'bad unit'"),
    ({"name": "c", "type": "command"}, "check[c].command: missing; expected a list of strings"),
    ({"name": "c", "type": "command", "command": "check_tcp -H 127.0.0.1"},
     "check[c].command: expected a list of strings such as"),
    ({"name": "c", "type": "command", "command": []}, "check[c].command: must not be empty"),
    ({"name": "c", "type": "command", "command": ["/usr/lib/nagios/plugins/check_nothing"]},
     "check[c].command: /usr/lib/nagios/plugins/check_nothing not found; install it"),
    ({"name": "c", "type": "command", "command": ["check_nothing_here"]},
     "check[c].command: 'check_nothing_here' not found on PATH"),
    ({"name": "c", "type": "command", "command": ["plugins/check_tcp"]},
     "check[c].command: expected an absolute path or a program name found on PATH"),
])
def test_check_config_errors(tmp_path, keys, expected):
    message = config_error(tmp_path, check_table(**keys))
    assert message.startswith(expected), message


def test_check_config_duplicate_name(tmp_path):
    text = check_tables(HTTP, HTTP)
    assert config_error(tmp_path, text) == ("check[#2].name: 'web' is already the name of a check; a check's name "
                                            "is also its rule's name, so choose another")


def test_check_config_not_a_table(tmp_path):
    assert config_error(tmp_path, 'check = ["web"]\n') == "check[#1]: expected a table ([[check]])"


def test_check_config_plugin_not_executable(tmp_path):
    plugin = tmp_path / "check_local"
    plugin.write_text("#!/bin/sh\necho OK\n")
    plugin.chmod(0o644)
    message = config_error(tmp_path, check_table(name="c", type="command", command=[str(plugin)]))
    assert message == f"check[c].command: {plugin} is not executable; run: chmod +x {plugin}"


def test_check_config_ca_file_not_pem(tmp_path):
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate\n")
    message = config_error(tmp_path, check_table(**HTTP, ca_file=str(bogus)))
    assert message.startswith(f"check[web].ca_file: {bogus} contains no usable PEM certificate")


def test_config_check_masks_secret_headers(tmp_path):
    path = tmp_path / "siq.toml"
    path.write_text(f'host = "h"\nstore = "{tmp_path}/siq.db"\n' + check_table(
        name="api", type="http", url="https://monitor:pa55word@127.0.0.1:8443/health",
        headers={"Authorization": "Bearer t0psecret", "X-Api-Key": "k3y-value", "Accept": "text/plain"}))
    result = subprocess.run([str(BIN / "siqctl"), "config", "check", str(path)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert "t0psecret" not in result.stdout
    assert "k3y-value" not in result.stdout
    assert "pa55word" not in result.stdout
    assert 'Accept = "text/plain"' in result.stdout
    assert 'Authorization = "****"' in result.stdout


def test_check_defaults_and_implicit_rule():
    config = parse_config({"host": "h", "store": "/tmp/unused.db", "check": [
        {"name": "web", "type": "http", "url": "http://127.0.0.1/"},
        {"name": "api", "type": "http", "url": "http://127.0.0.1/", "every": "4s", "alert_on": "warning",
         "for": "0s", "severity": "warning", "notify": []},
    ]}, "test.toml")
    web, api = config.checks
    assert (web.every, web.timeout, web.for_seconds, web.severity) == (60.0, 10.0, 60.0, "critical")
    assert web.options.expect_status == [(200, 399)]
    assert web.options.follow_redirects is True
    assert web.options.tls_warn_days == 14.0
    assert api.timeout == 2.0
    rules = {rule.name: rule for rule in config.rules}
    assert list(rules)[-2:] == ["web", "api"]
    assert (rules["web"].metric, rules["web"].labels, rules["web"].threshold) == ("check.status", {"check": "web"},
                                                                                 1.5)
    assert rules["web"].for_seconds == 60.0
    assert (rules["api"].threshold, rules["api"].clear, rules["api"].for_seconds) == (0.5, 0.5, 0.0)
    assert rules["api"].notify == []
