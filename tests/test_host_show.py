"""siqctl host show: current values, sparklines, disk growth and forecast, incidents, over seeded history."""

import time

from siqd import hostview
from siqd.collect.host import Sample

HOUR = 3600.0
GB = 1e9


def seed_day(store, now: float, rolled_hours: float = 20.0) -> None:
    """Write 24 hours of readings every 60 s as siqd would, and roll up all but the last hours.

    cpu.percent is 10 in the first 12 hours and 50 after. The root disk
    starts at 40 GB (40%) and grows by 1 GB (1 point) an hour.
    """
    start = now - 24 * HOUR
    with store.transaction():
        store.mark_host_seen("test-host", start, 60.0, "test")
    ts = start
    with store.transaction():
        while ts <= now:
            hours = (ts - start) / HOUR
            used = 40 * GB + hours * GB
            store.write_samples("test-host", ts, [
                Sample("cpu.percent", {}, 10.0 if hours < 12 else 50.0),
                Sample("disk.used_percent", {"mount": "/"}, used / (100 * GB) * 100, "%"),
                Sample("disk.used_bytes", {"mount": "/"}, used, "B"),
                Sample("disk.inodes_used_percent", {"mount": "/"}, 3.0, "%"),
            ])
            ts += 60.0
        store.mark_host_seen("test-host", ts - 60.0, 60.0, "test")
    until = now - (24 - rolled_hours) * HOUR
    with store.transaction():
        while store.roll_up("test-host", until, 300.0, 500) is not None:
            pass


def test_history_joins_rollups_and_raw_samples(siq):
    store = siq.store()
    now = time.time()
    seed_day(store, now)
    window = hostview.history(store, "test-host", now - 24 * HOUR, now, 24)
    assert window["step"] == HOUR
    cpu = window["series"][("cpu.percent", "")]
    means = [bucket[1] for bucket in cpu if bucket is not None]
    # Each hour is one column, rolled up or raw; a column averages only its own hour.
    assert len(means) >= 23
    assert all(abs(mean - 10.0) < 1e-9 or abs(mean - 50.0) < 1e-9 for mean in means[:11] + means[13:])
    assert means[0] == 10.0
    assert means[-1] == 50.0
    lows, highs = [bucket[0] for bucket in cpu if bucket], [bucket[2] for bucket in cpu if bucket]
    assert min(lows) == 10.0
    assert max(highs) == 50.0
    store.close()


def test_host_show_json_has_charts_mounts_and_incidents(siq):
    store = siq.store()
    now = time.time()
    seed_day(store, now)
    store.close()
    assert siq.siqctl("open", "--host", "test-host", "--title", "backup job stuck").returncode == 0
    closed = siq.siqctl_json("open", "--host", "test-host", "--title", "disk cleanup")
    assert siq.siqctl("resolve", str(closed["id"]), "-m", "deleted old dumps").returncode == 0

    data = siq.siqctl_json("host", "show", "test-host", "--width", "24")
    assert data["name"] == "test-host"
    assert data["cpu_percent"] == 50.0
    cpu = next(chart for chart in data["charts"] if chart["metric"] == "cpu.percent")
    assert len(cpu["buckets"]) == 24
    assert cpu["buckets"][-1]["avg"] == 50.0
    assert not any(chart["metric"].startswith("disk.used") for chart in data["charts"])

    [root] = data["mounts"]
    assert root["mount"] == "/"
    assert abs(root["used_percent"] - 64.0) < 0.1
    # 1 GB an hour for 6 hours, measured from the first 5-minute bucket of the window.
    assert 5.5 * GB < root["growth_bytes"] < 6.1 * GB
    # 36 points left at 1 point an hour.
    assert 34 * HOUR < root["full_in_seconds"] < 38 * HOUR

    assert [incident["title"] for incident in data["open_incidents"]] == ["backup job stuck"]
    assert [incident["resolution"] for incident in data["recent_incidents"]] == ["deleted old dumps"]


def test_host_show_text(siq):
    store = siq.store()
    now = time.time()
    seed_day(store, now)
    store.close()
    closed = siq.siqctl_json("open", "--host", "test-host", "--title", "disk cleanup")
    assert siq.siqctl("resolve", str(closed["id"]), "-m", "deleted old dumps").returncode == 0
    result = siq.siqctl("host", "show", "test-host", "--width", "24")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "Now: cpu 50.0%" in text
    cpu_line = next(line for line in text.splitlines() if line.strip().startswith("cpu.percent"))
    # 10% for 12 hours, then 50%: low marks, then middle ones, on a 0-100 scale.
    spark = cpu_line.split()[1]
    assert spark[0] == "▁"
    assert spark[-1] == "▅"
    assert "max 50.0%" in cpu_line
    root_line = next(line for line in text.splitlines() if line.strip().startswith("/ "))
    assert "64.0%" in root_line
    assert "+6.0 GB" in root_line or "+5.9 GB" in root_line
    assert "resolved by" in text
    assert "deleted old dumps" in text


def test_host_show_window_limits_recent_incidents(siq):
    store = siq.store()
    now = time.time()
    seed_day(store, now)
    old = store.create_incident(
        host="test-host", rule="manual", series="title=old", metric=None, labels={}, title="old trouble",
        severity="warning", status="resolved", source="manual", value=None, threshold=None, comparison=None,
        unit="", for_seconds=None, started_at=now - 20 * HOUR, opened_at=now - 20 * HOUR, cleared_at=None,
        closed_at=now - 19 * HOUR, closed_by="ana", resolution="fixed", previous_id=None, updated_at=now - 19 * HOUR,
    )
    store.close()
    day = siq.siqctl_json("host", "show", "test-host")
    assert [incident["id"] for incident in day["recent_incidents"]] == [old]
    short = siq.siqctl_json("host", "show", "test-host", "--since", "6h")
    assert short["recent_incidents"] == []
    assert short["window"]["step_seconds"] <= 6 * HOUR / 8


def test_host_show_on_live_samples(siq):
    for _ in range(2):
        assert siq.siqd("run", "--once").returncode == 0
    result = siq.siqctl("host", "show", "test-host", "--since", "10m")
    assert result.returncode == 0, result.stderr
    assert "cpu.percent" in result.stdout
    assert "\n  /  " in result.stdout or "\n  / " in result.stdout


def test_host_show_bad_input(siq):
    assert siq.siqd("run", "--once").returncode == 0
    missing = siq.siqctl("host", "show", "nohost")
    assert missing.returncode == 1
    assert missing.stderr.strip() == ("error: host 'nohost' has not reported to this store; "
                                      "list hosts with 'siqctl hosts'")
    bad = siq.siqctl("host", "show", "test-host", "--since", "yesterday")
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: invalid --since")
    assert "Traceback" not in bad.stderr
    assert siq.siqctl("host", "show", "test-host", "--width", "-3").returncode == 2
