"""siqctl status: the local siqd, the last sample, the outbox and the store, with an exit code for scripts."""

import os
import signal
import subprocess
import time

from conftest import BIN, free_port


def start_daemon(siq) -> subprocess.Popen:
    return subprocess.Popen([str(BIN / "siqd"), "run"], env=siq.env(), stderr=subprocess.DEVNULL)


def status_json(siq):
    import json

    result = siq.siqctl("status", "--json")
    assert "Traceback" not in result.stderr
    return result.returncode, json.loads(result.stdout)


def test_status_follows_the_daemon(siq):
    siq.write_config('interval = "1s"\n')
    code, data = status_json(siq)
    assert code == 1
    assert data["siqd"]["running"] is False
    assert data["host"]["last_sample_at"] is None
    assert "not running on this machine" in siq.siqctl("status").stdout

    daemon = start_daemon(siq)
    try:
        deadline = time.monotonic() + 20
        while True:
            code, data = status_json(siq)
            if code == 0:
                break
            assert time.monotonic() < deadline, data
            time.sleep(0.3)
        assert data["siqd"]["pid"] == daemon.pid
        assert data["host"]["reporting"] is True
        assert data["host"]["last_sample_age_seconds"] < 5
        assert data["store"]["schema_version"] == data["store"]["expected_schema_version"]
        assert data["store"]["size_bytes"] > 0
        text = siq.siqctl("status").stdout
        assert f"running, pid {daemon.pid}" in text
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(15) == 0

    # Stopped, but its last sample is still recent, as between two cron runs of siqd run --once.
    code, data = status_json(siq)
    assert data["siqd"]["running"] is False
    assert code == 0
    assert "not running on this machine now" in siq.siqctl("status").stdout


def test_killed_daemon_is_not_running(siq):
    siq.write_config('interval = "1s"\n')
    daemon = start_daemon(siq)
    try:
        deadline = time.monotonic() + 20
        while status_json(siq)[0] != 0:
            assert time.monotonic() < deadline
            time.sleep(0.3)
    finally:
        os.kill(daemon.pid, signal.SIGKILL)
        daemon.wait(10)
    # The pid file stays behind, but no process has it locked.
    code, data = status_json(siq)
    assert data["siqd"]["running"] is False


def test_status_shows_the_outbox_backlog(siq):
    closed = free_port()
    siq.write_config(f"""
[notify]
default = ["ops"]
[notify.channels]
ops = ["json://127.0.0.1:{closed}/hook?token=s3cret"]
""")
    assert siq.siqctl("open", "--title", "backup job stuck").returncode == 0
    code, data = status_json(siq)
    assert data["outbox"]["undelivered"] >= 1
    oldest = data["outbox"]["oldest"]
    assert oldest["channel"] == "ops"
    assert "s3cret" not in siq.siqctl("status").stdout
    assert "s3cret" not in oldest["target"]
    assert "undelivered" in siq.siqctl("status").stdout
