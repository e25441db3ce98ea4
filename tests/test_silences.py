"""Silences mute notifications, never the record; recurring windows follow a cron expression."""

import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from conftest import DISK_RULE_WITH_CHANNEL
from siqd.collect.host import Sample
from siqd.config import parse_config
from siqd.cron import CronError, CronExpression, window_containing
from siqd.daemon import Daemon

CONFIG = DISK_RULE_WITH_CHANNEL


class Clock:
    def __init__(self):
        self.now = time.time()

    def __call__(self):
        return self.now


def make_daemon(siq) -> tuple[Daemon, Clock]:
    import tomllib

    siq.write_config(CONFIG.replace('host = "db-1"\n', ""))
    config = parse_config(tomllib.loads(CONFIG), "test")
    config.store = siq.store_url
    clock = Clock()
    return Daemon(config, siq.store(), clock=clock), clock


def feed(daemon: Daemon, clock: Clock, value: float) -> None:
    with daemon.store.transaction():
        daemon.evaluate_rules([Sample("disk.used_percent", {"mount": "/"}, value)], clock())
    daemon.release_silences(clock())
    clock.now += 10


def notifications(store) -> list[str]:
    return [row["kind"] for row in store.rows("SELECT kind FROM notifications ORDER BY id")]


def test_silenced_breach_recorded_not_sent(siq):
    daemon, clock = make_daemon(siq)
    siq.siqctl("silence", "add", "--host", "db-*", "--for", "1h", "-m", "kernel upgrade", check=True)
    clock.now = time.time() + 1
    feed(daemon, clock, 95)
    incidents = daemon.store.list_incidents()
    assert len(incidents) == 1
    assert incidents[0].silenced_by == 1
    assert notifications(daemon.store) == []
    listed = siq.siqctl_json("incidents", "list")
    assert listed[0]["silenced_by"] == 1


def test_cleared_inside_silence_closes_ignored(siq):
    daemon, clock = make_daemon(siq)
    siq.siqctl("silence", "add", "--host", "db-1", "--rule", "disk-*", "--label", "mount=/", "--for", "1h",
               "-m", "kernel upgrade", check=True)
    clock.now = time.time() + 1
    feed(daemon, clock, 95)
    feed(daemon, clock, 50)
    incident = daemon.store.list_incidents()[0]
    assert incident.status == "ignored"
    assert incident.resolution == "cleared during silence #1: kernel upgrade"
    assert notifications(daemon.store) == []


def test_still_holding_when_silence_ends_notifies(siq):
    daemon, clock = make_daemon(siq)
    siq.siqctl("silence", "add", "--host", "db-1", "--for", "1h", "-m", "kernel upgrade", check=True)
    clock.now = time.time() + 1
    feed(daemon, clock, 95)
    opened_at = daemon.store.list_incidents()[0].started_at
    siq.siqctl("silence", "end", "1", check=True)
    clock.now = time.time() + 1
    feed(daemon, clock, 96)
    incident = daemon.store.list_incidents()[0]
    assert incident.silenced_by is None
    assert notifications(daemon.store) == ["opened"]
    body = daemon.store.row("SELECT body FROM notifications")["body"]
    assert "Held back by silence #1" in body
    assert incident.started_at == opened_at


def test_silence_for_other_host_does_nothing(siq):
    daemon, clock = make_daemon(siq)
    siq.siqctl("silence", "add", "--host", "web-*", "--for", "1h", "-m", "web deploy", check=True)
    feed(daemon, clock, 95)
    assert notifications(daemon.store) == ["opened"]


def test_silence_list_and_end(siq):
    siq.siqctl("silence", "add", "--host", "db-1", "--for", "30m", "-m", "upgrade", check=True)
    siq.siqctl("silence", "add", "--host", "backup-*", "--every", "0 2 * * *", "--duration", "1h",
               "-m", "nightly backup", check=True)
    listed = siq.siqctl_json("silence", "list")
    assert [(row["id"], row["active"]) for row in listed] == [(1, True), (2, listed[1]["active"])]
    assert listed[1]["every"] == "0 2 * * *"
    assert siq.siqctl("silence", "end", "1").returncode == 0
    again = siq.siqctl("silence", "end", "1")
    assert again.returncode == 1
    assert "already ended" in again.stderr
    assert [row["id"] for row in siq.siqctl_json("silence", "list")] == [2]
    missing = siq.siqctl("silence", "end", "99")
    assert missing.returncode == 1
    assert "silence 99 not found" in missing.stderr


@pytest.mark.parametrize("args, message", [
    (("--host", "db-1", "-m", "x"), "exactly one of --for, --until or --every"),
    (("--host", "db-1", "--for", "30m", "--until", "12:00", "-m", "x"), "exactly one of"),
    (("--host", "db-1", "--for", "5 minutes", "-m", "x"), "invalid --for"),
    (("--host", "db-1", "--every", "0 2 * * *", "-m", "x"), "--every needs --duration"),
    (("--host", "db-1", "--every", "61 * * * *", "--duration", "1h", "-m", "x"), "invalid --every"),
    (("--host", "db-[1", "--for", "1h", "-m", "x"), "invalid --host glob"),
    (("--host", "db-1", "--until", "yesterday", "-m", "x"), "invalid --until"),
    (("--host", "db-1", "--for", "1h", "--label", "mount", "-m", "x"), "invalid --label"),
    (("--host", "db-1", "--for", "1h", "-m", "  "), "a reason is required"),
])
def test_silence_add_bad_usage(siq, args, message):
    result = siq.siqctl("silence", "add", *args)
    assert result.returncode == 2
    assert message in result.stderr


def test_cron_fields():
    expression = CronExpression("*/15 2-4 * * 1-5")
    assert expression.matches(datetime(2026, 12, 7, 2, 30))  # a Monday
    assert not expression.matches(datetime(2026, 12, 6, 2, 30))  # a Sunday
    assert not expression.matches(datetime(2026, 12, 7, 2, 31))
    assert CronExpression("0 0 * * 7").matches(datetime(2026, 12, 6, 0, 0))  # 7 is Sunday too
    with pytest.raises(CronError):
        CronExpression("* * *")


def test_cron_day_fields_either_matches():
    expression = CronExpression("0 3 1 * 0")  # the 1st of the month, or any Sunday
    assert expression.matches(datetime(2026, 12, 1, 3, 0))  # a Tuesday, the 1st
    assert expression.matches(datetime(2026, 12, 6, 3, 0))  # a Sunday


def test_window_in_time_zone():
    berlin = ZoneInfo("Europe/Berlin")
    expression = CronExpression("0 2 * * *")
    inside = datetime(2026, 12, 4, 2, 40, tzinfo=berlin).timestamp()
    window = window_containing(expression, 3600, inside, berlin)
    assert window == (datetime(2026, 12, 4, 2, 0, tzinfo=berlin).timestamp(),
                      datetime(2026, 12, 4, 3, 0, tzinfo=berlin).timestamp())
    after = datetime(2026, 12, 4, 3, 0, tzinfo=berlin).timestamp()
    assert window_containing(expression, 3600, after, berlin) is None


def test_window_on_spring_forward_night():
    berlin = ZoneInfo("Europe/Berlin")
    expression = CronExpression("30 2 * * *")  # 02:30 does not exist on 2026-03-29 in Berlin
    covered = 0
    night = datetime(2026, 3, 29, 0, 0, tzinfo=berlin).timestamp()
    for minute in range(6 * 60):
        if window_containing(expression, 3600, night + minute * 60 + 30, berlin):
            covered += 1
    assert covered == 60
