"""siqd killed with SIGKILL at random moments while incidents open and notifications go out loses nothing."""

import os
import random
import re
import signal
import sqlite3
import subprocess
import time
from collections import defaultdict

import pytest

from conftest import BIN, fill

KILLS = 50


@pytest.fixture
def sqlite_siq(tmp_path):
    """The SQLite store only: the test checks the file with PRAGMA integrity_check."""
    from conftest import Siq

    instance = Siq(tmp_path, f"sqlite:///{tmp_path / 'siq.db'}")
    instance.write_config("")
    instance.store().close()
    return instance


def test_sigkill_at_random_points_keeps_the_store_whole(sqlite_siq, tmpfs, receiver):
    siq = sqlite_siq
    siq.write_config(f"""
interval = "1s"
[notify]
default = ["team"]
retry_initial = "1s"
retry_max = "2s"
[notify.channels]
team = ["{receiver.url()}"]
[[rule]]
name = "disk-full"
metric = "disk.used_percent"
above = 50
clear_below = 40
auto_resolve = true
labels = {{ mount = "{tmpfs}" }}
""")
    chance = random.Random(KILLS)
    started = time.monotonic()
    for kill in range(KILLS):
        # Flip the disk between full and empty so incidents keep opening and resolving.
        fill(tmpfs, 90 if kill % 4 < 2 else 10)
        daemon = subprocess.Popen([str(BIN / "siqd"), "run"], env=siq.env(), stderr=subprocess.DEVNULL)
        time.sleep(chance.uniform(0.2, 2.6))
        os.kill(daemon.pid, signal.SIGKILL)
        daemon.wait(10)
    assert time.monotonic() - started < 240

    # One clean run lets the outbox drain; then check what the kills left behind.
    fill(tmpfs, 10)
    daemon = subprocess.Popen([str(BIN / "siqd"), "run"], env=siq.env(), stderr=subprocess.DEVNULL)
    try:
        restarted = time.time()
        deadline = time.monotonic() + 60
        while True:
            with sqlite3.connect(siq.db) as connection:
                last_seen = connection.execute("SELECT last_seen FROM hosts").fetchone()[0]
            if last_seen > restarted:
                break
            assert time.monotonic() < deadline, "the restarted siqd took no round"
            time.sleep(0.2)
        while True:
            with sqlite3.connect(siq.db) as connection:
                pending = connection.execute(
                    "SELECT COUNT(*) FROM notifications WHERE status != 'sent'").fetchone()[0]
            if pending == 0:
                break
            assert time.monotonic() < deadline, f"{pending} notifications still undelivered"
            time.sleep(0.5)
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(20) == 0

    connection = sqlite3.connect(siq.db)
    assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]

    duplicates = connection.execute(
        "SELECT host, rule, series, COUNT(*) FROM incidents WHERE status = 'open' "
        "GROUP BY host, rule, series HAVING COUNT(*) > 1").fetchall()
    assert duplicates == []

    incidents = connection.execute("SELECT id, status, cleared_at, closed_at FROM incidents").fetchall()
    assert len(incidents) >= 2, "the kills left too few incidents to test anything"
    kinds = defaultdict(list)
    for incident_id, kind in connection.execute("SELECT incident_id, kind FROM events"):
        kinds[incident_id].append(kind)
    for incident_id, status, cleared_at, closed_at in incidents:
        assert kinds[incident_id][0] == "opened", (incident_id, kinds[incident_id])
        if cleared_at is not None:
            assert "cleared" in kinds[incident_id], (incident_id, kinds[incident_id])
        if closed_at is not None:
            assert status in kinds[incident_id], (incident_id, kinds[incident_id])

    orphans = connection.execute(
        "SELECT n.id FROM notifications n LEFT JOIN events e ON e.id = n.event_id "
        "WHERE n.event_id IS NOT NULL AND e.id IS NULL").fetchall()
    assert orphans == []

    # Every notification reached the receiver at least once; a repeat is the same notice with the same id.
    sent = dict(connection.execute("SELECT id, title FROM notifications"))
    received = defaultdict(list)
    time.sleep(1)
    for message in receiver.messages:
        found = re.search(r"\(siq notification (\d+)\)", message["message"])
        assert found, message
        received[int(found.group(1))].append(message["title"])
    assert set(received) >= set(sent), sorted(set(sent) - set(received))
    for notification_id, titles in received.items():
        assert set(titles) == {sent[notification_id]}
    connection.close()
