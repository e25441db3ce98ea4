"""Cron heartbeats: the state decision with a fake clock, the config, the store, siqctl and a running siqd."""

import json
import os
import signal
import subprocess
import time
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import psutil
import pytest

from conftest import BIN, free_port
from siqd.config import ConfigError, parse_config
from siqd.cron import CronExpression
from siqd.heartbeats import (
    FAILED, LATE, ON_TIME, RUNNING, STUCK, WAITING, Heartbeat, Ping, decide_status, default_grace, max_runtime,
    next_fire, previous_fire,
)

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
DAY = 86400.0
HOUR = 3600.0


def at(text: str, zone=UTC) -> float:
    """Return the epoch seconds of a wall-clock time such as "2026-12-04 03:00:00" in `zone`."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=zone).timestamp()


def period_heartbeat(period: float = DAY, grace: float = HOUR, **extra) -> Heartbeat:
    return Heartbeat(name="backup", host="db-1", period=period, cron=None, grace=grace, **extra)


def cron_heartbeat(expression: str, grace: float = HOUR, **extra) -> Heartbeat:
    return Heartbeat(name="backup", host="db-1", period=None, cron=expression, grace=grace, **extra)


def start(ts: float, run_id: str = "r1") -> Ping:
    return Ping(ts=ts, kind="start", run_id=run_id)


def success(ts: float, run_id: str | None = "r1", duration: float | None = None) -> Ping:
    """A successful end of run `run_id` that took 42 s, or with run_id None a plain `siqctl heartbeat` ping."""
    if run_id is not None and duration is None:
        duration = 42.0
    return Ping(ts=ts, kind="success", run_id=run_id, exit_code=0 if run_id else None, duration=duration)


def failure(ts: float, run_id: str | None = "r1", exit_code: int | None = 3, output: str = "",
            message: str = "") -> Ping:
    return Ping(ts=ts, kind="failure", run_id=run_id, exit_code=exit_code, duration=5.0 if run_id else None,
                output=output, message=message)


# -- the state decision, with a fake clock -------------------------------------------------------


def test_never_run_waits_one_period_and_grace():
    heartbeat = period_heartbeat(period=3.0, grace=2.0)
    watched = at("2026-12-04 03:00:00")
    waiting = decide_status(heartbeat, [], watched, watched + 4.9, UTC)
    late = decide_status(heartbeat, [], watched, watched + 5.1, UTC)
    assert waiting.state == WAITING
    assert waiting.value == 0.0
    assert late.state == LATE
    assert late.value == 2.0
    assert late.text == ("backup has not run since siqd began watching it at 2026-12-04 03:00:00 UTC "
                         "(expected every 3s, grace 2s)")


def test_unwatched_heartbeat_is_never_late():
    status = decide_status(period_heartbeat(period=3.0, grace=2.0), [], None, at("2026-12-04 03:00:00"), UTC)
    assert status.state == WAITING
    assert "has not started watching it" in status.text


def test_period_success_on_time_then_late():
    heartbeat = period_heartbeat()
    watched = at("2026-12-01 00:00:00")
    ran = at("2026-12-04 03:00:12")
    pings = [start(ran), success(ran + 42)]
    on_time = decide_status(heartbeat, pings, watched, ran + DAY + HOUR - 1, UTC)
    late = decide_status(heartbeat, pings, watched, ran + DAY + HOUR + 1, UTC)
    assert on_time.state == ON_TIME
    assert on_time.text == "last ran 2026-12-04 03:00:12 UTC, took 42s"
    assert late.state == LATE
    assert late.text == "backup has not run since 2026-12-04 03:00 UTC (expected every 1d, grace 1h)"


def test_plain_ping_counts_as_run():
    heartbeat = period_heartbeat()
    watched = at("2026-12-01 00:00:00")
    ran = at("2026-12-04 03:00:12")
    status = decide_status(heartbeat, [success(ran, run_id=None, duration=None)], watched, ran + 60, UTC)
    assert status.state == ON_TIME
    assert status.text == "last ran 2026-12-04 03:00:12 UTC"


def test_old_pings_wait_for_new_watch():
    """A heartbeat added to the config gets one period and grace from then, even if its last ping is older."""
    heartbeat = period_heartbeat()
    ran = at("2026-11-01 03:00:00")
    watched = at("2026-12-04 10:00:00")
    pings = [success(ran, run_id=None, duration=None)]
    assert decide_status(heartbeat, pings, watched, watched + DAY, UTC).state == ON_TIME
    late = decide_status(heartbeat, pings, watched, watched + DAY + HOUR + 1, UTC)
    assert late.state == LATE
    assert late.text.startswith("backup has not run since 2026-11-01 03:00 UTC ")


def test_failure_reason_is_last_output_line():
    heartbeat = period_heartbeat()
    watched = at("2026-12-01 00:00:00")
    ran = at("2026-12-04 03:00:00")
    pings = [start(ran), failure(ran + 5, output="copying\noops\n\n")]
    status = decide_status(heartbeat, pings, watched, ran + 60, UTC)
    assert status.state == FAILED
    assert status.value == 2.0
    assert status.text == "backup failed: exit 3, oops"


def test_failure_message_wins_over_output():
    heartbeat = period_heartbeat()
    ran = at("2026-12-04 03:00:00")
    pings = [failure(ran, run_id=None, exit_code=None, message="disk full")]
    status = decide_status(heartbeat, pings, ran - DAY, ran + 60, UTC)
    assert status.text == "backup failed: disk full"


def test_failure_without_detail():
    ran = at("2026-12-04 03:00:00")
    status = decide_status(period_heartbeat(), [failure(ran, run_id=None, exit_code=None)], ran - DAY, ran + 1, UTC)
    assert status.state == FAILED
    assert status.text == "backup failed"


def test_killed_run_names_signal():
    ran = at("2026-12-04 03:00:00")
    pings = [start(ran), failure(ran + 5, exit_code=-15)]
    status = decide_status(period_heartbeat(), pings, ran - DAY, ran + 60, UTC)
    assert status.text == "backup failed: killed by SIGTERM"


def test_success_after_failure_clears():
    heartbeat = period_heartbeat()
    first = at("2026-12-04 03:00:00")
    pings = [start(first, "a"), failure(first + 5, "a", output="oops"), start(first + 600, "b"),
             success(first + 642, "b")]
    status = decide_status(heartbeat, pings, first - DAY, first + 700, UTC)
    assert status.state == ON_TIME
    assert status.text == "last ran 2026-12-04 03:10:00 UTC, took 42s"


def test_running_after_failure_stays_failed():
    first = at("2026-12-04 03:00:00")
    pings = [start(first, "a"), failure(first + 5, "a", output="oops"), start(first + 600, "b")]
    status = decide_status(period_heartbeat(), pings, first - DAY, first + 700, UTC)
    assert status.state == FAILED
    assert status.running_since == first + 600


def test_started_run_is_running_then_stuck():
    heartbeat = period_heartbeat(max_runtime=2 * HOUR)
    began = at("2026-12-04 03:00:00")
    pings = [start(began)]
    running = decide_status(heartbeat, pings, began - DAY, began + 2 * HOUR - 1, UTC)
    stuck = decide_status(heartbeat, pings, began - DAY, began + 2 * HOUR + 1, UTC)
    assert running.state == RUNNING
    assert running.value == 0.0
    assert stuck.state == STUCK
    assert stuck.text == "backup started at 2026-12-04 03:00 UTC and has not finished after 2h"


def test_stuck_default_is_period():
    heartbeat = period_heartbeat(period=3.0, grace=2.0)
    began = at("2026-12-04 03:00:00")
    assert decide_status(heartbeat, [start(began)], began - 60, began + 2.5, UTC).state == RUNNING
    stuck = decide_status(heartbeat, [start(began)], began - 60, began + 3.5, UTC)
    assert stuck.state == STUCK
    assert stuck.text == "backup started at 2026-12-04 03:00:00 UTC and has not finished after 3s"


def test_never_started_is_late_not_stuck():
    heartbeat = period_heartbeat(period=3.0, grace=2.0)
    watched = at("2026-12-04 03:00:00")
    status = decide_status(heartbeat, [], watched, watched + 60, UTC)
    assert status.state == LATE
    assert "has not run since" in status.text
    assert "has not finished" not in status.text


def test_abandoned_start_is_superseded():
    """A run killed without an end ping stops counting once a later run has ended."""
    first = at("2026-12-04 03:00:00")
    pings = [start(first, "a"), start(first + DAY, "b"), success(first + DAY + 42, "b")]
    status = decide_status(period_heartbeat(), pings, first - DAY, first + DAY + 60, UTC)
    assert status.state == ON_TIME
    assert status.running_since is None


def test_overlapping_run_still_running():
    first = at("2026-12-04 03:00:00")
    pings = [start(first, "a"), start(first + 300, "b"), success(first + 600, "a")]
    status = decide_status(period_heartbeat(), pings, first - DAY, first + 700, UTC)
    assert status.state == RUNNING
    assert status.running_since == first + 300


def test_end_without_start_uses_duration():
    """An end ping whose start was not recorded (the store was down then) dates the run by its duration."""
    ended = at("2026-12-04 03:10:00")
    status = decide_status(period_heartbeat(), [success(ended, "lost", duration=600.0)], ended - DAY, ended + 1,
                           UTC)
    assert status.last_ran == ended - 600.0


def test_cron_late_after_grace():
    heartbeat = cron_heartbeat("0 3 * * *")
    watched = at("2026-12-01 00:00:00")
    yesterday = at("2026-12-03 03:00:05")
    pings = [start(yesterday), success(yesterday + 42)]
    before_grace = decide_status(heartbeat, pings, watched, at("2026-12-04 03:59:59"), UTC)
    after_grace = decide_status(heartbeat, pings, watched, at("2026-12-04 04:00:01"), UTC)
    assert before_grace.state == ON_TIME
    assert after_grace.state == LATE
    assert after_grace.text == "backup has not run since 2026-12-03 03:00 UTC (expected at 03:00 UTC, grace 1h)"


def test_cron_run_on_time():
    heartbeat = cron_heartbeat("0 3 * * *")
    ran = at("2026-12-04 03:00:05")
    status = decide_status(heartbeat, [start(ran), success(ran + 42)], ran - 7 * DAY, at("2026-12-05 02:00:00"),
                           UTC)
    assert status.state == ON_TIME


def test_cron_early_run_counts():
    heartbeat = cron_heartbeat("0 3 * * *")
    ran = at("2026-12-04 02:59:30")
    assert decide_status(heartbeat, [success(ran, run_id=None)], ran - DAY, at("2026-12-04 05:00:00"),
                         UTC).state == ON_TIME
    much_earlier = at("2026-12-04 02:50:00")
    assert decide_status(heartbeat, [success(much_earlier, run_id=None)], ran - DAY, at("2026-12-04 05:00:00"),
                         UTC).state == LATE


def test_cron_new_heartbeat_waits_for_first_time():
    heartbeat = cron_heartbeat("0 3 * * *")
    watched = at("2026-12-04 03:30:00")  # configured after today's run time
    assert decide_status(heartbeat, [], watched, at("2026-12-05 03:59:00"), UTC).state == WAITING
    late = decide_status(heartbeat, [], watched, at("2026-12-05 04:01:00"), UTC)
    assert late.state == LATE
    assert late.text == ("backup has not run since siqd began watching it at 2026-12-04 03:30 UTC "
                         "(expected at 03:00 UTC, grace 1h)")


def test_cron_expected_date_shown_when_not_today():
    heartbeat = cron_heartbeat("0 3 * * 1")  # Mondays; 2026-11-30 is a Monday
    watched = at("2026-11-01 00:00:00")
    ran = at("2026-11-23 03:00:10")
    status = decide_status(heartbeat, [success(ran, run_id=None)], watched, at("2026-12-02 12:00:00"), UTC)
    assert status.state == LATE
    assert "(expected at 2026-11-30 03:00 UTC, grace 1h)" in status.text


def test_cron_stuck_default_is_gap_to_next_time():
    heartbeat = cron_heartbeat("0 3 * * *")
    began = at("2026-12-04 03:00:05")
    assert max_runtime(heartbeat, began, UTC) == DAY
    assert decide_status(heartbeat, [start(began)], began - DAY, began + DAY - 60, UTC).state == RUNNING
    assert decide_status(heartbeat, [start(began)], began - DAY, began + DAY + 1, UTC).state == STUCK


def test_cron_stuck_weekdays_gap():
    """A Friday run of a weekday job may run until Monday's time."""
    heartbeat = cron_heartbeat("0 3 * * 1-5")
    friday = at("2026-12-04 03:00:02")
    assert max_runtime(heartbeat, friday, UTC) == 3 * DAY


def test_cron_dst_start_runs_at_gap_end():
    """02:30 does not exist in Berlin on 2026-03-29; cron runs the job at 03:00 CEST instead."""
    heartbeat = cron_heartbeat("30 2 * * *")
    expression = CronExpression("30 2 * * *")
    gap_end = at("2026-03-29 03:00:00", BERLIN)
    assert previous_fire(expression, at("2026-03-29 05:00:00", BERLIN), BERLIN) == gap_end
    assert next_fire(expression, at("2026-03-28 12:00:00", BERLIN), BERLIN) == gap_end
    watched = at("2026-03-20 00:00:00", BERLIN)
    yesterday = at("2026-03-28 02:30:04", BERLIN)
    pings = [success(yesterday, run_id=None)]
    assert decide_status(heartbeat, pings, watched, at("2026-03-29 03:59:00", BERLIN), BERLIN).state == ON_TIME
    late = decide_status(heartbeat, pings, watched, at("2026-03-29 04:01:00", BERLIN), BERLIN)
    assert late.state == LATE
    assert late.text == "backup has not run since 2026-03-28 02:30 CET (expected at 03:00 CEST, grace 1h)"
    ran = [success(gap_end + 4, run_id=None)]
    assert decide_status(heartbeat, ran, watched, at("2026-03-29 04:01:00", BERLIN), BERLIN).state == ON_TIME


def test_cron_dst_end_runs_once():
    """02:30 happens twice in Berlin on 2026-10-25; the first one is the cron time, and one run covers it."""
    heartbeat = cron_heartbeat("30 2 * * *")
    expression = CronExpression("30 2 * * *")
    first = datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN, fold=0).timestamp()
    second = datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN, fold=1).timestamp()
    assert second - first == HOUR
    assert previous_fire(expression, second + 60, BERLIN) == first
    assert next_fire(expression, first, BERLIN) == at("2026-10-26 02:30:00", BERLIN)
    ran = [success(first + 5, run_id=None)]
    watched = first - 5 * DAY
    assert decide_status(heartbeat, ran, watched, second + HOUR + 60, BERLIN).state == ON_TIME
    late = decide_status(heartbeat, [], watched, first + HOUR + 60, BERLIN)
    assert late.state == LATE


def test_cron_dst_day_is_23_hours():
    heartbeat = cron_heartbeat("0 3 * * *")
    began = at("2026-03-28 03:00:00", BERLIN)
    assert max_runtime(heartbeat, began, BERLIN) == 23 * HOUR


def test_default_grace_bounds():
    assert default_grace(3.0) == 60.0
    assert default_grace(900.0) == 90.0
    assert default_grace(DAY) == HOUR
    assert default_grace(7 * DAY) == HOUR


# -- the config --------------------------------------------------------------------------------


def parse(text: str):
    import tomllib

    return parse_config(tomllib.loads('host = "db-1"\n' + text), "siq.toml")


def test_config_adds_implicit_rule():
    config = parse('[[heartbeat]]\nname = "backup"\nperiod = "1d"\nseverity = "warning"\n'
                   'description = "nightly dump"\n')
    heartbeat = config.heartbeats[0]
    assert heartbeat.host == "db-1"
    assert heartbeat.grace == HOUR
    assert heartbeat.max_runtime is None
    rule = config.rules[-1]
    assert rule.name == "backup"
    assert rule.metric == "heartbeat.status"
    assert rule.labels == {"heartbeat": "backup"}
    assert rule.comparison == "above"
    assert rule.threshold == 1.0
    assert rule.clear == 1.0
    assert rule.for_seconds == 0.0
    assert rule.severity == "warning"
    assert rule.description == "nightly dump"
    assert [r.name for r in config.rules[:-1]] == [r.name for r in parse("").rules]


def test_config_cron_defaults():
    config = parse('timezone = "Europe/Berlin"\n[[heartbeat]]\nname = "often"\ncron = "*/5 * * * *"\n'
                   'host = "web-1"\n')
    heartbeat = config.heartbeats[0]
    assert heartbeat.cron == "*/5 * * * *"
    assert heartbeat.period is None
    assert heartbeat.grace == 60.0
    assert heartbeat.host == "web-1"
    assert config.rules[-1].severity == "critical"
    assert config.rules[-1].hosts == ["web-1"]


@pytest.mark.parametrize("body, key, message", [
    ('name = "a b"\nperiod = "1d"', "heartbeat[#1].name", "invalid heartbeat name"),
    ('name = "x"', "heartbeat[x].period", "set exactly one of 'period'"),
    ('name = "x"\nperiod = "1d"\ncron = "0 3 * * *"', "heartbeat[x].period", "set exactly one of 'period'"),
    ('name = "x"\ncron = "0 3 * *"', "heartbeat[x].cron", "expected 5 fields"),
    ('name = "x"\ncron = "0 3 30 2 *"', "heartbeat[x].cron", "matches no time"),
    ('name = "x"\nperiod = "soon"', "heartbeat[x].period", "expected a number with a unit"),
    ('name = "x"\nperiod = "1d"\ngrace = "0s"', "heartbeat[x].grace", "must be at least 1s"),
    ('name = "x"\nperiod = "1d"\nseverity = "fatal"', "heartbeat[x].severity", "expected one of"),
    ('name = "x"\nperiod = "1d"\nnotify = ["pager"]', "heartbeat[x].notify", "unknown channel 'pager'"),
    ('name = "x"\nperiod = "1d"\nhost = " "', "heartbeat[x].host", "must not be empty"),
    ('name = "x"\nperiod = "1d"\nevery = "1d"', "heartbeat[x].every", "unknown key"),
    ('name = "disk-full"\nperiod = "1d"', "heartbeat[#1].name", "already the name of a rule"),
])
def test_config_errors(body, key, message):
    with pytest.raises(ConfigError) as caught:
        parse(f"[[heartbeat]]\n{body}\n")
    assert caught.value.key == key
    assert message in caught.value.message
    assert "\n" not in str(caught.value)


def test_config_duplicate_heartbeat():
    with pytest.raises(ConfigError) as caught:
        parse('[[heartbeat]]\nname = "x"\nperiod = "1d"\n[[heartbeat]]\nname = "x"\nperiod = "2d"\n')
    assert caught.value.key == "heartbeat[#2].name"
    assert "already the name of a heartbeat" in caught.value.message


def test_config_check_prints_heartbeats(siq):
    siq.write_config('[[heartbeat]]\nname = "backup"\ncron = "0 3 * * *"\n')
    result = siq.siqctl("config", "check", "--json", check=True)
    settings = json.loads(result.stdout)["settings"]
    assert settings["heartbeat"] == [{
        "name": "backup", "host": "test-host", "cron": "0 3 * * *", "grace": "1h",
        "max_runtime": "the gap between two cron times", "severity": "critical", "auto_resolve": False,
        "notify": [],
    }]


def test_config_error_exits_2(siq):
    siq.write_config('[[heartbeat]]\nname = "backup"\n')
    result = siq.siqctl("heartbeats")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "heartbeat[backup].period: set exactly one of" in result.stderr


# -- the store -----------------------------------------------------------------------------------


def test_store_pings_round_trip(siq):
    store = siq.store()
    with store.transaction():
        store.add_heartbeat_ping("db-1", "backup", 100.0, "start", run_id="r1")
        store.add_heartbeat_ping("db-1", "backup", 142.0, "failure", run_id="r1", exit_code=3, duration=42.0,
                                 output="oops", message="")
        store.add_heartbeat_ping("db-2", "backup", 150.0, "success")
        store.add_heartbeat_ping("db-1", "other", 160.0, "success")
    latest = store.latest_heartbeat_pings("db-1", "backup", 10)
    assert [row["kind"] for row in latest] == ["failure", "start"]
    assert latest[0]["exit_code"] == 3
    assert latest[0]["duration"] == 42.0
    assert latest[0]["output"] == "oops"
    assert latest[1]["run_id"] == "r1"
    assert [row["ts"] for row in store.heartbeat_pings_between(100.0, 160.0)] == [100.0, 142.0, 150.0]
    assert [row["ts"] for row in store.heartbeat_pings_between(0.0, 1000.0, "failure")] == [142.0]
    store.close()


def test_store_prune_keeps_newest_of_each_kind(siq):
    store = siq.store()
    with store.transaction():
        for ts in (10.0, 20.0, 30.0):
            store.add_heartbeat_ping("db-1", "weekly", ts, "start", run_id=str(ts))
            store.add_heartbeat_ping("db-1", "weekly", ts + 1, "success", run_id=str(ts))
            store.add_heartbeat_ping("db-1", "weekly", ts + 2, "failure", run_id=str(ts))
        store.add_heartbeat_ping("db-1", "weekly", 500.0, "success")
    with store.transaction():
        deleted = store.delete_heartbeat_pings_before(1000.0, 15.0, 100)
    kept = sorted((row["kind"], row["ts"]) for row in store.latest_heartbeat_pings("db-1", "weekly", 100))
    # Failures older than their own cutoff (15) go; the newest start and the newest failure stay.
    assert kept == [("failure", 22.0), ("failure", 32.0), ("start", 30.0), ("success", 500.0)]
    assert deleted == 6
    store.close()


def test_store_prune_batches(siq):
    store = siq.store()
    with store.transaction():
        for index in range(10):
            store.add_heartbeat_ping("db-1", "often", float(index), "success")
    with store.transaction():
        assert store.delete_heartbeat_pings_before(100.0, 100.0, 4) == 4
    with store.transaction():
        assert store.delete_heartbeat_pings_before(100.0, 100.0, 100) == 5
    assert [row["ts"] for row in store.latest_heartbeat_pings("db-1", "often", 100)] == [9.0]
    store.close()


# -- siqctl ------------------------------------------------------------------------------------

HEARTBEAT_CONFIG = '[[heartbeat]]\nname = "nightly"\nperiod = "1d"\n'


def pings_of(siq, name: str, host: str = "test-host") -> list[dict]:
    store = siq.store()
    try:
        return list(reversed(store.latest_heartbeat_pings(host, name, 100)))
    finally:
        store.close()


def test_heartbeat_records_silently(siq):
    siq.write_config(HEARTBEAT_CONFIG)
    result = siq.siqctl("heartbeat", "nightly")
    assert result.returncode == 0
    assert result.stdout == ""
    assert result.stderr == ""
    pings = pings_of(siq, "nightly")
    assert [ping["kind"] for ping in pings] == ["success"]
    assert abs(pings[0]["ts"] - time.time()) < 30


def test_heartbeat_fail_with_message(siq):
    siq.write_config(HEARTBEAT_CONFIG)
    result = siq.siqctl("heartbeat", "nightly", "--fail", "-m", "disk full")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    ping = pings_of(siq, "nightly")[0]
    assert ping["kind"] == "failure"
    assert ping["message"] == "disk full"
    assert ping["exit_code"] is None
    listed = siq.siqctl_json("heartbeats")[0]
    assert listed["state"] == "failed"
    assert listed["reason"] == "nightly failed: disk full"


def test_heartbeat_other_host(siq):
    siq.write_config(HEARTBEAT_CONFIG)
    result = siq.siqctl("heartbeat", "nightly", "--host", "web-9")
    assert result.returncode == 0
    assert result.stderr.startswith("warning: heartbeat 'nightly' is configured for host 'test-host', not 'web-9'")
    assert result.stderr.count("\n") == 1
    assert [ping["kind"] for ping in pings_of(siq, "nightly", "web-9")] == ["success"]


def test_heartbeat_unknown_name_warns(siq):
    siq.write_config(HEARTBEAT_CONFIG)
    result = siq.siqctl("heartbeat", "weekly")
    assert result.returncode == 0
    assert result.stderr == (f"warning: no [[heartbeat]] named 'weekly' is configured in {siq.config_path}, "
                             "so nothing will alert on it\n")
    assert [ping["kind"] for ping in pings_of(siq, "weekly")] == ["success"]


def test_heartbeat_invalid_name(siq):
    result = siq.siqctl("heartbeat", "no good")
    assert result.returncode == 2
    assert result.stderr.startswith("error: invalid heartbeat name 'no good'")
    assert result.stderr.count("\n") == 1


def test_run_failure_passes_output_and_code(siq):
    siq.write_config(HEARTBEAT_CONFIG)
    result = siq.siqctl("run", "nightly", "--", "sh", "-c", "echo copying; echo oops >&2; exit 3")
    assert result.returncode == 3
    assert result.stdout == "copying\n"
    assert result.stderr == "oops\n"
    start_ping, end_ping = pings_of(siq, "nightly")
    assert start_ping["kind"] == "start"
    assert end_ping["kind"] == "failure"
    assert end_ping["run_id"] == start_ping["run_id"]
    assert end_ping["exit_code"] == 3
    assert 0 <= end_ping["duration"] < 30
    assert "copying" in end_ping["output"]
    assert "oops" in end_ping["output"]
    assert siq.siqctl_json("heartbeats")[0]["reason"] == "nightly failed: exit 3, oops"


def test_run_success(siq):
    siq.write_config(HEARTBEAT_CONFIG)
    result = siq.siqctl("run", "nightly", "--", "ls", "-d", "/")
    assert result.returncode == 0
    assert result.stdout == "/\n"
    assert result.stderr == ""
    assert [ping["kind"] for ping in pings_of(siq, "nightly")] == ["start", "success"]
    listed = siq.siqctl_json("heartbeats")[0]
    assert listed["state"] == "on time"
    assert listed["last_result"]["result"] == "success"
    assert listed["last_result"]["exit_code"] == 0


def test_run_keeps_output_tail(siq):
    siq.write_config(HEARTBEAT_CONFIG)
    result = siq.siqctl("run", "nightly", "--", "sh", "-c", "seq 1 5000; exit 1")
    assert result.returncode == 1
    assert result.stdout.splitlines()[-1] == "5000"
    assert len(result.stdout.splitlines()) == 5000
    output = pings_of(siq, "nightly")[-1]["output"]
    assert output.splitlines() == [str(number) for number in range(4981, 5001)]


def test_run_unknown_command(siq):
    siq.write_config(HEARTBEAT_CONFIG)
    result = siq.siqctl("run", "nightly", "--", "siq-no-such-command", "arg")
    assert result.returncode == 127
    assert result.stderr == "error: command not found: siq-no-such-command\n"
    end_ping = pings_of(siq, "nightly")[-1]
    assert end_ping["kind"] == "failure"
    assert end_ping["exit_code"] == 127
    assert siq.siqctl_json("heartbeats")[0]["reason"] == \
        "nightly failed: exit 127, command not found: siq-no-such-command"


def test_run_without_command(siq):
    result = siq.siqctl("run", "nightly")
    assert result.returncode == 2
    assert result.stderr.startswith("error: missing the command to run; give it after --")


def test_run_unknown_heartbeat_warns(siq):
    siq.write_config(HEARTBEAT_CONFIG)
    result = siq.siqctl("run", "weekly", "--", "true")
    assert result.returncode == 0
    assert result.stderr.startswith("warning: no [[heartbeat]] named 'weekly'")
    assert result.stderr.count("\n") == 1
    assert [ping["kind"] for ping in pings_of(siq, "weekly")] == ["start", "success"]


def test_run_with_missing_sqlite_folder(siq, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    siq.write_config(HEARTBEAT_CONFIG)
    siq.config_path.write_text(siq.config_path.read_text().replace(
        f'store = "{siq.store_url}"', f'store = "sqlite://{blocker}/siq/siq.db"'))
    result = siq.siqctl("run", "nightly", "--", "sh", "-c", "echo done; exit 4")
    assert result.returncode == 4
    assert result.stdout == "done\n"
    assert result.stderr.startswith("warning: the run of heartbeat nightly was not recorded: ")
    assert result.stderr.count("\n") == 1


def test_run_with_closed_postgres_port(siq):
    siq.write_config(HEARTBEAT_CONFIG)
    closed = f"postgresql://postgres@127.0.0.1:{free_port()}/test"
    siq.config_path.write_text(siq.config_path.read_text().replace(f'store = "{siq.store_url}"',
                                                                   f'store = "{closed}"'))
    result = siq.siqctl("run", "nightly", "--", "sh", "-c", "echo done")
    assert result.returncode == 0
    assert result.stdout == "done\n"
    assert result.stderr.startswith("warning: the run of heartbeat nightly was not recorded: store ")
    assert "unavailable" in result.stderr
    assert result.stderr.count("\n") == 1


def test_run_with_invalid_config(siq):
    siq.config_path.write_text("interval = \n")
    result = siq.siqctl("run", "nightly", "--", "sh", "-c", "exit 5")
    assert result.returncode == 5
    assert result.stderr.startswith(f"warning: {siq.config_path}: invalid TOML")
    assert result.stderr.endswith("; running the command without recording it\n")
    assert result.stderr.count("\n") == 1


def test_heartbeat_store_unreachable_fails(siq, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    siq.write_config(HEARTBEAT_CONFIG)
    siq.config_path.write_text(siq.config_path.read_text().replace(
        f'store = "{siq.store_url}"', f'store = "sqlite://{blocker}/siq/siq.db"'))
    result = siq.siqctl("heartbeat", "nightly")
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot create the folder for store ")
    assert result.stderr.count("\n") == 1


def start_wrapped(siq, *command: str) -> tuple[subprocess.Popen, psutil.Process]:
    """Start `siqctl run nightly -- COMMAND` and return it with the command's process once that runs."""
    wrapper = subprocess.Popen([str(BIN / "siqctl"), "run", "nightly", "--", *command], env=siq.env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        children = psutil.Process(wrapper.pid).children()
        if children:
            return wrapper, children[0]
        if wrapper.poll() is not None:
            break
        time.sleep(0.05)
    wrapper.kill()
    wrapper.wait(10)
    raise AssertionError(f"siqctl run did not start the command: {wrapper.stderr.read()}")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_run_forwards_signal(siq, signum):
    siq.write_config(HEARTBEAT_CONFIG)
    wrapper, child = start_wrapped(siq, "sleep", "30")
    try:
        os.kill(wrapper.pid, signum)
        wrapper.wait(20)
    finally:
        if wrapper.poll() is None:
            wrapper.kill()
            wrapper.wait(10)
        if child.is_running():
            child.kill()
    assert wrapper.returncode == 128 + signum
    end_ping = pings_of(siq, "nightly")[-1]
    assert end_ping["kind"] == "failure"
    assert end_ping["exit_code"] == -signum
    name = signal.Signals(signum).name
    assert siq.siqctl_json("heartbeats")[0]["reason"] == f"nightly failed: killed by {name}"


def test_run_records_handled_signal_as_failure(siq):
    """A command that catches SIGTERM and exits 0 still counts as failed: its run was interrupted."""
    siq.write_config(HEARTBEAT_CONFIG)
    wrapper, child = start_wrapped(siq, "sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done")
    try:
        os.kill(wrapper.pid, signal.SIGTERM)
        wrapper.wait(20)
    finally:
        if wrapper.poll() is None:
            wrapper.kill()
            wrapper.wait(10)
        for process in [child, *child.children(recursive=True)] if child.is_running() else []:
            process.kill()
    assert wrapper.returncode == 0
    end_ping = pings_of(siq, "nightly")[-1]
    assert end_ping["kind"] == "failure"
    assert end_ping["exit_code"] == 0
    assert end_ping["message"] == "interrupted by SIGTERM"
    assert siq.siqctl_json("heartbeats")[0]["reason"] == "nightly failed: exit 0, interrupted by SIGTERM"


def test_heartbeats_lists_state(siq):
    siq.write_config(HEARTBEAT_CONFIG + '[[heartbeat]]\nname = "often"\ncron = "*/5 * * * *"\n')
    siq.siqctl("run", "nightly", "--", "sh", "-c", "echo oops; exit 3")
    result = siq.siqctl("heartbeats", check=True)
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["HEARTBEAT", "HOST", "SCHEDULE", "LAST", "RUN", "LAST", "RESULT", "STATE"]
    nightly = next(line for line in lines if line.startswith("nightly "))
    assert "every 1d" in nightly
    assert "failed" in nightly
    often = next(line for line in lines if line.startswith("often "))
    assert "cron '*/5 * * * *'" in often
    assert often.rstrip().endswith("waiting")
    assert lines[-3] == "nightly: nightly failed: exit 3, oops"
    assert lines[-2].startswith("nightly: siqd on test-host has not started watching it")
    assert lines[-1].startswith("often: siqd on test-host has not started watching it")
    listed = {row["name"]: row for row in siq.siqctl_json("heartbeats")}
    assert listed["often"]["state"] == "waiting"
    assert listed["often"]["last_run"] is None
    assert listed["nightly"]["last_result"]["exit_code"] == 3


def test_heartbeats_none_configured(siq):
    result = siq.siqctl("heartbeats", check=True)
    assert result.stdout == f"No [[heartbeat]] is configured in {siq.config_path}.\n"
    assert siq.siqctl_json("heartbeats") == []


# -- a running siqd ----------------------------------------------------------------------------


def daemon_config(receiver_url: str) -> str:
    # One quiet rule in place of the starter rules, so only the heartbeat can open incidents.
    return f"""
interval = "1s"
startup_grace = "0s"
[notify]
default = ["team"]
retry_initial = "1s"
retry_max = "2s"
[notify.channels]
team = ["{receiver_url}"]
[[rule]]
name = "quiet"
metric = "procs.count"
above = 1000000000
[[heartbeat]]
name = "nightly"
period = "3s"
grace = "2s"
"""


class RunningSiqd:
    def __init__(self, siq):
        self.process = subprocess.Popen([str(BIN / "siqd"), "run"], env=siq.env(), stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, text=True)

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.stderr.read()


@pytest.fixture
def siqd(siq, receiver):
    siq.write_config(daemon_config(receiver.url()))
    running = RunningSiqd(siq)
    yield running
    running.stop()


def wait_for_incident(siq, condition, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    incidents = []
    while time.monotonic() < deadline:
        incidents = siq.siqctl_json("incidents", "list", "--status", "all")
        found = [incident for incident in incidents if condition(incident)]
        if found:
            return found[0]
        time.sleep(0.3)
    raise AssertionError(f"no matching incident within {timeout:.0f}s; incidents: {incidents}")


def wait_for_message(receiver, condition, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [message for message in list(receiver.messages) if condition(message)]
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"no matching notification within {timeout:.0f}s; got: {receiver.messages}")


def test_daemon_opens_late_incident(siq, siqd, receiver):
    incident = wait_for_incident(siq, lambda item: item["rule"] == "nightly")
    assert incident["title"].startswith("test-host nightly: nightly has not run since siqd began watching it at ")
    assert incident["title"].endswith("(expected every 3s, grace 2s)")
    assert incident["severity"] == "critical"
    # Late only after the period and grace from when siqd began watching it.
    store = siq.store()
    watched = store.heartbeat_watched_since("test-host", "began watching heartbeat nightly: every 3s, grace 2s")
    opened = store.get_incident(incident["id"])
    store.close()
    assert watched is not None
    assert opened.started_at - watched >= 5.0
    message = wait_for_message(receiver, lambda item: "nightly has not run since" in item["title"])
    assert message["type"] == "failure"


def test_daemon_failed_run_then_success_clears(siq, siqd, receiver):
    result = siq.siqctl("run", "nightly", "--", "sh", "-c", "echo oops; exit 3")
    assert result.returncode == 3
    assert result.stdout == "oops\n"
    incident = wait_for_incident(siq, lambda item: item["rule"] == "nightly")
    assert incident["title"] == "test-host nightly: nightly failed: exit 3, oops"
    wait_for_message(receiver, lambda item: "nightly failed: exit 3, oops" in item["title"])

    assert siq.siqctl("run", "nightly", "--", "true").returncode == 0
    cleared = wait_for_incident(siq, lambda item: item["id"] == incident["id"] and item["cleared_at"] is not None)
    assert cleared["status"] == "open"
    shown = siq.siqctl_json("incidents", "show", str(incident["id"]))
    texts = [event["text"] for event in shown["events"]]
    assert any(text.startswith("condition cleared: last ran ") for text in texts)
    wait_for_message(receiver, lambda item: item["title"].endswith("condition cleared"))


def test_daemon_killed_run_is_stuck(siq, siqd, receiver):
    wrapper, child = start_wrapped(siq, "sleep", "60")
    try:
        wrapper.kill()  # SIGKILL: siqctl cannot record an end
        wrapper.wait(10)
    finally:
        child.kill()
    incident = wait_for_incident(siq, lambda item: item["rule"] == "nightly")
    assert incident["title"].startswith("test-host nightly: nightly started at ")
    assert " and has not finished after " in incident["title"]
    assert "has not run since" not in incident["title"]
    listed = siq.siqctl_json("heartbeats")[0]
    assert listed["state"] == "stuck"
    assert listed["incident"] == incident["id"]


def test_daemon_fail_message_opens_incident(siq, siqd, receiver):
    assert siq.siqctl("heartbeat", "nightly", "--fail", "-m", "disk full").returncode == 0
    incident = wait_for_incident(siq, lambda item: item["rule"] == "nightly")
    assert incident["title"] == "test-host nightly: nightly failed: disk full"


# -- the report ----------------------------------------------------------------------------------


def test_report_lists_heartbeat_problems(siq, siqd, receiver):
    siq.siqctl("run", "nightly", "--", "sh", "-c", "echo oops; exit 3")
    wait_for_incident(siq, lambda item: item["rule"] == "nightly")
    siq.siqctl("run", "nightly", "--", "true")
    # Nothing runs any more: the condition returns as late after the period and grace.
    late = wait_for_message(receiver, lambda item: "nightly has not run since" in item["message"])
    assert late["title"].endswith("firing again")
    siqd.stop()

    report = json.loads(siq.siqctl("report", "--since", "1h", "--format", "json", check=True).stdout)
    problems = report["heartbeat_failures"]
    failed = [entry for entry in problems if entry["kind"] == "failed"]
    late_entries = [entry for entry in problems if entry["kind"] == "late"]
    assert len(failed) == 1
    assert failed[0]["name"] == "nightly"
    assert failed[0]["host"] == "test-host"
    assert failed[0]["exit_code"] == 3
    assert failed[0]["reason"] == "oops"
    assert len(late_entries) == 1
    assert late_entries[0]["reason"].startswith("nightly has not run since ")

    text = siq.siqctl("report", "--since", "1h", check=True).stdout
    assert "Cron heartbeats: 1 failed run, 1 late, 0 stuck." in text
    assert "Cron heartbeat problems (failed runs, late and stuck jobs):" in text
    assert "test-host nightly: failed, exit 3, oops" in text
    assert "test-host nightly: late, nightly has not run since " in text
    assert "does not track cron heartbeats" not in text

    markdown = siq.siqctl("report", "--since", "1h", "--format", "md", check=True).stdout
    assert "## Cron heartbeat problems" in markdown
    assert "| test-host | nightly | failed | exit 3 | oops |" in markdown

    html = siq.siqctl("report", "--since", "1h", "--format", "html", check=True).stdout
    assert "<h2>Cron heartbeat problems</h2>" in html
    assert "<td>nightly</td><td>failed</td><td>exit 3</td><td>oops</td>" in html


def test_report_without_heartbeats(siq):
    report = json.loads(siq.siqctl("report", "--format", "json", check=True).stdout)
    assert report["heartbeat_failures"] == []
    text = siq.siqctl("report", check=True).stdout
    assert "Cron heartbeat problems (failed runs, late and stuck jobs):\n  none" in text
