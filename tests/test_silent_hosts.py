"""A host whose siqd stopped reporting becomes one host-silent incident, opened by the first daemon to notice."""

import subprocess
import time

from conftest import BIN, Siq
from siqd.config import parse_config
from siqd.daemon import Daemon
from siqd.store import open_store


def daemon_for(store_url: str, host: str, clock) -> Daemon:
    config = parse_config({"host": host, "interval": "10s", "rule": []}, "test")
    config.store = store_url
    return Daemon(config, open_store(store_url), clock=clock)


def add_host(store, name: str, last_seen: float, interval: float = 10.0) -> None:
    with store.transaction():
        store.execute("INSERT INTO hosts (name, first_seen, last_seen, interval, version) VALUES (?, ?, ?, ?, ?)",
                      (name, last_seen - 3600, last_seen, interval, "test"))


def test_silent_peer_opens_then_clears(store_url):
    now = [1_000_000.0]
    watcher = daemon_for(store_url, "web-1", lambda: now[0])
    store = watcher.store
    add_host(store, "db-1", now[0] - 59)
    watcher.watch_hosts(now[0])
    assert store.list_incidents() == []  # 59 s is within the default 60 s minimum

    now[0] += 5
    watcher.watch_hosts(now[0])
    incidents = store.list_incidents()
    assert [(incident.host, incident.rule, incident.severity) for incident in incidents] == \
        [("db-1", "host-silent", "critical")]
    assert incidents[0].started_at == now[0] - 64

    watcher.watch_hosts(now[0] + 30)
    assert len(store.list_incidents()) == 1

    with store.transaction():
        store.mark_host_seen("db-1", now[0] + 40, 10.0, "test")
    watcher.watch_hosts(now[0] + 41)
    incident = store.list_incidents()[0]
    assert incident.status == "open"
    assert incident.cleared_at == now[0] + 41
    store.close()


def test_stale_after_uses_host_interval(store_url):
    now = 1_000_000.0
    watcher = daemon_for(store_url, "web-1", lambda: now)
    add_host(watcher.store, "batch-1", now - 100, interval=60.0)  # 3 x 60 s = 180 s allowed
    watcher.watch_hosts(now)
    assert watcher.store.list_incidents() == []
    watcher.store.close()


def test_two_daemons_racing_open_one(tmp_path, store_url):
    """Six siqd processes on different hosts notice the same dead host in the same moment."""
    store = open_store(store_url)
    add_host(store, "dead-1", time.time() - 3600)
    store.close()
    start = time.time() + 1.5
    processes = []
    for number in range(6):
        folder = tmp_path / f"h{number}"
        folder.mkdir()
        host = Siq(folder, store_url)
        host.config_path.write_text(f'host = "live-{number}"\nstore = "{store_url}"\n'
                                    f'[buffer]\npath = "{folder / "buffer.db"}"\n'
                                    '[[rule]]\nname = "cpu"\nmetric = "cpu.percent"\nabove = 101\n')
        script = ("import subprocess, sys, time; time.sleep(max(float(sys.argv[1]) - time.time(), 0)); "
                  "sys.exit(subprocess.run(sys.argv[2:]).returncode)")
        processes.append(subprocess.Popen(["python3", "-c", script, str(start), str(BIN / "siqd"), "run", "--once"],
                                          env=host.env(), stderr=subprocess.PIPE, text=True))
    errors = [process.communicate(timeout=60)[1] for process in processes]
    assert [process.returncode for process in processes] == [0] * 6, errors
    store = open_store(store_url)
    silent = [incident for incident in store.list_incidents() if incident.rule == "host-silent"]
    assert [incident.host for incident in silent] == ["dead-1"]
    assert [event.kind for event in store.events(silent[0].id)] == ["opened"]
    store.close()


def test_downtime_recorded_on_start(siq):
    siq.write_config('interval = "1s"\n')
    assert siq.siqd("run", "--once").returncode == 0
    store = siq.store()
    with store.transaction():
        store.execute("UPDATE hosts SET last_seen = last_seen - 3600")
    store.close()
    daemon = subprocess.Popen([str(BIN / "siqd"), "run"], env=siq.env(), stderr=subprocess.PIPE, text=True)
    time.sleep(2.5)
    daemon.terminate()
    log = daemon.communicate(timeout=15)[1]
    assert "event=downtime_recorded" in log
    store = siq.store()
    events = store.host_events("test-host")
    store.close()
    assert [event["kind"] for event in events] == ["downtime"]
    assert events[0]["text"].startswith("siqd was not running from ")


def test_hosts_lists_silent(siq):
    store = siq.store()
    add_host(store, "db-1", time.time() - 600)
    store.close()
    hosts = siq.siqctl_json("hosts")
    assert [(host["name"], host["state"]) for host in hosts] == [("db-1", "silent")]


def test_silenced_dead_host_notified_by_peer(store_url):
    """A host-silent incident held by a silence is notified by a peer when the silence ends."""
    import tomllib

    from siqd.config import parse_config

    now = [time.time()]
    config = parse_config(tomllib.loads('host = "web-1"\n[notify]\ndefault = ["team"]\n[notify.channels]\n'
                                        'team = ["json://127.0.0.1:9/x"]\n'), "test")
    config.store = store_url
    watcher = Daemon(config, open_store(store_url), clock=lambda: now[0])
    store = watcher.store
    add_host(store, "db-1", now[0] - 600)
    with store.transaction():
        silence = store.add_silence(host_glob="db-1", rule_glob="*", labels={}, starts_at=now[0] - 1,
                                    ends_at=now[0] + 60, cron=None, duration=None, reason="planned reboot",
                                    created_by="ana", created_at=now[0] - 1)
    watcher.watch_hosts(now[0])
    assert store.list_incidents()[0].silenced_by == silence
    assert store.scalar("SELECT COUNT(*) FROM notifications") == 0
    now[0] += 120  # the silence is over and db-1 is still dead
    watcher.release_silences(now[0])
    assert store.list_incidents()[0].silenced_by is None
    assert [row["kind"] for row in store.rows("SELECT kind FROM notifications")] == ["opened"]
    store.close()


def test_longer_stale_after_does_not_clear(store_url):
    """A daemon that would wait longer does not clear an incident another daemon opened sooner."""
    now = [1_000_000.0]
    quick = daemon_for(store_url, "web-1", lambda: now[0])
    quick.config.stale_after = 15.0
    patient = daemon_for(store_url, "web-2", lambda: now[0])
    add_host(quick.store, "db-1", now[0] - 20)
    quick.watch_hosts(now[0])
    patient.watch_hosts(now[0] + 5)  # db-1 is within its 60 s, but has not reported again
    incident = quick.store.list_incidents()[0]
    assert incident.cleared_at is None
    with quick.store.transaction():
        quick.store.mark_host_seen("db-1", now[0] + 10, 10.0, "test")
    patient.watch_hosts(now[0] + 11)
    incident = quick.store.list_incidents()[0]
    assert incident.cleared_at == now[0] + 11
    texts = [event.text for event in quick.store.events(incident.id)]
    assert texts[-1].startswith("host reported again at ")
    quick.store.close()
    patient.store.close()
