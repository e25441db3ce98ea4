"""A real filesystem fills up: siqd opens one incident and a receiver on 127.0.0.1 hears about it."""

import signal
import subprocess
import time

from conftest import BIN, JsonReceiver, df_percent, fill


def channel_config(receiver_url: str, mount, extra: str = "") -> str:
    return f"""
interval = "1s"
dashboard_url = "http://127.0.0.1:8765"
[notify]
default = ["team"]
retry_initial = "1s"
retry_max = "2s"
[notify.channels]
team = ["{receiver_url}"]
[[rule]]
name = "disk-full"
metric = "disk.used_percent"
above = 80
clear_below = 70
severity = "critical"
labels = {{ mount = "{mount}" }}
{extra}
"""


def test_tmpfs_fill_opens_one_incident(siq, tmpfs, receiver):
    siq.write_config(channel_config(receiver.url(), tmpfs))
    fill(tmpfs, 90)
    for _ in range(3):
        result = siq.siqd("run", "--once")
        assert result.returncode == 0, result.stderr
    incidents = siq.siqctl_json("incidents", "list")
    assert len(incidents) == 1
    incident = incidents[0]
    assert incident["labels"] == {"mount": str(tmpfs)}
    assert abs(incident["value"] - df_percent(tmpfs)) <= 1.0
    assert incident["threshold"] == 80
    assert incident["unit"] == "%"
    messages = receiver.wait_for(1)
    assert len(messages) == 1
    body = messages[0]["message"]
    assert f"siqctl incidents show {incident['id']}" in body
    assert "threshold: above 80.0%" in body
    assert f"http://127.0.0.1:8765/incidents/{incident['id']}" in body
    assert messages[0]["type"] == "failure"


def test_clear_then_resolve_notifies(siq, tmpfs, receiver):
    siq.write_config(channel_config(receiver.url(), tmpfs))
    fill(tmpfs, 90)
    siq.siqd("run", "--once")
    fill(tmpfs, 10)
    siq.siqd("run", "--once")
    incident = siq.siqctl_json("incidents", "list")[0]
    assert incident["cleared_at"] is not None
    assert incident["status"] == "open"
    siq.siqctl("resolve", str(incident["id"]), "-m", "deleted the fill file", check=True)
    messages = receiver.wait_for(3)
    titles = [message["title"] for message in messages]
    assert len(messages) == 3
    assert titles[0].endswith("opened")
    assert titles[1].endswith("condition cleared")
    assert titles[2].endswith("resolved")
    assert titles[2].startswith("[RESOLVED]")
    assert titles[0].startswith("[CRITICAL]")
    assert "deleted the fill file" in messages[2]["message"]


def test_second_incident_shows_last_fix(siq, tmpfs, receiver):
    siq.write_config(channel_config(receiver.url(), tmpfs))
    fill(tmpfs, 90)
    siq.siqd("run", "--once")
    first = siq.siqctl_json("incidents", "list")[0]
    fill(tmpfs, 10)
    siq.siqd("run", "--once")
    siq.siqctl("resolve", str(first["id"]), "-m", "rotated logs, fixed log level", check=True)
    fill(tmpfs, 90)
    siq.siqd("run", "--once")
    messages = receiver.wait_for(4)
    # The resolved notice goes out from siqctl's background worker and may arrive after the new opening.
    openings = [message for message in messages if "Last time:" in message["message"]]
    assert len(openings) == 1
    assert f"Last time: #{first['id']}, resolved with 'rotated logs, fixed log level'" in openings[0]["message"]


def test_down_receiver_gets_it_later(siq, tmpfs):
    receiver = JsonReceiver()  # not started: connections are refused
    siq.write_config(channel_config(receiver.url(), tmpfs))
    fill(tmpfs, 90)
    daemon = subprocess.Popen([str(BIN / "siqd"), "run"], env=siq.env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        store = siq.store()
        deadline = time.monotonic() + 30
        attempts = 0
        while time.monotonic() < deadline and attempts < 1:
            attempts = store.scalar("SELECT COUNT(*) FROM delivery_attempts WHERE ok = 0") if \
                store.table_exists("delivery_attempts") else 0
            time.sleep(0.2)
        assert attempts >= 1
        receiver.start()
        messages = receiver.wait_for(1, timeout=30)
        time.sleep(3)  # a duplicate would arrive within the next retries
        assert len(receiver.messages) == 1
        assert messages[0]["title"].endswith("opened")
        incident = siq.siqctl_json("incidents", "list")[0]
        shown = siq.siqctl_json("incidents", "show", str(incident["id"]))
        notification = shown["notifications"][0]
        assert notification["status"] == "sent"
        assert notification["attempts"] >= 2
        log = notification["attempt_log"]
        assert [attempt["ok"] for attempt in log] == [False] * (len(log) - 1) + [True]
        assert "refused" in log[0]["error"].lower() or "connect" in log[0]["error"].lower()
        store.close()
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(15)
        receiver.stop()
    assert daemon.returncode == 0
    assert "event=delivery_failed" in daemon.stderr.read()


def test_daemon_stops_on_sigterm(siq):
    siq.write_config('interval = "1s"\n')
    daemon = subprocess.Popen([str(BIN / "siqd"), "run"], env=siq.env(), stderr=subprocess.PIPE, text=True)
    time.sleep(2.5)
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(10) == 0
    log = daemon.stderr.read()
    assert "event=daemon_started" in log
    assert "event=daemon_stopped" in log
    store = siq.store()
    assert store.scalar("SELECT COUNT(DISTINCT ts) FROM samples") >= 2
    store.close()


def test_url_secrets_never_logged(siq, tmpfs):
    secret_url = "json://user:hunter2secret@127.0.0.1:1/t0kenpath?cto=1&rto=1"
    siq.write_config(channel_config(secret_url, tmpfs))
    fill(tmpfs, 90)
    result = siq.siqd("run", "--once")
    incident = siq.siqctl_json("incidents", "list")[0]
    shown = siq.siqctl("incidents", "show", str(incident["id"]))
    everything = result.stderr + result.stdout + shown.stdout + shown.stderr
    assert "delivery_failed" in result.stderr
    assert "hunter2secret" not in everything
    assert "t0kenpath" not in everything
    store = siq.store()
    for table in ("notifications", "delivery_attempts", "events", "incidents"):
        for row in store.rows(f"SELECT * FROM {table}"):
            assert "hunter2secret" not in repr(row)
            assert "t0kenpath" not in repr(row)
    store.close()


def test_outbox_survives_restart(siq):
    receiver = JsonReceiver()
    siq.write_config(f'[notify]\ndefault = ["team"]\nretry_initial = "1s"\n[notify.channels]\nteam = ["{receiver.url()}"]\n')
    siq.siqctl("open", "--title", "backup failed", check=True)  # its delivery process fails: receiver down
    store = siq.store()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not store.scalar("SELECT attempts FROM notifications"):
        time.sleep(0.1)
    assert store.scalar("SELECT status FROM notifications") == "pending"
    store.close()
    receiver.start()
    try:
        time.sleep(2.5)
        second = siq.siqd("run", "--once")  # a new process, as after a restart
        assert second.returncode == 0, second.stderr
        messages = receiver.wait_for(1)
        assert len(messages) == 1
        assert "backup failed" in messages[0]["title"]
    finally:
        receiver.stop()
