"""The patterns report on seeded history with hand-computed figures, including a DST change."""

import json
import shutil
import subprocess
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

BERLIN = ZoneInfo("Europe/Berlin")
UTC = ZoneInfo("UTC")


def at(text: str, zone=BERLIN, fold: int = 0) -> float:
    """Epoch seconds of a local time; fold=1 picks the second of a repeated DST hour."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=zone, fold=fold).timestamp()


def seed(store) -> None:
    """Write the incidents whose figures the tests expect. Times are Europe/Berlin unless noted."""

    def incident(host, rule, series, opened, status="open", cleared=None, closed=None, note=None, title=None):
        labels = dict(part.split("=", 1) for part in series.split(",")) if series else {}
        with store.transaction():
            return store.create_incident(
                host=host, rule=rule, series=series, metric="disk.used_percent", labels=labels,
                title=title or f"{host} {rule}", severity="warning", status=status, source="rule", value=95.0,
                threshold=90.0, comparison="above", unit="%", for_seconds=300.0, started_at=opened - 300,
                opened_at=opened, cleared_at=cleared, closed_at=closed, closed_by="ana" if closed else None,
                resolution=note,
            )

    first = incident("db-1", "disk-full", "mount=/", at("2026-10-03 10:00:00"), "resolved",
                     cleared=at("2026-10-03 10:30:00"), closed=at("2026-10-03 11:00:00"), note="rotated logs")
    # Spans midnight: counts on the 12th, hour 23.
    incident("db-1", "disk-full", "mount=/", at("2026-10-12 23:30:00"), "resolved",
             cleared=at("2026-10-13 00:15:00"), closed=at("2026-10-13 00:30:00"), note="rotated logs again")
    # 02:30 CEST on the night clocks go back (00:30 UTC); resolved at 02:30 CET (01:30 UTC).
    incident("db-1", "disk-full", "mount=/", at("2026-10-25 00:30:00", UTC), "resolved",
             cleared=at("2026-10-25 01:00:00", UTC), closed=at("2026-10-25 01:30:00", UTC),
             note="fixed log level", title="<script>alert(1)</script>")
    # 02:15 CET, the second 02:xx hour of that night.
    incident("web-1", "cpu-busy", "", at("2026-10-25 02:15:00", fold=1), "ignored",
             closed=at("2026-10-25 03:00:00"), note="batch job")
    incident("web-1", "cpu-busy", "", at("2026-10-05 14:00:00"), "ignored", closed=at("2026-10-05 14:10:00"),
             note="batch job")
    incident("web-1", "cpu-busy", "", at("2026-10-06 14:00:00"), "ignored", closed=at("2026-10-06 14:10:00"),
             note="batch job")
    incident("web-2", "cpu-busy", "", at("2026-10-07 09:00:00"), "resolved", closed=at("2026-10-07 11:00:00"),
             note="restarted job")
    incident("web-1", "memory-high", "", at("2026-10-31 23:59:59"))
    # 23:30 CET on the 25-hour day.
    incident("web-2", "disk-full", "mount=/srv", at("2026-10-25 23:30:00"))
    # Outside October in Berlin, though 2026-10-31 23:30 UTC is inside it in UTC.
    incident("web-1", "memory-high", "x=1", at("2026-11-01 00:00:00"))
    incident("web-1", "memory-high", "x=2", at("2026-09-30 23:59:59"))
    with store.transaction():
        store.save_review(first, {"trigger": "deploy", "cause": "debug logging", "fix": "log level",
                                  "sooner": "yes, a growth rule"}, "ana", at("2026-10-04 09:00:00"))


@pytest.fixture
def history(siq):
    siq.write_config('timezone = "Europe/Berlin"\n')
    store = siq.store()
    seed(store)
    store.close()
    return siq


def october(siq, *args) -> subprocess.CompletedProcess:
    return siq.siqctl("report", "--month", "2026-10", *args)


def test_report_totals(history):
    data = json.loads(october(history, "--format", "json").stdout)
    assert data["totals"] == {"opened": 9, "resolved": 4, "ignored": 3, "still_open": 2}
    assert data["period"]["start"] == "2026-09-30T22:00:00Z"
    assert data["period"]["end"] == "2026-10-31T23:00:00Z"


def test_report_per_host_and_rule(history):
    data = json.loads(october(history, "--format", "json").stdout)
    assert data["by_host"] == [{"host": "web-1", "incidents": 4}, {"host": "db-1", "incidents": 3},
                               {"host": "web-2", "incidents": 2}]
    assert data["by_rule"] == [{"rule": "cpu-busy", "incidents": 4}, {"rule": "disk-full", "incidents": 4},
                               {"rule": "memory-high", "incidents": 1}]


def test_report_days_and_hours_local(history):
    data = json.loads(october(history, "--format", "json").stdout)
    days = {day["date"]: day["incidents"] for day in data["by_day"]}
    assert len(days) == 31
    assert days["2026-10-12"] == 1
    assert days["2026-10-13"] == 0
    assert days["2026-10-25"] == 3
    hours = {hour["hour"]: hour["incidents"] for hour in data["by_hour"]}
    assert hours[2] == 2
    assert hours[23] == 3
    assert hours[14] == 2
    assert sum(hours.values()) == 9


def test_report_recurring_with_fixes(history):
    data = json.loads(october(history, "--format", "json").stdout)
    recurring = [(entry["host"], entry["rule"], entry["series"], entry["count"]) for entry in data["recurring"]]
    assert recurring == [("db-1", "disk-full", "mount=/", 3), ("web-1", "cpu-busy", "", 3)]
    fixes = [item["resolution"] for item in data["recurring"][0]["incidents"]]
    assert fixes == ["rotated logs", "rotated logs again", "fixed log level"]


def test_report_time_to_resolve(history):
    data = json.loads(october(history, "--format", "json").stdout)
    assert data["time_to_resolve"] == {"count": 4, "median_seconds": 3600.0, "p90_seconds": 7200.0}
    assert data["cleared_to_resolved"] == {"count": 3, "median_seconds": 1800.0, "p90_seconds": 1800.0}


def test_report_noise_and_reviews(history):
    data = json.loads(october(history, "--format", "json").stdout)
    assert [(rule["rule"], rule["ignored"], rule["incidents"]) for rule in data["noisy_rules"]] == \
        [("cpu-busy", 3, 4)]
    assert "raise the threshold (above 95.0%) or lengthen 'for' (15m)" in data["noisy_rules"][0]["suggestion"]
    assert sorted(item["title"] for item in data["unreviewed"]) == \
        ["<script>alert(1)</script>", "db-1 disk-full", "web-2 cpu-busy"]


def test_report_utc_differs(history):
    history.write_config('timezone = "UTC"\n')
    data = json.loads(october(history, "--format", "json").stdout)
    # In UTC the Berlin November-first incident (2026-10-31 23:00 UTC) is in October, and
    # the 2026-10-31 23:59:59 Berlin one (21:59:59 UTC) stays.
    assert data["totals"]["opened"] == 10


def test_report_text_and_markdown(history):
    text = october(history).stdout
    assert "9 incidents opened: 4 resolved, 3 ignored, 2 still open." in text
    assert "web-1" in text
    assert "##############################" in text
    assert "db-1 disk-full mount=/: 3 times" in text
    markdown = october(history, "--format", "md").stdout
    assert "| web-1 | 4 |" in markdown
    assert markdown.startswith("# siq report 2026-10")


def test_report_html_self_contained(history, tmp_path):
    out = tmp_path / "report.html"
    result = october(history, "--format", "html", "--out", str(out))
    assert result.returncode == 0, result.stderr
    page = out.read_text()
    assert "<svg" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>" not in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page


def test_report_html_in_chromium(history, tmp_path):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium package is not installed (scripts/run-tests installs it as root)")
    out = tmp_path / "report.html"
    october(history, "--format", "html", "--out", str(out))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'chromium'}"]
    shot = tmp_path / "report.png"
    subprocess.run([chromium, *flags, "--window-size=1100,2000", f"--screenshot={shot}", out.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.exists()
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    dom = subprocess.run([chromium, *flags, "--dump-dom", out.as_uri()], capture_output=True, text=True,
                         timeout=120).stdout
    assert dom.count("<svg") == 4
    assert "Recurring series" in dom


def test_report_notify_sends_summary(history, receiver):
    history.write_config(f'timezone = "Europe/Berlin"\n[notify.channels]\nops = ["{receiver.url()}"]\n')
    result = october(history, "--notify", "ops")
    assert result.returncode == 0, result.stderr
    messages = receiver.wait_for(1)
    assert len(messages) == 1
    assert messages[0]["title"] == "siq report 2026-10"
    assert "9 incidents opened" in messages[0]["message"]


@pytest.mark.parametrize("args, message", [
    (("--month", "2026-13"), "invalid --month"),
    (("--month", "2026-10", "--since", "7d"), "either --since or --month"),
    (("--format", "pdf"), "invalid --format"),
    (("--since", "a while"), "invalid --since"),
    (("--notify", "nobody"), "unknown channel 'nobody'"),
])
def test_report_bad_usage_exits_2(history, args, message):
    result = history.siqctl("report", *args)
    assert result.returncode == 2
    assert message in result.stderr
