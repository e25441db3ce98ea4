"""Several writers on one store at the same moment: one incident per series, no lost writes."""

import subprocess
import sys

from conftest import BIN

RACE_SCRIPT = """
import subprocess, sys, time
siqctl, start, args = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
time.sleep(max(start - time.time(), 0))
result = subprocess.run([siqctl, *args], capture_output=True, text=True)
print(result.returncode, result.stderr.strip())
"""


def race(siq, count: int, *args: str) -> list[tuple[int, str]]:
    """Run `count` siqctl processes with `args`, released at the same instant; return (exit code, stderr)."""
    import time

    start = time.time() + 1.0
    processes = [
        subprocess.Popen([sys.executable, "-c", RACE_SCRIPT, str(BIN / "siqctl"), str(start), *args],
                         env=siq.env(), stdout=subprocess.PIPE, text=True)
        for _ in range(count)
    ]
    results = []
    for process in processes:
        output = process.communicate(timeout=60)[0].strip()
        code, _, error = output.partition(" ")
        results.append((int(code), error))
    return results


def test_simultaneous_opens_make_one_incident(siq):
    results = race(siq, 8, "open", "--host", "db-1", "--title", "replication lag", "--by", "ci")
    assert [code for code, _ in results] == [0] * 8
    incidents = siq.siqctl_json("incidents", "list", "--status", "all")
    assert len(incidents) == 1
    shown = siq.siqctl_json("incidents", "show", str(incidents[0]["id"]))
    kinds = [event["kind"] for event in shown["events"]]
    assert kinds.count("opened") == 1
    assert kinds.count("repeat") == 7


def test_simultaneous_resolves_one_wins(siq):
    siq.siqctl("open", "--host", "db-1", "--title", "disk", check=True)
    results = race(siq, 6, "resolve", "1", "-m", "fixed it")
    codes = sorted(code for code, _ in results)
    assert codes == [0] + [1] * 5
    errors = [error for code, error in results if code == 1]
    assert all("incident 1 is already resolved" in error for error in errors)
    shown = siq.siqctl_json("incidents", "show", "1")
    assert [event["kind"] for event in shown["events"]].count("resolved") == 1


def test_simultaneous_comments_all_kept(siq):
    siq.siqctl("open", "--host", "db-1", "--title", "disk", check=True)
    results = race(siq, 10, "comment", "1", "looked at it")
    assert [code for code, _ in results] == [0] * 10
    shown = siq.siqctl_json("incidents", "show", "1")
    assert [event["kind"] for event in shown["events"]].count("comment") == 10


def test_ten_hosts_share_one_database(tmp_path, store_url):
    """Ten siqd processes with their own host names and three siqctl writers on one store."""
    import time

    from conftest import Siq

    if not store_url.startswith("postgresql"):
        import pytest

        pytest.skip("the team store is PostgreSQL")
    daemons = []
    for number in range(10):
        folder = tmp_path / f"host-{number}"
        folder.mkdir()
        host = Siq(folder, store_url)
        host.config_path.write_text(
            f'host = "web-{number:02d}"\nstore = "{store_url}"\ninterval = "1s"\n'
            f'[buffer]\npath = "{folder / "buffer.db"}"\n'
            '[[rule]]\nname = "demo-disk"\nmetric = "disk.used_percent"\nabove = 1\nlabels = { mount = "/" }\n'
        )
        daemons.append(subprocess.Popen([str(BIN / "siqd"), "run"], env=host.env(), stderr=subprocess.PIPE,
                                        text=True))
    cli = Siq(tmp_path, store_url)
    cli.write_config("")
    try:
        time.sleep(3)
        writers = [
            subprocess.Popen([str(BIN / "siqctl"), "open", "--host", f"ci-{number}", "--title", "deploy failed"],
                             env=cli.env(), stdout=subprocess.DEVNULL)
            for number in range(3)
        ]
        assert [writer.wait(60) for writer in writers] == [0, 0, 0]
        # Ten daemons on a busy machine: wait until each has stored three rounds.
        store = cli.store()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            counts = store.rows("SELECT r.host, COUNT(DISTINCT s.ts) AS rounds FROM samples s "
                                "JOIN series r ON r.id = s.series_id GROUP BY r.host")
            if len(counts) == 10 and min(row["rounds"] for row in counts) >= 3:
                break
            time.sleep(0.5)
        store.close()
    finally:
        for daemon in daemons:
            daemon.terminate()
        logs = [daemon.communicate(timeout=15)[1] for daemon in daemons]
    assert [daemon.returncode for daemon in daemons] == [0] * 10, logs
    assert not [log for log in logs if "Traceback" in log or "level=error" in log]

    hosts = cli.siqctl_json("hosts")
    names = sorted(host["name"] for host in hosts)
    assert names == [f"web-{number:02d}" for number in range(10)]
    assert {host["state"] for host in hosts} == {"up"}
    incidents = cli.siqctl_json("incidents", "list", "--limit", "0")
    assert sorted(incident["host"] for incident in incidents if incident["rule"] == "demo-disk") == names
    assert len([incident for incident in incidents if incident["rule"] == "manual"]) == 3
    store = cli.store()
    rounds = store.rows("SELECT r.host, COUNT(DISTINCT s.ts) AS rounds FROM samples s "
                        "JOIN series r ON r.id = s.series_id GROUP BY r.host")
    store.close()
    assert len(rounds) == 10
    assert min(row["rounds"] for row in rounds) >= 3


def test_simultaneous_first_starts_migrate_once(tmp_path, store_url):
    from conftest import Siq

    from siqd.store import open_store
    from siqd.store.schema import SCHEMA_VERSION

    siq = Siq(tmp_path, store_url)
    siq.write_config('[[rule]]\nname = "cpu"\nmetric = "cpu.percent"\nabove = 99\n')
    processes = [subprocess.Popen([str(BIN / "siqd"), "run", "--once"], env=siq.env(), stderr=subprocess.PIPE,
                                  text=True) for _ in range(6)]
    errors = [process.communicate(timeout=60)[1] for process in processes]
    assert [process.returncode for process in processes] == [0] * 6, errors
    store = open_store(store_url)
    assert store.schema_version() == SCHEMA_VERSION
    store.close()


def still_delivering(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return b"deliver" in handle.read()
    except OSError:
        return False


def test_store_url_not_in_command_lines(siq):
    """siqctl's background delivery gets the store by environment, so a password stays out of `ps`."""
    import socket
    import time

    silent = socket.socket()  # accepts connections (in the kernel) and never replies, so delivery hangs
    silent.bind(("127.0.0.1", 0))
    silent.listen(5)
    port = silent.getsockname()[1]
    siq.write_config(f'[notify]\ndefault = ["team"]\n[notify.channels]\nteam = ["json://127.0.0.1:{port}/x?rto=5"]\n')
    secret_store = siq.store_url.replace("postgres@", "postgres:pw-in-url@") if siq.kind == "postgresql" \
        else siq.store_url
    result = siq.siqctl("--store", secret_store, "open", "--title", "check ps")
    assert result.returncode == 0, result.stderr
    seen = []
    pids = set()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        for pid in filter(str.isdigit, __import__("os").listdir("/proc")):
            try:
                command = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if "-m siqd deliver" in command:
                seen.append(command)
                pids.add(int(pid))
        time.sleep(0.05)
    silent.close()  # the hanging delivery now fails at once; wait for it so the store can be dropped
    for pid in pids:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and still_delivering(pid):
            time.sleep(0.1)
    assert seen
    assert not [command for command in seen if "pw-in-url" in command or siq.store_url in command]
