"""Shared fixtures: a config and store in a temporary folder, the real CLIs, a JSON receiver, tmpfs mounts."""

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class JsonReceiver:
    """An HTTP server on 127.0.0.1 that records what Apprise's json:// posts to it."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.messages: list[dict] = []
        self.server = None
        self._lock = threading.Lock()

    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hook?cto=1&rto=2"

    def start(self) -> "JsonReceiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("content-length", 0))
                payload = json.loads(self.rfile.read(length))
                with receiver._lock:
                    receiver.messages.append(payload)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def wait_for(self, count: int, timeout: float = 15.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.05)
        with self._lock:
            return list(self.messages)


@pytest.fixture
def receiver():
    started = JsonReceiver().start()
    yield started
    started.stop()


# A host with a disk rule and a channel whose receiver is never reached: tests of
# rule timing and notification rows use it with a fake clock.
DISK_RULE_WITH_CHANNEL = """
host = "db-1"
[notify]
default = ["team"]
[notify.channels]
team = ["json://127.0.0.1:9/x"]
[[rule]]
name = "disk-full"
metric = "disk.used_percent"
above = 90
clear_below = 85
"""

PG_SERVER = os.environ.get("SIQ_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """A fresh, empty store location: an SQLite file, or a schema of its own in the test PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path / 'siq.db'}"
        return
    import psycopg

    schema = f"siq_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_SERVER, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        pytest.fail(f"PostgreSQL at {PG_SERVER} is not reachable ({error}); .ci/run starts it")
    admin.execute(f"CREATE SCHEMA {schema}")
    yield f"{PG_SERVER}?options=-csearch_path%3D{schema}"
    admin.execute(f"DROP SCHEMA {schema} CASCADE")
    admin.close()


class Siq:
    """A config file and a store, driven through the real siqd and siqctl."""

    def __init__(self, folder: Path, store_url: str):
        self.folder = folder
        self.config_path = folder / "siq.toml"
        self.store_url = store_url
        self.db = folder / "siq.db"  # the file, when the store is SQLite
        self.kind = "postgresql" if store_url.startswith("postgresql") else "sqlite"

    def write_config(self, text: str) -> Path:
        base = f'host = "test-host"\nstore = "{self.store_url}"\n'
        self.config_path.write_text(base + text)
        self.config_path.chmod(0o600)
        return self.config_path

    def env(self) -> dict:
        env = dict(os.environ)
        env["SIQ_CONFIG"] = str(self.config_path)
        env.pop("NO_COLOR", None)
        return env

    def siqctl(self, *args: str, check: bool = False, input: str | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run([str(BIN / "siqctl"), *args], capture_output=True, text=True, env=self.env(),
                                input=input, timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(f"siqctl {' '.join(args)} exited {result.returncode}: {result.stderr}")
        return result

    def siqctl_json(self, *args: str):
        return json.loads(self.siqctl(*args, "--json", check=True).stdout)

    def siqd(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / "siqd"), *args], capture_output=True, text=True, env=self.env(),
                              timeout=timeout)

    def store(self):
        from siqd.store import open_store

        return open_store(self.store_url)


@pytest.fixture
def siq(tmp_path, store_url):
    """A config and an empty store, as on a host where siqd has taken its first round."""
    instance = Siq(tmp_path, store_url)
    instance.write_config("")
    instance.store().close()
    return instance


@pytest.fixture
def tmpfs(tmp_path):
    """Mount a 4 MiB tmpfs (root only) and unmount it afterwards."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mountpoint)], check=True)
    yield mountpoint
    subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def fill(mountpoint: Path, percent: float) -> None:
    """Fill a filesystem to about `percent` of what df counts, with one file."""
    stats = os.statvfs(mountpoint)
    size = stats.f_blocks * stats.f_frsize
    target = mountpoint / "fill"
    current = target.stat().st_size if target.exists() else 0
    used = (stats.f_blocks - stats.f_bfree) * stats.f_frsize - current
    wanted = int(size * percent / 100) - used
    with open(target, "wb") as handle:
        handle.write(b"\0" * max(wanted, 0))


def df_percent(mountpoint: Path) -> float:
    """Return df's Use% for a mount, as df prints it."""
    output = subprocess.run(["df", "--output=pcent", str(mountpoint)], capture_output=True, text=True,
                            check=True).stdout
    return float(output.splitlines()[1].strip().rstrip("%"))
