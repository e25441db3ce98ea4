"""`siqctl top` on a real terminal: each test runs it in a tmux session of its own and reads the screen."""

import contextlib
import re
import shlex
import shutil
import socket
import subprocess
import threading
import time
import uuid
from urllib.parse import urlsplit

import pytest

from conftest import BIN, PG_SERVER, free_port
from siqd.collect.host import Sample

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed; scripts/run-tests "
                                                                     "installs it when run as root")

SQLITE_ONLY = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
WAIT_SECONDS = 15.0
# SGR parameters that set a colour: 30-37, 40-47, 90-97, 100-107, and 38/48 (256-colour and RGB).
# 39 and 49 only reset to the terminal's default colours, which tmux 3.3 writes after any attribute.
COLOUR_PARAMETER = re.compile(r"^(3[0-8]|4[0-8]|9[0-7]|10[0-7])$")


class TopPane:
    """A tmux server of its own, on a socket in the test's folder, with one session running `siqctl top` in `sh`.

    After top exits, the shell writes its exit code and `stty -a`, so a test can check
    that top restored the terminal. The session then ends by itself.
    """

    def __init__(self, siq, width: int, height: int, top_args: tuple[str, ...], env: dict, term: str | None):
        self.name = f"siq-top-test-{uuid.uuid4().hex[:12]}"
        self.socket_path = siq.folder / f"tmux-{self.name[-12:]}"
        self.rc_path = siq.folder / f"{self.name}.rc"
        self.err_path = siq.folder / f"{self.name}.err"
        self.stty_path = siq.folder / f"{self.name}.stty"
        command = " ".join(shlex.quote(part) for part in [str(BIN / "siqctl"), "top", *top_args])
        if term is not None:
            command = f"TERM={shlex.quote(term)} {command}"
        # Ctrl-C reaches the shell too, because the terminal sends it to the whole process group.
        # The trap keeps the shell alive, and top starts with the default SIGINT handling again.
        script = (f"trap : INT; {command} 2>{shlex.quote(str(self.err_path))}; code=$?; "
                  f"stty -a >{shlex.quote(str(self.stty_path))} 2>&1; "
                  f"echo $code >{shlex.quote(str(self.rc_path))}.tmp && "
                  f"mv {shlex.quote(str(self.rc_path))}.tmp {shlex.quote(str(self.rc_path))}")
        self.tmux("new-session", "-d", "-s", self.name, "-x", str(width), "-y", str(height), "sh", "-c", script,
                  env=env)

    def tmux(self, *args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(["tmux", "-u", "-f", "/dev/null", "-S", str(self.socket_path), *args],
                              capture_output=True, text=True, env=env, timeout=10, check=check)

    def screen(self, escapes: bool = False) -> str:
        return self.tmux("capture-pane", "-p", *(["-e"] if escapes else []), "-t", self.name).stdout

    def wait_for(self, condition, what: str, escapes: bool = False) -> str:
        """Return the screen once condition(screen) holds; fail after WAIT_SECONDS with the last screen."""
        deadline = time.monotonic() + WAIT_SECONDS
        screen = ""
        while time.monotonic() < deadline:
            if self.rc_path.exists():
                pytest.fail(f"siqctl top exited {self.rc_path.read_text().strip()} while waiting for {what}: "
                            f"{self.err_path.read_text() if self.err_path.exists() else ''}")
            screen = self.screen(escapes)
            if condition(screen):
                return screen
            time.sleep(0.1)
        pytest.fail(f"timed out after {WAIT_SECONDS}s waiting for {what}; the screen was:\n{screen}")

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.name, *keys)

    def resize(self, width: int, height: int) -> None:
        self.tmux("resize-window", "-t", self.name, "-x", str(width), "-y", str(height))

    def exit_code(self) -> int:
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            if self.rc_path.exists():
                return int(self.rc_path.read_text())
            time.sleep(0.05)
        pytest.fail(f"siqctl top still runs {WAIT_SECONDS}s after the key; the screen was:\n{self.screen()}")

    def stderr(self) -> str:
        return self.err_path.read_text() if self.err_path.exists() else ""

    def terminal_settings(self) -> str:
        return self.stty_path.read_text()

    def kill(self) -> None:
        self.tmux("kill-session", "-t", self.name, check=False)


@contextlib.contextmanager
def top_pane(siq, *top_args: str, width: int = 120, height: int = 30, no_color: str | None = None,
             term: str | None = None):
    env = siq.env()
    if no_color is not None:
        env["NO_COLOR"] = no_color
    pane = TopPane(siq, width, height, top_args, env, term)
    try:
        yield pane
    finally:
        pane.kill()


def populate(siq) -> None:
    """Give the store three hosts as siqd writes them and two open incidents.

    db-old last reported 15 minutes ago, so it is silent, and the real `siqd run --once`
    of test-host opens its critical host-silent incident. web-2 reported just now and
    gets a warning through `siqctl open`.
    """
    store = siq.store()
    now = time.time()
    with store.transaction():
        store.mark_host_seen("db-old", now - 900, 10.0, "test")
        store.write_samples("db-old", now - 900, [Sample("cpu.percent", {}, 12.0),
                                                  Sample("disk.used_percent", {"mount": "/var/lib/postgresql"}, 81.5)])
        store.mark_host_seen("web-2", now, 10.0, "test")
        store.write_samples("web-2", now, [Sample("cpu.percent", {}, 55.0), Sample("memory.used_percent", {}, 40.0),
                                           Sample("load.per_core_1m", {}, 0.42),
                                           Sample("disk.used_percent", {"mount": "/"}, 30.0)])
    store.close()
    result = siq.siqd("run", "--once")
    assert result.returncode == 0, result.stderr
    siq.siqctl("open", "--host", "web-2", "--title", "deploy failed", "--severity", "warning", check=True)


def lines_of(screen: str) -> list[str]:
    return screen.splitlines()


def line_with(screen: str, text: str) -> int:
    return next(index for index, line in enumerate(lines_of(screen)) if text in line)


def colour_parameters(screen: str) -> list[str]:
    found = []
    for sequence in re.findall(r"\x1b\[([0-9;:]*)m", screen):
        found += [parameter for parameter in re.split("[;:]", sequence) if COLOUR_PARAMETER.match(parameter)]
    return found


def terminal_is_sane(settings: str) -> bool:
    words = settings.split()
    return "icanon" in words and "echo" in words


@SQLITE_ONLY
def test_top_shows_hosts_then_q_quits(siq):
    populate(siq)
    with top_pane(siq) as pane:
        screen = pane.wait_for(lambda text: "deploy failed" in text and "test-host" in text, "hosts and incidents")
        lines = lines_of(screen)

        assert "siq top: sqlite, 3 hosts (2 up, 1 silent), 2 open incidents" in lines[0]
        assert lines[0].rstrip().endswith("q quits")
        header = lines[line_with(screen, "HOST")]
        assert header.split() == ["HOST", "STATE", "LAST", "SEEN", "OPEN", "CPU", "MEM", "LOAD/CORE", "WORST", "DISK"]
        # Silent hosts first, then hosts with open incidents, then the rest.
        assert line_with(screen, "db-old") < line_with(screen, "web-2") < line_with(screen, "test-host")
        assert lines[line_with(screen, "db-old")].split()[1] == "silent"
        assert "81.5% /var/lib/postgresql" in lines[line_with(screen, "db-old")]
        web = lines[line_with(screen, "web-2")].split()
        assert web[1:] == ["up", web[2], "ago", "1", "55.0%", "40.0%", "0.42", "30.0%", "/"]
        assert lines[line_with(screen, "test-host")].split()[1] == "up"
        assert "%" in lines[line_with(screen, "test-host")]

        incident_header = line_with(screen, "SEVERITY")
        assert lines[incident_header].split() == ["ID", "SEVERITY", "HOST", "WHAT", "OPENED"]
        critical = lines[incident_header + 1].split()
        assert critical[1:3] == ["critical", "db-old"]
        warning = lines[incident_header + 2].split()
        assert warning[1:5] == ["warning", "web-2", "deploy", "failed"]
        assert lines[-1].startswith("updated ")

        pane.keys("q")
        assert pane.exit_code() == 0
        assert pane.stderr() == ""
        assert terminal_is_sane(pane.terminal_settings())


@SQLITE_ONLY
def test_ctrl_c_quits_and_restores_terminal(siq):
    populate(siq)
    with top_pane(siq) as pane:
        pane.wait_for(lambda text: "db-old" in text, "the host table")
        pane.keys("C-c")
        assert pane.exit_code() == 0
        assert pane.stderr() == ""
        assert terminal_is_sane(pane.terminal_settings())


@SQLITE_ONLY
@pytest.mark.parametrize("no_color, coloured", [("1", False), ("", True)])
def test_no_color_turns_colour_off(siq, no_color, coloured):
    populate(siq)
    with top_pane(siq, no_color=no_color) as pane:
        screen = pane.wait_for(lambda text: "deploy failed" in text, "the incidents", escapes=True)
        # An empty NO_COLOR counts as unset (no-color.org), so the silent host is red then.
        assert bool(colour_parameters(screen)) is coloured
        if coloured:
            assert "31" in colour_parameters(screen)
            assert "33" in colour_parameters(screen)
        pane.keys("q")
        assert pane.exit_code() == 0


@SQLITE_ONLY
def test_narrow_terminal_hides_columns(siq):
    populate(siq)
    with top_pane(siq, width=50, height=20) as pane:
        screen = pane.wait_for(lambda text: "test-host" in text and "deploy" in text, "hosts at 50 columns")
        assert all(name in screen for name in ("db-old", "web-2", "test-host"))
        assert "LOAD/CORE" not in screen
        header = lines_of(screen)[line_with(screen, "HOST")].split()
        assert header[:2] == ["HOST", "STATE"]
        assert {"OPEN", "CPU", "MEM"} <= set(header)
        assert "test-host" in lines_of(screen)[line_with(screen, "test-host")].split()
        assert "q quits" in lines_of(screen)[0]
        assert all(len(line) <= 50 for line in lines_of(screen))

        pane.resize(19, 4)
        pane.wait_for(lambda text: "terminal too small" in text, "the too-small message")
        pane.resize(120, 30)
        pane.wait_for(lambda text: "LOAD/CORE" in text, "all columns after the resize")

        pane.keys("q")
        assert pane.exit_code() == 0
        assert "Traceback" not in pane.stderr()


@SQLITE_ONLY
def test_new_incident_appears_after_refresh(siq):
    populate(siq)
    with top_pane(siq, "--interval", "0.5s") as pane:
        pane.wait_for(lambda text: "2 open incidents" in text, "the first reading")
        siq.siqctl("open", "--host", "test-host", "--title", "backup job failed", "--severity", "critical",
                   check=True)
        screen = pane.wait_for(lambda text: "backup job failed" in text, "the new incident")
        assert "3 open incidents" in lines_of(screen)[0]
        # Critical incidents come before the warning.
        assert line_with(screen, "backup job failed") < line_with(screen, "deploy failed")
        pane.keys("q")
        assert pane.exit_code() == 0


@SQLITE_ONLY
def test_r_key_refreshes_now(siq):
    populate(siq)
    with top_pane(siq, "--interval", "1h") as pane:
        pane.wait_for(lambda text: "2 open incidents" in text, "the first reading")
        siq.siqctl("open", "--host", "web-2", "--title", "certificate expires", check=True)
        time.sleep(1.0)
        assert "certificate expires" not in pane.screen()  # the next timed reading is an hour away
        pane.keys("r")
        pane.wait_for(lambda text: "certificate expires" in text, "the incident after r")
        pane.keys("Q")
        assert pane.exit_code() == 0


def test_store_error_shows_and_recovers(siq):
    populate(siq)
    with top_pane(siq, "--interval", "0.5s") as pane:
        pane.wait_for(lambda text: "db-old" in text, "the host table")
        store = siq.store()
        try:
            with store.transaction():
                store.execute("ALTER TABLE hosts RENAME TO hosts_away")
            screen = pane.wait_for(lambda text: lines_of(text)[-1].startswith("error: "), "the store error")
            assert "hosts" in lines_of(screen)[-1]
            assert "retrying every 0.5s" in lines_of(screen)[-1]
            assert "no such table: hosts" in screen or "relation \"hosts\" does not exist" in screen
            assert "db-old" in screen  # the last reading stays on the screen
        finally:
            with store.transaction():
                store.execute("ALTER TABLE hosts_away RENAME TO hosts")
            store.close()
        pane.wait_for(lambda text: lines_of(text)[-1].startswith("updated "), "recovery")
        pane.keys("q")
        assert pane.exit_code() == 0
        assert pane.stderr() == ""


class TcpProxy:
    """A TCP forwarder from a port on 127.0.0.1 to the test PostgreSQL server; stop() takes the server away."""

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.port = free_port()
        self.listener: socket.socket | None = None
        self.connections: list[socket.socket] = []
        self.lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        """Refuse new connections and cut the open ones, as a stopped server does."""
        # shutdown() wakes the thread blocked in accept(); close() alone would leave the socket listening.
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        with self.lock:
            for connection in self.connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
                connection.close()
            self.connections.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # stop() closed the listener
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self.lock:
                self.connections += [client, server]
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_postgresql_down_shows_error_and_recovers(siq):
    populate(siq)
    server = urlsplit(PG_SERVER)
    proxy = TcpProxy(server.hostname, server.port or 5432)
    proxy.start()
    siq.store_url = siq.store_url.replace(server.netloc, f"{server.username}@127.0.0.1:{proxy.port}", 1)
    siq.write_config("")
    try:
        with top_pane(siq, "--interval", "0.5s") as pane:
            screen = pane.wait_for(lambda text: "db-old" in text, "the host table through the proxy")
            assert "siq top: postgresql, 3 hosts" in lines_of(screen)[0]

            proxy.stop()
            screen = pane.wait_for(lambda text: lines_of(text)[-1].startswith("error: store "), "the outage")
            assert "db-old" in screen  # the last reading stays on the screen
            # Later refreshes try to connect again and are refused, and top keeps running.
            screen = pane.wait_for(lambda text: "refused" in lines_of(text)[-1], "a refused reconnection")
            assert "retrying every 0.5s" in lines_of(screen)[-1]

            proxy.start()
            pane.wait_for(lambda text: lines_of(text)[-1].startswith("updated "), "the reconnection")
            pane.keys("q")
            assert pane.exit_code() == 0
            assert pane.stderr() == ""
    finally:
        proxy.stop()


@SQLITE_ONLY
def test_empty_store_says_no_host(siq):
    with top_pane(siq) as pane:
        screen = pane.wait_for(lambda text: "No host has reported yet" in text, "the empty view")
        assert "0 hosts (0 up, 0 silent), 0 open incidents" in lines_of(screen)[0]
        assert "No open incidents." in screen
        pane.keys("q")
        assert pane.exit_code() == 0


@SQLITE_ONLY
def test_unknown_terminal_type_is_usage_error(siq):
    with top_pane(siq, term="no-such-terminal") as pane:
        assert pane.exit_code() == 2
        assert pane.stderr() == ("error: the terminal type TERM='no-such-terminal' is unknown to curses; set TERM "
                                 "to your terminal's type, e.g. TERM=xterm-256color\n")


@SQLITE_ONLY
def test_dumb_terminal_is_usage_error(siq):
    with top_pane(siq, term="dumb") as pane:
        assert pane.exit_code() == 2
        assert pane.stderr() == ("error: the terminal type TERM='dumb' cannot move the cursor, which siqctl top "
                                 "needs; use a full-screen terminal (e.g. TERM=xterm-256color) or 'siqctl hosts'\n")


@SQLITE_ONLY
def test_not_a_terminal_is_usage_error(siq):
    result = siq.siqctl("top")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == "error: siqctl top needs a terminal; use 'siqctl hosts' in scripts\n"


@SQLITE_ONLY
@pytest.mark.parametrize("interval, message", [
    ("0.1s", "error: --interval 0.1s is too short; give at least 0.5s\n"),
    ("0s", "error: --interval 0s is too short; give at least 0.5s\n"),
    ("abc", "error: invalid --interval: expected a number with a unit, such as \"30s\", \"5m\", \"1h30m\" or "
            "\"2d\", got 'abc'\n"),
    ("-1s", "error: invalid --interval: expected a number with a unit, such as \"30s\", \"5m\", \"1h30m\" or "
            "\"2d\", got '-1s'\n"),
])
def test_invalid_interval_is_usage_error(siq, interval, message):
    result = siq.siqctl("top", "--interval", interval)
    assert result.returncode == 2
    assert result.stderr == message
