"""Properties of the rule engine over generated sample sequences and a fake clock."""

import tempfile
import tomllib
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import DISK_RULE_WITH_CHANNEL
from siqd.collect.host import Sample
from siqd.config import parse_config
from siqd.daemon import Daemon
from siqd.rules import CLEAR, FIRE, evaluate
from siqd.store import open_store

RULE = DISK_RULE_WITH_CHANNEL + 'for = "3m"\n'
STEP = 60.0

# Readings per minute: unknown, clearly ok, inside the hysteresis band, breaching.
values = st.lists(st.sampled_from([None, 50.0, 84.0, 87.0, 90.0, 95.0]), min_size=1, max_size=120)


def config():
    return parse_config(tomllib.loads(RULE), "test")


@given(values)
def test_fire_only_after_unbroken_for(sequence):
    rule = config().rules[0]
    state = None
    for index, value in enumerate(sequence):
        now = index * STEP
        state, transition = evaluate(rule, state, value, now)
        if transition is not None and transition.kind == FIRE:
            assert now - transition.started_at >= rule.for_seconds
            window = sequence[int(transition.started_at // STEP): index + 1]
            assert all(item is None or item > rule.threshold for item in window)


@given(values)
def test_clear_only_below_clear_threshold(sequence):
    rule = config().rules[0]
    state = None
    for index, value in enumerate(sequence):
        state, transition = evaluate(rule, state, value, index * STEP)
        if transition is not None and transition.kind == CLEAR:
            assert value < rule.clear


def run(sequence, restart_at: int | None) -> list[tuple]:
    """Feed the sequence through a daemon on a fresh store; return the incidents and their timelines."""
    with tempfile.TemporaryDirectory() as folder:
        location = f"sqlite:///{Path(folder) / 'siq.db'}"
        store = open_store(location)
        clock = [1_000_000.0]
        daemon = Daemon(config(), store, clock=lambda: clock[0])
        for index, value in enumerate(sequence):
            if index == restart_at:
                daemon = Daemon(config(), store, clock=lambda: clock[0])
                daemon.load_states()
            samples = [] if value is None else [Sample("disk.used_percent", {"mount": "/"}, value)]
            with store.transaction():
                daemon.evaluate_rules(samples, clock[0])
            daemon.end_flapping(clock[0])
            clock[0] += STEP
        incidents = store.list_incidents()
        open_count = len(store.list_incidents(["open"]))
        result = [(incident.series, incident.started_at, incident.opened_at, incident.cleared_at,
                   tuple(event.kind for event in store.events(incident.id))) for incident in incidents]
        notices = [(row["kind"], row["created_at"]) for row in
                   store.rows("SELECT kind, created_at FROM notifications ORDER BY id")]
        store.close()
    assert open_count <= 1
    return result, notices


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values, st.integers(min_value=0, max_value=119))
def test_restart_changes_nothing(sequence, restart_at):
    assert run(sequence, restart_at) == run(sequence, None)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from([50.0, 95.0]), min_size=10, max_size=200))
def test_flapping_bounds_notifications(sequence):
    _, notices = run(sequence, None)
    rule = config().rules[0]
    times = [created for kind, created in notices if kind != "stable"]
    for start in times:
        in_window = [created for created in times if start <= created < start + rule.flap_window]
        assert len(in_window) <= rule.flap_max + 2
