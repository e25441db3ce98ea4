"""A notification receiver that accepts connections and never responds delays nothing else."""

import signal
import socket
import subprocess
import threading
import time

from conftest import BIN, JsonReceiver


class HangingReceiver:
    """A TCP listener on 127.0.0.1 that accepts connections, never reads or responds, and keeps them open."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections: list[socket.socket] = []
        self.stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.listener.settimeout(0.2)
        while not self.stopped.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError:
                continue
            self.connections.append(connection)

    def stop(self) -> None:
        self.stopped.set()
        for connection in self.connections:
            connection.close()
        self.listener.close()


def test_hanging_receiver_delays_nothing(siq):
    hanging = HangingReceiver()
    good = JsonReceiver().start()
    siq.write_config(f"""
interval = "1s"
[notify]
default = ["team"]
timeout = "20s"
[notify.channels]
team = ["json://127.0.0.1:{hanging.port}/hook?cto=2&rto=30", "{good.url()}"]
""")
    daemon = subprocess.Popen([str(BIN / "siqd"), "run"], env=siq.env(), stderr=subprocess.DEVNULL)
    try:
        store = siq.store()
        deadline = time.monotonic() + 20
        while store.get_host("test-host") is None:
            assert time.monotonic() < deadline, "siqd took no round"
            time.sleep(0.2)
        opened = time.monotonic()
        assert siq.siqctl("open", "--title", "payments API down", "--severity", "critical").returncode == 0
        messages = good.wait_for(1, timeout=10)
        assert len(messages) == 1
        # Well inside the 20 s the hanging target may take.
        assert time.monotonic() - opened < 8
        assert "payments API down" in messages[0]["title"]
        assert hanging.connections, "the hanging receiver was never contacted"

        # Rounds go on while a delivery hangs.
        first = store.get_host("test-host")["last_seen"]
        time.sleep(3.5)
        later = store.get_host("test-host")["last_seen"]
        store.close()
        assert later - first >= 2
    finally:
        stopped = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(20)
        hanging.stop()
        good.stop()
    assert code == 0
    # siqd stops its delivery worker instead of waiting for the hung send.
    assert time.monotonic() - stopped < 10
