"""The catalog of metrics siqd samples: names, units and the labels that split them into series."""

from typing import NamedTuple


class MetricInfo(NamedTuple):
    name: str
    unit: str
    description: str
    labels: tuple[str, ...] = ()


CATALOG = {
    info.name: info
    for info in (
        MetricInfo("cpu.percent", "%", "CPU busy time over the last interval, all cores"),
        MetricInfo("load.per_core_1m", "", "1-minute load average divided by the number of cores"),
        MetricInfo("load.per_core_5m", "", "5-minute load average divided by the number of cores"),
        MetricInfo("load.per_core_15m", "", "15-minute load average divided by the number of cores"),
        MetricInfo("memory.used_percent", "%", "memory in use, computed from 'available' (not 'free')"),
        MetricInfo("swap.used_percent", "%", "swap in use; absent when the host has no swap"),
        MetricInfo("disk.used_percent", "%", "used space as df shows it: used / (used + available)", ("mount",)),
        MetricInfo("disk.used_bytes", "B", "used space in bytes, for how fast a filesystem grows", ("mount",)),
        MetricInfo("disk.inodes_used_percent", "%", "inodes in use, as df -i shows it", ("mount",)),
        MetricInfo("disk.read_bytes_per_s", "B/s", "bytes read per second from a block device", ("device",)),
        MetricInfo("disk.write_bytes_per_s", "B/s", "bytes written per second to a block device", ("device",)),
        MetricInfo("net.in_bytes_per_s", "B/s", "bytes received per second on a network interface", ("nic",)),
        MetricInfo("net.out_bytes_per_s", "B/s", "bytes sent per second on a network interface", ("nic",)),
        MetricInfo("procs.count", "", "number of processes"),
        MetricInfo("uptime.seconds", "s", "seconds since the host booted"),
        MetricInfo("check.status", "", "a check's outcome: 0 ok, 1 warning, 2 critical; unknown outcomes "
                                       "write no sample", ("check",)),
        MetricInfo("check.duration_seconds", "s", "how long a check's last run took", ("check",)),
        MetricInfo("check.tls_days_left", "", "days until an HTTPS check's certificate expires", ("check",)),
        MetricInfo("check.process_count", "", "processes matching a process check", ("check",)),
        MetricInfo("check.perf", "", "a plugin check's performance data, one series per label",
                   ("check", "label")),
        MetricInfo("heartbeat.status", "", "a cron heartbeat: 0 ran on time, 2 late, failed or stuck",
                   ("heartbeat",)),
        MetricInfo("dir.bytes", "B", "size of a watched directory or of one of its largest subdirectories",
                   ("path",)),
        MetricInfo("dir.scan_complete", "", "1 when the last scan of a watched directory finished, 0 when it "
                                            "stopped at watch_budget or watch_max_files", ("path",)),
        MetricInfo("host.silent_seconds", "s", "seconds since a host last reported; other hosts' siqd "
                                               "evaluate it for the built-in host-silent rule"),
    )
}


def unit_of(metric: str) -> str:
    info = CATALOG.get(metric)
    return info.unit if info else ""


def format_value(value: float | None, unit: str) -> str:
    """Format a metric value with its unit for people: "90.4%", "12.3 MB/s", "1.52"."""
    if value is None:
        return "-"
    if unit == "%":
        return f"{value:.1f}%"
    if unit in ("B", "B/s"):
        return format_bytes(value) + unit[1:]
    if unit == "s":
        from siqd.durations import format_duration

        if 0 < abs(value) < 1:  # check latencies: "68 µs", "120 ms", not "0s"
            return f"{value * 1e6:.0f} µs" if abs(value) < 0.001 else f"{value * 1000:.0f} ms"
        return format_duration(value)
    if float(value).is_integer():
        return f"{int(value)}{unit}"
    return f"{value:.2f}{unit}"


def format_bytes(value: float) -> str:
    """Format a byte count with decimal prefixes, as df -H does: "512 B", "1.5 GB"."""
    size = float(value)
    if abs(size) < 1000:
        return f"{size:.0f} B"
    for prefix in ("kB", "MB", "GB", "TB", "PB"):
        size /= 1000
        if abs(size) < 1000:
            break
    return f"{size:.1f} {prefix}"
