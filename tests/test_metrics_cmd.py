"""siqctl hosts now-values and siqctl metrics over stored samples."""

import csv
import io


def test_hosts_show_now_values(siq):
    assert siq.siqd("run", "--once").returncode == 0
    hosts = siq.siqctl_json("hosts")
    assert len(hosts) == 1
    host = hosts[0]
    assert 0 <= host["cpu_percent"] <= 100
    assert 0 < host["memory_used_percent"] < 100
    assert host["worst_disk"]["mount"].startswith("/")
    assert "WORST DISK" in siq.siqctl("hosts").stdout


def test_metrics_series_json_and_csv(siq):
    for _ in range(2):
        assert siq.siqd("run", "--once").returncode == 0
    data = siq.siqctl_json("metrics", "test-host", "disk.used_percent", "--label", "mount=/")
    assert [series["labels"] for series in data] == [{"mount": "/"}]
    assert len(data[0]["samples"]) == 2
    assert data[0]["unit"] == "%"
    rows = list(csv.reader(io.StringIO(siq.siqctl("metrics", "test-host", "memory.used_percent", "--csv").stdout)))
    assert rows[0] == ["series", "time", "value"]
    assert len(rows) == 3


def test_metrics_bad_input(siq):
    assert siq.siqctl("metrics", "test-host", "cpu.temp").returncode == 2
    assert siq.siqctl("metrics", "test-host", "cpu.percent", "--since", "soon").returncode == 2
    missing = siq.siqctl("metrics", "nohost", "cpu.percent")
    assert missing.returncode == 1
    assert "host 'nohost' has not reported" in missing.stderr


def test_rollups_aggregate_and_serve_long_windows(siq):
    import time as clock

    from siqd.collect.host import Sample

    store = siq.store()
    now = clock.time()
    start = now - 3 * 86400  # three days ago, past the 48 h raw retention
    start -= start % 300
    with store.transaction():
        store.mark_host_seen("test-host", now, 10.0, "test")
        for index in range(60):  # ten minutes of readings every 10 s: two 5-minute buckets
            store.write_samples("test-host", start + index * 10, [Sample("cpu.percent", {}, float(index))])
    with store.transaction():
        assert store.roll_up("test-host", start + 900, 300.0, 12) == start + 900
    store.close()
    data = siq.siqctl_json("metrics", "test-host", "cpu.percent", "--since", "4d")
    assert data[0]["resolution"] == "5m"
    assert data[0]["samples"] == [
        {"at": data[0]["samples"][0]["at"], "min": 0.0, "avg": 14.5, "max": 29.0},
        {"at": data[0]["samples"][1]["at"], "min": 30.0, "avg": 44.5, "max": 59.0},
    ]


def test_daemon_rolls_up_as_it_goes(siq):
    import time as clock

    from siqd.collect.host import Sample

    store = siq.store()
    with store.transaction():  # readings from 20 minutes ago, as if siqd had been running
        for index in range(60):
            store.write_samples("test-host", clock.time() - 1200 + index * 10, [Sample("cpu.percent", {}, 5.0)])
    store.close()
    assert siq.siqd("run", "--once").returncode == 0
    store = siq.store()
    assert store.scalar("SELECT COUNT(*) FROM rollup_progress") == 1
    assert store.scalar("SELECT COUNT(*) FROM rollups") >= 2
    store.close()
