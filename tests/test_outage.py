"""Losing the team database: siqd keeps sampling, buffers on disk, and catches up when it returns.

The test runs its own PostgreSQL cluster (initdb and pg_ctl as the postgres
user, on a free port of 127.0.0.1) so that it can stop and start it.
"""

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import BIN, JsonReceiver, Siq, fill, free_port
from siqd.store import open_store


class Cluster:
    def __init__(self):
        binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        if not binaries or os.geteuid() != 0:
            pytest.skip("needs root and PostgreSQL's server binaries (Debian package postgresql)")
        self.bin = Path(binaries[-1]).parent
        self.user = pwd.getpwnam("postgres")
        self.folder = Path(tempfile.mkdtemp(prefix="siq-pg-", dir="/tmp"))
        os.chown(self.folder, self.user.pw_uid, self.user.pw_gid)
        self.data = self.folder / "data"
        self.port = free_port()
        self.as_postgres([str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                          "--no-sync"])

    def as_postgres(self, command: list[str]) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *command], check=True, capture_output=True, timeout=120)

    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l",
                          str(self.folder / "log"), "-w", "start"])

    def stop(self) -> None:
        self.as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"])

    def remove(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
def cluster():
    instance = Cluster()
    instance.start()
    yield instance
    instance.remove()


def wait_until(condition, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def count(url: str, statement: str, params=()) -> int:
    store = open_store(url)
    try:
        return store.scalar(statement, params) or 0
    finally:
        store.close()


def buffered_rounds(path: Path) -> int:
    import sqlite3

    if not path.exists():
        return 0
    with sqlite3.connect(path) as connection:
        return connection.execute("SELECT COUNT(*) FROM rounds").fetchone()[0]


def start_daemon(siq, log: Path) -> subprocess.Popen:
    handle = open(log, "a")
    return subprocess.Popen([str(BIN / "siqd"), "run"], env=siq.env(), stderr=handle)


def stop_daemon(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(15)


def test_outage_buffers_and_catches_up(cluster, tmpfs, tmp_path):
    receiver = JsonReceiver().start()
    buffer = tmp_path / "buffer.db"
    siq = Siq(tmp_path, cluster.url())
    siq.write_config(f"""
interval = "1s"
[buffer]
path = "{buffer}"
[notify]
default = ["team"]
retry_initial = "1s"
[notify.channels]
team = ["{receiver.url()}"]
[[rule]]
name = "disk-full"
metric = "disk.used_percent"
above = 80
clear_below = 70
labels = {{ mount = "{tmpfs}" }}
""")
    log = tmp_path / "siqd.log"
    daemon = start_daemon(siq, log)
    try:
        assert wait_until(lambda: count(cluster.url(), "SELECT COUNT(DISTINCT ts) FROM samples") >= 2)

        cluster.stop()
        outage_started = time.time()
        fill(tmpfs, 90)  # breaches while the database is down
        assert wait_until(lambda: buffered_rounds(buffer) >= 3)

        assert stop_daemon(daemon) == 0  # a restart during the outage keeps the buffer
        kept = buffered_rounds(buffer)
        assert kept >= 3
        daemon = start_daemon(siq, log)  # starts while the database is still down
        assert wait_until(lambda: buffered_rounds(buffer) > kept)

        cluster.start()
        outage_ended = time.time()
        assert wait_until(lambda: buffered_rounds(buffer) == 0)
        messages = receiver.wait_for(1, timeout=30)
        assert len(messages) == 1
        assert "disk-full" in messages[0]["title"]

        incidents = open_store(cluster.url()).list_incidents()
        assert len(incidents) == 1
        assert outage_started <= incidents[0].opened_at <= outage_ended
        during = count(cluster.url(), "SELECT COUNT(DISTINCT ts) FROM samples WHERE ts > ? AND ts < ?",
                       (outage_started, outage_ended))
        assert during >= kept
    finally:
        stop_daemon(daemon)
        receiver.stop()
    text = log.read_text()
    assert "event=store_unavailable" in text
    assert "event=incident_breach_again" not in text  # the restarted daemon kept the firing state
    assert "event=store_back" in text
    assert "Traceback" not in text
