"""Forecast rules: a linear fit over a window predicts when a disk is full."""

import tomllib

from siqd.collect.host import Sample
from siqd.config import default_rules, parse_config
from siqd.daemon import Daemon
from siqd.rules import forecast_eta
from siqd.store import open_store

RULE = """
host = "db-1"
[[rule]]
name = "disk-filling"
metric = "disk.used_percent"
predict = 100
within = "6h"
window = "1h"
"""


def test_eta_of_steady_growth():
    points = [(minute * 60.0, 40.0 + minute * 0.2) for minute in range(61)]  # 12% per hour
    eta = forecast_eta(points, 100.0, 3600.0, 3600.0)
    assert abs(eta - 4 * 3600) < 60


def test_no_eta_before_window_full():
    points = [(minute * 60.0, 40.0 + minute) for minute in range(20)]
    assert forecast_eta(points, 100.0, 19 * 60.0, 3600.0) is None


def test_noise_is_no_trend():
    values = [50, 58, 49, 57, 50, 59, 48, 56, 51, 57, 49, 58, 50]
    points = [(index * 300.0, float(value)) for index, value in enumerate(values)]
    assert forecast_eta(points, 100.0, 3600.0, 3600.0) == float("inf")


def test_falling_is_no_trend():
    points = [(minute * 60.0, 80.0 - minute * 0.1) for minute in range(61)]
    assert forecast_eta(points, 100.0, 3600.0, 3600.0) == float("inf")


def run(store_url: str, values: list[float]) -> Daemon:
    config = parse_config(tomllib.loads(RULE), "test")
    clock = [1_000_000.0]
    daemon = Daemon(config, open_store(store_url), clock=lambda: clock[0])
    for value in values:
        with daemon.store.transaction():
            daemon.evaluate_rules([Sample("disk.used_percent", {"mount": "/"}, value)], clock[0])
        clock[0] += 60
    return daemon


def test_filling_disk_opens_forecast(store_url):
    daemon = run(store_url, [40.0 + minute * 0.3 for minute in range(70)])  # 18% per hour
    incidents = daemon.store.list_incidents()
    assert len(incidents) == 1
    incident = incidents[0]
    assert incident.comparison == "forecast"
    assert incident.threshold == 100
    assert "100.0% in about" in incident.title
    assert incident.value < 6 * 3600


def test_slow_growth_opens_nothing(store_url):
    daemon = run(store_url, [40.0 + minute * 0.01 for minute in range(120)])  # 0.6% per hour
    assert daemon.store.list_incidents() == []


def test_forecast_clears_when_growth_stops(store_url):
    daemon = run(store_url, [40.0 + minute * 0.3 for minute in range(70)] + [61.0] * 70)
    incident = daemon.store.list_incidents()[0]
    assert incident.cleared_at is not None
    kinds = [event.kind for event in daemon.store.events(incident.id)]
    assert kinds == ["opened", "cleared"]


def test_default_rules_include_forecast_and_descriptions():
    rules = {rule.name: rule for rule in default_rules()}
    assert rules["disk-filling"].predict == 100
    assert all(rule.description for rule in rules.values())


def test_predict_rule_needs_within(siq):
    siq.write_config('[[rule]]\nname = "f"\nmetric = "disk.used_percent"\npredict = 100\n')
    result = siq.siqctl("config", "check")
    assert result.returncode == 2
    assert "rule[f].within: missing" in result.stderr
