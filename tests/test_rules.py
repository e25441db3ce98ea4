"""Rule timing with a fake clock: `for` windows, hysteresis, unknown data, restarts."""

import pytest

from siqd.collect.host import Sample
from siqd.config import parse_config
from siqd.daemon import Daemon
from siqd.rules import CLEAR, FIRE, FIRING, PENDING, evaluate
from siqd.store import open_store

RULES = """
[[rule]]
name = "disk-full"
metric = "disk.used_percent"
above = 90
clear_below = 85
for = "5m"
severity = "critical"
"""


def make_rule(text: str = RULES):
    return parse_config(_toml(text), "test").rules[0]


def _toml(text: str) -> dict:
    import tomllib

    return tomllib.loads(text)


def run(rule, values, start=0.0, step=60.0):
    """Feed values one per `step` seconds; return the transitions as (time, kind)."""
    state, transitions = None, []
    for index, value in enumerate(values):
        now = start + index * step
        state, transition = evaluate(rule, state, value, now)
        if transition:
            transitions.append((now, transition.kind))
    return state, transitions


def test_breach_fires_after_for_holds():
    _, transitions = run(make_rule(), [95] * 7)
    assert transitions == [(300.0, FIRE)]


def test_dip_restarts_for_window():
    # breach 0-240 s, dip at 300 s, breach again from 360 s: fires only 5 min after 360 s.
    _, transitions = run(make_rule(), [95, 95, 95, 95, 95, 80, 95, 95, 95, 95, 95, 95])
    assert transitions == [(660.0, FIRE)]


def test_value_at_threshold_is_no_breach():
    _, transitions = run(make_rule(), [90.0] * 10)
    assert transitions == []


def test_hysteresis_holds_between_thresholds():
    values = [95] * 6 + [88, 87, 86, 89]
    state, transitions = run(make_rule(), values)
    assert transitions == [(300.0, FIRE)]
    assert state.state == FIRING


def test_clear_below_clear_threshold():
    state, transitions = run(make_rule(), [95] * 6 + [88, 84])
    assert transitions == [(300.0, FIRE), (420.0, CLEAR)]
    assert state is None


def test_default_clear_is_threshold():
    rule = make_rule('[[rule]]\nname = "r"\nmetric = "cpu.percent"\nabove = 90\n')
    _, transitions = run(rule, [95, 89.9])
    assert transitions == [(0.0, FIRE), (60.0, CLEAR)]


def test_below_rule_with_clear_above():
    rule = make_rule('[[rule]]\nname = "r"\nmetric = "memory.used_percent"\nbelow = 10\nclear_above = 20\n'
                     'for = "1m"\n')
    _, transitions = run(rule, [5, 5, 15, 25])
    assert transitions == [(60.0, FIRE), (180.0, CLEAR)]


def test_unknown_neither_breaches_nor_clears():
    rule = make_rule()
    state, transitions = run(rule, [95, None, None, 95, 95, 95, 95])
    assert transitions == [(300.0, FIRE)]
    state, transitions = run(rule, [95] * 6 + [None] * 5)
    assert state.state == FIRING
    assert [kind for _, kind in transitions] == [FIRE]


def test_pending_keeps_breach_start():
    state, _ = run(make_rule(), [95, 95], start=1000.0)
    assert state.state == PENDING
    assert state.since == 1000.0


# -- the daemon with a real store and a fake clock --------------------------------------------


class FakeClock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def daemon_factory(store_url):
    store = open_store(store_url)
    clock = FakeClock()
    config = parse_config(_toml('host = "db-1"\n' + RULES), "test")
    config.store = store_url

    def start() -> Daemon:
        daemon = Daemon(config, store, clock=clock)
        daemon.load_states()
        return daemon

    yield start, clock, store
    store.close()


def feed(daemon: Daemon, clock: FakeClock, value: float | None, mount: str = "/") -> None:
    samples = [] if value is None else [Sample("disk.used_percent", {"mount": mount}, value)]
    with daemon.store.transaction():
        daemon.evaluate_rules(samples, clock())
    clock.now += 60


def open_incidents(store):
    return store.list_incidents(["open"])


def test_restart_keeps_for_window(daemon_factory):
    start, clock, store = daemon_factory
    daemon = start()
    for _ in range(3):  # pending for 2 minutes
        feed(daemon, clock, 95)
    daemon = start()  # restart: the window goes on from where it was
    feed(daemon, clock, 95)
    feed(daemon, clock, 95)
    feed(daemon, clock, 95)
    incidents = open_incidents(store)
    assert len(incidents) == 1
    assert incidents[0].opened_at - incidents[0].started_at == 300.0


def test_restart_while_firing_no_duplicate(daemon_factory):
    start, clock, store = daemon_factory
    daemon = start()
    for _ in range(7):
        feed(daemon, clock, 95)
    for _ in range(3):
        daemon = start()
        feed(daemon, clock, 96)
    assert len(open_incidents(store)) == 1
    assert len(store.list_incidents()) == 1


def test_repeat_breach_joins_open_incident(daemon_factory):
    start, clock, store = daemon_factory
    daemon = start()
    for value in [95] * 6 + [80] + [95] * 6:
        feed(daemon, clock, value)
    incidents = store.list_incidents()
    assert len(incidents) == 1
    kinds = [event.kind for event in store.events(incidents[0].id)]
    assert kinds == ["opened", "cleared", "breach"]
    assert incidents[0].cleared_at is None


def test_series_get_separate_incidents(daemon_factory):
    start, clock, store = daemon_factory
    daemon = start()
    for _ in range(6):
        with daemon.store.transaction():
            daemon.evaluate_rules([Sample("disk.used_percent", {"mount": "/"}, 95),
                                   Sample("disk.used_percent", {"mount": "/var"}, 97)], clock())
        clock.now += 60
    series = sorted(incident.series for incident in open_incidents(store))
    assert series == ["mount=/", "mount=/var"]


def test_cleared_incident_stays_open(daemon_factory):
    start, clock, store = daemon_factory
    daemon = start()
    for value in [95] * 6 + [50]:
        feed(daemon, clock, value)
    incident = open_incidents(store)[0]
    assert incident.status == "open"
    assert incident.cleared_at is not None


def test_auto_resolve_closes_on_clear(store_url):
    store = open_store(store_url)
    config = parse_config(_toml('host = "db-1"\n' + RULES + "auto_resolve = true\n"), "test")
    clock = FakeClock()
    daemon = Daemon(config, store, clock=clock)
    for value in [95] * 6 + [50]:
        feed(daemon, clock, value)
    incident = store.list_incidents()[0]
    assert incident.status == "resolved"
    assert incident.closed_by == "siqd"
    store.close()


def test_label_globs_select_series(store_url):
    store = open_store(store_url)
    text = 'host = "db-1"\n[[rule]]\nname = "var-full"\nmetric = "disk.used_percent"\nabove = 90\n' \
           'labels = { mount = "/var*" }\n'
    config = parse_config(_toml(text), "test")
    daemon = Daemon(config, store, clock=FakeClock())
    with store.transaction():
        daemon.evaluate_rules([Sample("disk.used_percent", {"mount": "/"}, 99),
                               Sample("disk.used_percent", {"mount": "/var/lib"}, 99)], 1000.0)
    assert [incident.series for incident in store.list_incidents()] == ["mount=/var/lib"]
    store.close()


def test_host_globs_select_hosts(store_url):
    store = open_store(store_url)
    text = 'host = "web-1"\n[[rule]]\nname = "db-cpu"\nmetric = "cpu.percent"\nabove = 90\nhosts = ["db-*"]\n'
    daemon = Daemon(parse_config(_toml(text), "test"), store, clock=FakeClock())
    with store.transaction():
        daemon.evaluate_rules([Sample("cpu.percent", {}, 99)], 1000.0)
    assert store.list_incidents() == []
    store.close()


def test_last_time_note_in_next_opening(daemon_factory, tmp_path):
    from siqd.incidents import Incidents

    start, clock, store = daemon_factory
    daemon = start()
    for _ in range(6):
        feed(daemon, clock, 95)
    first = open_incidents(store)[0]
    Incidents(store, daemon.config).resolve(first.id, "rotated logs", "alice", clock())
    for value in [50] + [95] * 6:
        feed(daemon, clock, value)
    second = open_incidents(store)[0]
    assert second.id != first.id
    assert second.previous_id == first.id


def test_grace_holds_then_fires():
    rule = make_rule('[[rule]]\nname = "r"\nmetric = "cpu.percent"\nabove = 90\n')
    state, transitions = None, []
    for now in (0.0, 10.0, 20.0, 30.0):
        state, transition = evaluate(rule, state, 99.0, now, hold_until=25.0)
        if transition:
            transitions.append((now, transition.kind, transition.started_at))
    assert transitions == [(30.0, FIRE, 0.0)]


def test_grace_spike_opens_nothing(daemon_factory):
    start, clock, store = daemon_factory
    daemon = start()
    daemon.config.startup_grace = 120.0
    daemon.start_grace(clock())
    # A boot-time spike that lasts 2 minutes, all inside the grace: nothing opens.
    for value in (95, 95, 50, 50):
        feed(daemon, clock, value)
    assert store.list_incidents() == []


def test_startup_grace_defaults_to_two_intervals():
    config = parse_config(_toml('interval = "15s"\n'), "test")
    assert config.startup_grace == 30.0
    config = parse_config(_toml('interval = "15s"\nstartup_grace = "1m"\n'), "test")
    assert config.startup_grace == 60.0


def test_rules_command_shows_states(siq):
    siq.write_config('interval = "1s"\n[[rule]]\nname = "demo-disk"\nmetric = "disk.used_percent"\nabove = 1\n'
                     'labels = { mount = "/" }\n[[rule]]\nname = "slow-disk"\nmetric = "disk.used_percent"\n'
                     'above = 1\nfor = "1h"\nlabels = { mount = "/" }\n[[rule]]\nname = "never"\n'
                     'metric = "cpu.percent"\nabove = 101\nhosts = ["other-*"]\n')
    assert siq.siqd("run", "--once").returncode == 0
    data = siq.siqctl_json("rules")
    states = {row["rule"]: row for row in data["rules"]}
    assert states["demo-disk"]["state"] == "firing"
    assert states["demo-disk"]["incident"] == 1
    assert states["slow-disk"]["state"] == "pending"
    assert states["slow-disk"]["incident"] is None
    assert states["never"]["state"] == "not for this host"
    assert 0 < states["demo-disk"]["value"] < 100
    text = siq.siqctl("rules").stdout
    assert "firing for" in text


def test_reminders_at_interval_while_firing(store_url):
    store = open_store(store_url)
    text = ('host = "db-1"\n[notify]\ndefault = ["team"]\n[notify.channels]\nteam = ["json://127.0.0.1:9/x"]\n'
            + RULES + 'remind_every = "1h"\n')
    config = parse_config(_toml(text), "test")
    clock = FakeClock()
    daemon = Daemon(config, store, clock=clock)

    def minute(value):
        feed(daemon, clock, value)
        daemon.send_reminders(clock())

    for _ in range(6):
        minute(95)  # opens at minute 5
    for _ in range(150):
        minute(95)  # 2.5 hours more
    kinds = [row["kind"] for row in store.rows("SELECT kind FROM notifications ORDER BY id")]
    assert kinds == ["opened", "reminder", "reminder"]
    for value in [50] + [95] * 200:  # clears, then breaches again: no reminder while cleared
        minute(value)
    assert store.scalar("SELECT COUNT(*) FROM notifications WHERE kind = 'reminder'") >= 3
    reminder = store.row("SELECT body FROM notifications WHERE kind = 'reminder' ORDER BY id LIMIT 1")
    assert "Still firing, open for 1h" in reminder["body"]
    store.close()


def test_no_reminders_by_default(store_url):
    store = open_store(store_url)
    text = 'host = "db-1"\n[notify]\ndefault = ["team"]\n[notify.channels]\nteam = ["json://127.0.0.1:9/x"]\n' + RULES
    daemon = Daemon(parse_config(_toml(text), "test"), store, clock=FakeClock())
    for _ in range(300):
        feed(daemon, daemon.clock, 95)
        daemon.send_reminders(daemon.clock())
    assert store.scalar("SELECT COUNT(*) FROM notifications WHERE kind = 'reminder'") == 0
    store.close()


def test_vanished_pending_series_forgotten(daemon_factory):
    start, clock, store = daemon_factory
    daemon = start()
    daemon.config.interval = 60.0
    feed(daemon, clock, 95, mount="/mnt/usb")  # pending
    for _ in range(6):
        feed(daemon, clock, None)  # the mount is gone for six rounds
    assert daemon.states == {}
    assert store.load_rule_states("db-1") == []
    for _ in range(3):
        feed(daemon, clock, 95, mount="/mnt/usb")  # back: a new window starts, nothing fires yet
    assert store.list_incidents() == []
