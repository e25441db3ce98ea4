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
