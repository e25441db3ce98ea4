"""Run a cron job's command for `siqctl run` and record the run as heartbeat pings.

The command runs without a shell. Its standard output and error pass
through unchanged (cron mails or logs them as before), while the last
lines are kept for the heartbeat's failure reason. SIGINT, SIGTERM and SIGHUP
sent to siqctl go on to the command. siq's own problems (no config, no
store) never keep the command from running: they become one warning line.
"""

import os
import signal
import subprocess
import threading
import time
import uuid

from siqd.records import Record

# The kept output: at most this many of the last lines, within this many bytes.
TAIL_LINES = 20
TAIL_BYTES = 4096
# After the command exits, its output pipes get this long to reach end of file.
# A background process that the command started and that keeps them open is
# not waited for longer.
DRAIN_SECONDS = 2.0
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# Exit codes of a command that could not start, as shells use them.
NOT_FOUND_EXIT = 127
NOT_EXECUTABLE_EXIT = 126


class RunResult(Record):
    exit_code: int  # what siqctl exits with: the command's code, 128+N after signal N, 126 or 127 if it did not start
    returncode: int | None  # as subprocess reports it (negative: killed by that signal); None if it did not start
    duration: float  # seconds
    output: str  # the tail of standard output and error, interleaved as they arrived
    interrupted_by: int | None = None  # the first signal that siqctl received and passed on
    error: str = ""  # why the command could not start


class OutputTail:
    """The last TAIL_BYTES of output from several threads; read with text()."""

    def __init__(self):
        self._chunks: list[bytes] = []
        self._size = 0
        self._lock = threading.Lock()

    def add(self, chunk: bytes) -> None:
        with self._lock:
            self._chunks.append(chunk)
            self._size += len(chunk)
            while self._size - len(self._chunks[0]) >= TAIL_BYTES:
                self._size -= len(self._chunks.pop(0))

    def text(self) -> str:
        with self._lock:
            data = b"".join(self._chunks)[-TAIL_BYTES:]
        lines = data.decode("utf-8", errors="replace").splitlines()
        return "\n".join(lines[-TAIL_LINES:]).strip("\n")


def _pump(source, sink_fd: int, tail: OutputTail) -> None:
    """Copy a pipe to a file descriptor until end of file, keeping the tail.

    If the sink is gone (a closed pipe), reading goes on so that the command
    is not blocked on a full pipe.
    """
    writable = True
    while True:
        try:
            chunk = os.read(source.fileno(), 65536)
        except OSError:
            break
        if not chunk:
            break
        tail.add(chunk)
        while writable and chunk:
            try:
                written = os.write(sink_fd, chunk)
            except OSError:
                writable = False
                break
            chunk = chunk[written:]
    source.close()


def _in_terminal_foreground() -> bool:
    """Tell whether siqctl runs in the foreground of a terminal.

    A Ctrl-C there reaches the command directly, because it is in siqctl's
    process group, so passing SIGINT or SIGHUP on would deliver it twice.
    """
    for descriptor in (0, 1, 2):
        try:
            if os.isatty(descriptor):
                return os.tcgetpgrp(descriptor) == os.getpgrp()
        except OSError:
            continue
    return False


def run_command(argv: list[str], stdout_fd: int = 1, stderr_fd: int = 2) -> RunResult:
    """Run `argv` without a shell, passing its output through and forwarding signals; wait for it.

    Must be called from the main thread, because it installs signal handlers
    (and restores the previous ones before it returns).
    """
    tail = OutputTail()
    received: list[int] = []
    child: list[subprocess.Popen] = []

    def forward(signum, _frame) -> None:
        if not received:
            received.append(signum)
        if signum in (signal.SIGINT, signal.SIGHUP) and _in_terminal_foreground():
            return
        if child:
            try:
                child[0].send_signal(signum)
            except ProcessLookupError:
                pass

    previous = {number: signal.signal(number, forward) for number in FORWARDED_SIGNALS}
    started = time.monotonic()
    try:
        try:
            process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except FileNotFoundError:
            return RunResult(NOT_FOUND_EXIT, None, time.monotonic() - started, "",
                             error=f"command not found: {argv[0]}")
        except PermissionError:
            return RunResult(NOT_EXECUTABLE_EXIT, None, time.monotonic() - started, "",
                             error=f"cannot run {argv[0]}: permission denied")
        except OSError as error:
            return RunResult(NOT_EXECUTABLE_EXIT, None, time.monotonic() - started, "",
                             error=f"cannot run {argv[0]}: {error.strerror or error}")
        child.append(process)
        if received:  # a signal that came while the command was starting
            forward(received[0], None)
        pumps = [threading.Thread(target=_pump, args=(process.stdout, stdout_fd, tail), daemon=True),
                 threading.Thread(target=_pump, args=(process.stderr, stderr_fd, tail), daemon=True)]
        for pump in pumps:
            pump.start()
        returncode = process.wait()
        duration = time.monotonic() - started
        drain_until = time.monotonic() + DRAIN_SECONDS
        for pump in pumps:
            pump.join(max(drain_until - time.monotonic(), 0.0))
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    exit_code = 128 - returncode if returncode < 0 else returncode
    return RunResult(exit_code, returncode, duration, tail.text(), interrupted_by=received[0] if received else None)


# -- recording -----------------------------------------------------------------------------------


class JobRecorder:
    """Write a run's start and end pings, turning store problems into one warning at the end.

    `open_store` returns a store or raises StoreError. When the start ping
    could not be written, it is called again for the end ping, because a
    store that was down may be back by then.
    """

    def __init__(self, open_store, host: str, name: str):
        self.open_store = open_store
        self.host = host
        self.name = name
        self.run_id = uuid.uuid4().hex
        self.store = None
        self.start_error: str | None = None

    def _store(self):
        if self.store is None:
            self.store = self.open_store()
        return self.store

    def start(self, now: float) -> None:
        from siqd.heartbeats import START
        from siqd.store import StoreError

        try:
            with self._store().transaction():
                self.store.add_heartbeat_ping(self.host, self.name, now, START, run_id=self.run_id)
        except StoreError as error:
            self.start_error = str(error)
            self._close()

    def finish(self, now: float, result: RunResult) -> str | None:
        """Write the end ping; return the warning to print, or None when both pings were written."""
        from siqd.heartbeats import FAILURE, SUCCESS, signal_name
        from siqd.store import StoreError

        message = result.error
        if result.interrupted_by is not None and result.returncode != -result.interrupted_by:
            message = f"interrupted by {signal_name(result.interrupted_by)}"
        failed = result.exit_code != 0 or result.interrupted_by is not None
        exit_code = result.returncode if result.returncode is not None else result.exit_code
        try:
            with self._store().transaction():
                self.store.add_heartbeat_ping(self.host, self.name, now, FAILURE if failed else SUCCESS,
                                              run_id=self.run_id, exit_code=exit_code, duration=result.duration,
                                              output=result.output, message=message)
        except StoreError as error:
            if self.start_error is not None:
                return f"the run of heartbeat {self.name} was not recorded: {self.start_error}"
            return f"the end of this run of heartbeat {self.name} was not recorded: {error}"
        finally:
            self._close()
        if self.start_error is not None:
            return (f"the start of this run of heartbeat {self.name} was not recorded, its end was: "
                    f"{self.start_error}")
        return None

    def _close(self) -> None:
        if self.store is not None:
            try:
                self.store.close()
            except Exception:  # closing a broken connection must not hide the run's outcome
                pass
            self.store = None
