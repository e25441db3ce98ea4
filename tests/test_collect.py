"""The host collector on this machine's real psutil readings."""

import os
import time

import psutil

from siqd.collect.host import HostCollector, Sample
from siqd.config import DiskSettings
from conftest import df_percent, fill

RATE_METRICS = {"cpu.percent", "disk.read_bytes_per_s", "disk.write_bytes_per_s", "net.in_bytes_per_s",
                "net.out_bytes_per_s"}


def by_metric(samples: list[Sample]) -> dict[str, list[Sample]]:
    grouped: dict[str, list[Sample]] = {}
    for sample in samples:
        grouped.setdefault(sample.metric, []).append(sample)
    return grouped


def test_first_round_has_no_rates():
    samples = HostCollector(DiskSettings()).collect()
    metrics = {sample.metric for sample in samples}
    assert not metrics & RATE_METRICS
    assert "memory.used_percent" in metrics
    assert "load.per_core_1m" in metrics


def test_second_round_has_rates():
    collector = HostCollector(DiskSettings())
    collector.prime()
    time.sleep(0.3)
    samples = by_metric(collector.collect())
    assert 0.0 <= samples["cpu.percent"][0].value <= 100.0
    for metric in RATE_METRICS - {"cpu.percent"}:
        for sample in samples.get(metric, []):
            assert sample.value >= 0


def test_counter_reset_gives_no_rate():
    collector = HostCollector(DiskSettings())
    collector.prime()
    # Pretend the previous reading was far higher, as after a counter reset.
    collector.previous.net = {nic: (10**15, 10**15) for nic in collector.previous.net}
    collector.previous.disk = {disk: (10**15, 10**15) for disk in collector.previous.disk}
    samples = by_metric(collector.collect())
    assert "net.in_bytes_per_s" not in samples
    assert "disk.read_bytes_per_s" not in samples


def test_reboot_gives_no_rate():
    collector = HostCollector(DiskSettings())
    collector.prime()
    collector.previous.boot_time -= 3600
    metrics = {sample.metric for sample in collector.collect()}
    assert not metrics & RATE_METRICS


def test_memory_uses_available():
    memory = psutil.virtual_memory()
    expected = (memory.total - memory.available) / memory.total * 100
    value = by_metric(HostCollector(DiskSettings()).collect())["memory.used_percent"][0].value
    assert abs(value - expected) < 2.0


def test_root_disk_matches_df():
    samples = by_metric(HostCollector(DiskSettings()).collect())
    root = [s for s in samples["disk.used_percent"] if s.labels == {"mount": "/"}]
    assert len(root) == 1
    # df rounds up to a whole percent.
    assert abs(root[0].value - df_percent("/")) <= 1.0


def test_pseudo_filesystems_skipped():
    mounts = HostCollector(DiskSettings()).monitored_mounts()
    assert "/proc" not in mounts
    assert "/sys" not in mounts
    assert "/dev/shm" not in mounts
    assert not [mount for mount in mounts if mount.startswith("/sys/fs/cgroup")]


def test_tmpfs_elsewhere_included(tmpfs):
    fill(tmpfs, 50)
    samples = by_metric(HostCollector(DiskSettings()).collect())
    mine = [s for s in samples["disk.used_percent"] if s.labels == {"mount": str(tmpfs)}]
    assert len(mine) == 1
    assert abs(mine[0].value - df_percent(tmpfs)) <= 1.0
    inodes = [s for s in samples["disk.inodes_used_percent"] if s.labels == {"mount": str(tmpfs)}]
    assert len(inodes) == 1


def test_bind_mount_sampled_once(tmpfs, tmp_path):
    import subprocess

    copy = tmp_path / "bound"
    copy.mkdir()
    subprocess.run(["mount", "--bind", str(tmpfs), str(copy)], check=True)
    try:
        mounts = HostCollector(DiskSettings()).monitored_mounts()
    finally:
        subprocess.run(["umount", str(copy)], check=False)
    assert str(tmpfs) in mounts
    assert str(copy) not in mounts


def test_skip_lists_configurable(tmpfs):
    settings = DiskSettings(skip_mounts=[str(tmpfs)])
    assert str(tmpfs) not in HostCollector(settings).monitored_mounts()
    settings = DiskSettings(skip_fstypes=["tmpfs"])
    assert str(tmpfs) not in HostCollector(settings).monitored_mounts()
    settings = DiskSettings(skip_tmpfs_under=[os.path.dirname(tmpfs)])
    assert str(tmpfs) not in HostCollector(settings).monitored_mounts()


def test_once_reuses_saved_counters(siq):
    first = siq.siqd("run", "--once")
    assert first.returncode == 0, first.stderr
    second = siq.siqd("run", "--once")
    assert second.returncode == 0, second.stderr
    store = siq.store()
    rows = store.rows("SELECT DISTINCT ts FROM samples s JOIN series r ON r.id = s.series_id "
                      "WHERE r.metric = 'cpu.percent'")
    store.close()
    assert len(rows) == 2
