"""siqd as a process: signals, reload, version, and clean errors."""

import signal
import subprocess
import time

from conftest import BIN


def wait_for_text(process_log, text: str, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in process_log.read_text():
            return True
        time.sleep(0.1)
    return False


def test_sighup_reloads_or_keeps(siq, tmp_path):
    siq.write_config('interval = "1s"\n')
    log = tmp_path / "siqd.log"
    with open(log, "w") as handle:
        daemon = subprocess.Popen([str(BIN / "siqd"), "run"], env=siq.env(), stderr=handle)
    try:
        assert wait_for_text(log, "event=daemon_started")
        siq.config_path.write_text(siq.config_path.read_text() + 'intervall = "2s"\n')
        daemon.send_signal(signal.SIGHUP)
        assert wait_for_text(log, "event=reload_failed")
        line = [line for line in log.read_text().splitlines() if "reload_failed" in line][0]
        assert "key=intervall" in line
        assert str(siq.config_path) in line
        assert daemon.poll() is None
        siq.write_config('interval = "1s"\n[[rule]]\nname = "cpu"\nmetric = "cpu.percent"\nabove = 99\n')
        daemon.send_signal(signal.SIGHUP)
        assert wait_for_text(log, "event=config_reloaded")
        assert "rules=1" in [line for line in log.read_text().splitlines() if "config_reloaded" in line][0]
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(10) == 0


def test_version_flags():
    for command in ("siqd", "siqctl"):
        result = subprocess.run([str(BIN / command), "--version"], capture_output=True, text=True)
        assert result.returncode == 0
        assert result.stdout.startswith(f"{command} ")


def test_bad_config_exits_two(siq):
    siq.write_config('interval = "5 minutes"\n')
    result = siq.siqd("run", "--once")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert f"{siq.config_path}: interval: expected" in result.stderr


def test_unwritable_store_exits_one(siq, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    result = siq.siqd("run", "--once", "--store", f"sqlite:///{blocker}/sub/siq.db")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "cannot create the folder" in result.stderr


def test_no_command_is_usage_error():
    result = subprocess.run([str(BIN / "siqd")], capture_output=True, text=True)
    assert result.returncode == 2


def test_config_before_command(siq):
    result = subprocess.run([str(BIN / "siqd"), "--config", str(siq.config_path), "run", "--once"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_sigterm_during_start_exits_zero(siq):
    daemon = subprocess.Popen([str(BIN / "siqd"), "run"], env=siq.env(), stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)  # still importing or priming its counters
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(10) == 0
    assert "Traceback" not in daemon.stderr.read()


def test_notifies_while_config_file_broken(siq, tmp_path, tmpfs, receiver):
    from conftest import fill

    siq.write_config(f"""
interval = "1s"
[notify]
default = ["team"]
[notify.channels]
team = ["{receiver.url()}"]
[[rule]]
name = "scratch-full"
metric = "disk.used_percent"
above = 50
labels = {{ mount = "{tmpfs}" }}
""")
    log = tmp_path / "siqd.log"
    with open(log, "w") as handle:
        daemon = subprocess.Popen([str(BIN / "siqd"), "run"], env=siq.env(), stderr=handle)
    try:
        assert wait_for_text(log, "event=first_round_done")
        # An edit with a typo, rejected by the reload: siqd keeps its running config.
        siq.config_path.write_text(siq.config_path.read_text() + 'evrey = "1m"\n')
        daemon.send_signal(signal.SIGHUP)
        assert wait_for_text(log, "event=reload_failed")
        fill(tmpfs, 90)
        messages = receiver.wait_for(1, timeout=30)
        assert len(messages) == 1
        assert "scratch-full" in messages[0]["title"]
        assert "unknown key" not in log.read_text().split("event=reload_failed", 1)[1].split("\n", 1)[1]
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(15) == 0


def test_run_rejects_url_apprise_cannot_use(siq):
    siq.write_config('[notify]\ndefault = ["team"]\n[notify.channels]\nteam = ["nosuchscheme://127.0.0.1/x"]\n')
    result = siq.siqd("run", timeout=60)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (f"siqd: error: {siq.config_path}: notify.channels.team: Apprise does not "
                                     "accept the URL 'nosuchscheme://127.0.0.1/****'; check it with 'siqctl config check'")


def test_reload_keeps_config_when_apprise_rejects_url(siq, tmp_path, receiver):
    siq.write_config(f'interval = "1s"\n[notify]\ndefault = ["team"]\n[notify.channels]\nteam = ["{receiver.url()}"]\n')
    log = tmp_path / "siqd.log"
    with open(log, "w") as handle:
        daemon = subprocess.Popen([str(BIN / "siqd"), "run"], env=siq.env(), stderr=handle)
    try:
        assert wait_for_text(log, "event=first_round_done", timeout=30)
        siq.write_config('interval = "1s"\n[notify]\ndefault = ["team"]\n[notify.channels]\n'
                         'team = ["nosuchscheme://127.0.0.1/x"]\n')
        daemon.send_signal(signal.SIGHUP)
        assert wait_for_text(log, "event=reload_failed", timeout=30)
        line = [line for line in log.read_text().splitlines() if "reload_failed" in line][0]
        assert "key=notify.channels.team" in line
        assert "config_reloaded" not in log.read_text()
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(15) == 0
