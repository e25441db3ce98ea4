"""A series that keeps changing state sends one 'flapping' notice, then nothing until it is stable."""

from conftest import DISK_RULE_WITH_CHANNEL
from siqd.collect.host import Sample
from siqd.config import parse_config
from siqd.daemon import Daemon
from siqd.store import open_store

CONFIG = DISK_RULE_WITH_CHANNEL


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now


def run_minutes(daemon: Daemon, clock: Clock, values) -> None:
    for value in values:
        with daemon.store.transaction():
            daemon.evaluate_rules([Sample("disk.used_percent", {"mount": "/"}, value)], clock())
        daemon.end_flapping(clock())
        clock.now += 60


def make(store_url: str, extra: str = ""):
    import tomllib

    config = parse_config(tomllib.loads(CONFIG + extra), "test")
    clock = Clock()
    return Daemon(config, open_store(store_url), clock=clock), clock


def kinds(store) -> list[str]:
    return [row["kind"] for row in store.rows("SELECT kind FROM notifications ORDER BY id")]


def test_flapping_holds_notifications(store_url):
    daemon, clock = make(store_url)
    run_minutes(daemon, clock, [95, 50] * 90)  # three hours of changing every minute
    assert kinds(daemon.store) == ["opened", "cleared", "breach", "cleared", "breach", "cleared", "flapping"]
    incident = daemon.store.list_incidents()[0]
    assert incident.flapping_since is not None
    assert len(daemon.store.list_incidents()) == 1


def test_stable_again_sends_one_notice(store_url):
    daemon, clock = make(store_url)
    run_minutes(daemon, clock, [95, 50] * 10 + [50] * 40)
    sent = kinds(daemon.store)
    assert sent[-2:] == ["flapping", "stable"]
    assert daemon.store.list_incidents()[0].flapping_since is None
    body = daemon.store.row("SELECT body FROM notifications WHERE kind = 'stable'")["body"]
    assert "Stable again for 30m: the condition has cleared" in body


def test_flap_settings_per_rule(store_url):
    daemon, clock = make(store_url, 'flap_max = 2\nflap_window = "10m"\n')
    run_minutes(daemon, clock, [95, 50] * 5)
    assert kinds(daemon.store) == ["opened", "cleared", "flapping"]


def test_flapping_shown_in_list(siq):
    store = siq.store()
    daemon, clock = make(siq.store_url)
    run_minutes(daemon, clock, [95, 50] * 10)
    store.close()
    listed = siq.siqctl_json("incidents", "list")
    assert listed[0]["flapping"] is True
    assert "flapping" in siq.siqctl("incidents", "list").stdout
