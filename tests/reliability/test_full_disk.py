"""The store's filesystem fills up: siqd keeps running, logs one error, still notifies, and recovers."""

import os
import signal
import sqlite3
import subprocess
import time

import pytest

from conftest import BIN, Siq


def wait_until(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


def fill_up(mountpoint) -> None:
    """Write one file until the filesystem has no space left."""
    with open(mountpoint / "filler", "wb") as handle:
        try:
            while True:
                handle.write(b"\1" * 65536)
                handle.flush()
        except OSError:
            pass


@pytest.fixture
def data_mount(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mountpoint = tmp_path / "data"
    mountpoint.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mountpoint)], check=True)
    yield mountpoint
    subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def test_full_store_disk(tmp_path, data_mount, receiver):
    database = data_mount / "siq.db"
    siq = Siq(tmp_path, f"sqlite:///{database}")
    siq.write_config(f"""
interval = "1s"
[notify]
default = ["team"]
retry_initial = "1s"
retry_max = "2s"
[notify.channels]
team = ["{receiver.url()}"]
[[rule]]
name = "data-disk-full"
metric = "disk.used_percent"
above = 95
labels = {{ mount = "{data_mount}" }}
severity = "critical"
""")
    log = tmp_path / "siqd.log"
    with open(log, "w") as handle:
        daemon = subprocess.Popen([str(BIN / "siqd"), "run"], env=siq.env(), stderr=handle)
    try:
        reserve = data_mount / "siq.db.reserve"
        wait_until(reserve.exists, 20, "the reserve file")
        wait_until(lambda: database.exists() and sqlite3.connect(database).execute(
            "SELECT COUNT(*) FROM hosts").fetchone()[0], 20, "the first round")

        fill_up(data_mount)
        messages = wait_until(lambda: [m for m in receiver.messages if "data-disk-full" in m["title"]], 30,
                              "the disk-full notification")
        assert "CRITICAL" in messages[0]["title"]
        time.sleep(4)  # several rounds on the full disk
        assert daemon.poll() is None, "siqd exited on a full disk"
        errors = [line for line in log.read_text().splitlines() if "level=error" in line]
        assert len(errors) == 1, errors
        assert "disk is full" in errors[0]

        (data_mount / "filler").unlink()
        full_since = time.time()
        wait_until(lambda: "event=store_back" in log.read_text(), 90, "siqd writing again")
        wait_until(lambda: sqlite3.connect(database).execute("SELECT last_seen FROM hosts").fetchone()[0]
                   > full_since, 30, "a new round in the store")
        wait_until(reserve.exists, 30, "the reserve file to come back")
    finally:
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(20)
    assert code == 0
    connection = sqlite3.connect(database)
    assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    # The rounds taken while the disk was full were kept in memory and written afterwards.
    times = [row[0] for row in connection.execute(
        "SELECT DISTINCT s.ts FROM samples s JOIN series r ON r.id = s.series_id "
        "WHERE r.metric = 'cpu.percent' ORDER BY s.ts")]
    gaps = [later - earlier for earlier, later in zip(times, times[1:])]
    assert max(gaps) < 5, gaps
    assert "Traceback" not in log.read_text()
