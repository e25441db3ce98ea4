"""Sample this host's metrics with psutil.

Counters (CPU times, disk and network bytes) become rates against the
previous reading. Without a previous reading, or when a counter went
backwards (reset, reboot), the rate is left out for that round rather than
reported as 0 or negative: a missing sample is "unknown" to the rules.
"""

import fnmatch
import json
import os
import time
from siqd.records import Factory, Record

import psutil

from siqd.config import DiskSettings
from siqd.log import RepeatFilter, get_logger, log_event
from siqd.metrics import unit_of

logger = get_logger("collect")

# Block devices that are not real disks: loop devices (snaps, images), RAM
# disks, compressed swap in RAM, optical and floppy drives.
_VIRTUAL_DISK_PREFIXES = ("loop", "ram", "zram", "sr", "fd")


class Sample(Record):
    metric: str
    labels: dict[str, str]
    value: float
    unit: str = ""
    # Why a check reads as it does ("HTTP 503 in 120 ms"); empty for host metrics.
    text: str = ""

    def __post_init__(self):
        if not self.unit:
            self.unit = unit_of(self.metric)


class Counters(Record):
    """Counter readings at one moment; rates are differences between two of these."""

    clock: float  # seconds on CLOCK_BOOTTIME, comparable across processes until reboot
    boot_time: float
    cpu: tuple[float, float] | None = None  # (total, busy) seconds
    disk: dict[str, tuple[int, int]] = Factory(dict)  # device: (read, written) bytes
    net: dict[str, tuple[int, int]] = Factory(dict)  # nic: (received, sent) bytes

    def to_json(self) -> str:
        return json.dumps({"clock": self.clock, "boot_time": self.boot_time, "cpu": self.cpu,
                           "disk": self.disk, "net": self.net})

    @classmethod
    def from_json(cls, text: str) -> "Counters":
        data = json.loads(text)
        return cls(
            clock=data["clock"],
            boot_time=data["boot_time"],
            cpu=tuple(data["cpu"]) if data.get("cpu") else None,
            disk={key: tuple(value) for key, value in data.get("disk", {}).items()},
            net={key: tuple(value) for key, value in data.get("net", {}).items()},
        )


def boot_clock() -> float:
    try:
        return time.clock_gettime(time.CLOCK_BOOTTIME)
    except (AttributeError, OSError):
        return time.time()


def _cpu_total_and_busy(times) -> tuple[float, float]:
    # The same accounting as psutil.cpu_percent: guest time is already part of
    # user time on Linux, and iowait counts as idle.
    total = sum(times)
    total -= getattr(times, "guest", 0) + getattr(times, "guest_nice", 0)
    busy = total - times.idle - getattr(times, "iowait", 0)
    return total, busy


def is_whole_disk(name: str) -> bool:
    """Tell a whole block device (sda, nvme0n1, dm-0) from a partition or a virtual device."""
    if name.startswith(_VIRTUAL_DISK_PREFIXES):
        return False
    return os.path.exists(f"/sys/block/{name}")


class HostCollector:
    """Read this host's metrics; keeps the previous counters to compute rates."""

    def __init__(self, disks: DiskSettings):
        self.disks = disks
        self.previous: Counters | None = None
        self.cpu_count = psutil.cpu_count() or 1
        self._errors = RepeatFilter()

    # -- counters -----------------------------------------------------------------

    def read_counters(self) -> Counters:
        counters = Counters(clock=boot_clock(), boot_time=psutil.boot_time())
        counters.cpu = self._guard("cpu", lambda: _cpu_total_and_busy(psutil.cpu_times()))
        per_disk = self._guard("disk_io", lambda: psutil.disk_io_counters(perdisk=True, nowrap=False)) or {}
        counters.disk = {
            name: (io.read_bytes, io.write_bytes) for name, io in per_disk.items() if is_whole_disk(name)
        }
        per_nic = self._guard("net_io", lambda: psutil.net_io_counters(pernic=True, nowrap=False)) or {}
        counters.net = {name: (io.bytes_recv, io.bytes_sent) for name, io in per_nic.items() if name != "lo"}
        return counters

    def prime(self) -> None:
        """Take a first counter reading so the next collect() can report rates."""
        self.previous = self.read_counters()

    def _rates(self, current: Counters) -> list[Sample]:
        previous = self.previous
        if previous is None or previous.boot_time != current.boot_time:
            return []
        elapsed = current.clock - previous.clock
        if elapsed <= 0.05:
            return []
        samples = []
        if previous.cpu and current.cpu:
            total = current.cpu[0] - previous.cpu[0]
            busy = current.cpu[1] - previous.cpu[1]
            if total > 0:
                # Linux's iowait counter can go backwards, making busy time shrink a
                # little; the CPU was idle then, as psutil.cpu_percent also reports.
                samples.append(Sample("cpu.percent", {}, round(min(100.0, max(busy, 0.0) / total * 100), 2)))
        for metrics, label, old, new in (
            (("disk.read_bytes_per_s", "disk.write_bytes_per_s"), "device", previous.disk, current.disk),
            (("net.in_bytes_per_s", "net.out_bytes_per_s"), "nic", previous.net, current.net),
        ):
            for name, values in new.items():
                before = old.get(name)
                if before is None:
                    continue
                for metric, now_value, then_value in zip(metrics, values, before):
                    if now_value >= then_value:
                        samples.append(Sample(metric, {label: name}, round((now_value - then_value) / elapsed, 1)))
        return samples

    # -- gauges ---------------------------------------------------------------------

    def _gauges(self, now: float) -> list[Sample]:
        samples = []
        load = self._guard("load", os.getloadavg)
        if load:
            for window, value in zip(("1m", "5m", "15m"), load):
                samples.append(Sample(f"load.per_core_{window}", {}, round(value / self.cpu_count, 3)))
        memory = self._guard("memory", psutil.virtual_memory)
        if memory and memory.total:
            used = (memory.total - memory.available) / memory.total * 100
            samples.append(Sample("memory.used_percent", {}, round(used, 2)))
        swap = self._guard("swap", psutil.swap_memory)
        if swap and swap.total:
            samples.append(Sample("swap.used_percent", {}, round(swap.used / swap.total * 100, 2)))
        pids = self._guard("procs", psutil.pids)
        if pids:
            samples.append(Sample("procs.count", {}, float(len(pids))))
        boot = self._guard("uptime", psutil.boot_time)
        if boot:
            samples.append(Sample("uptime.seconds", {}, round(now - boot)))
        samples.extend(self._filesystems())
        return samples

    def monitored_mounts(self) -> list[str]:
        """Return the mount points whose space and inodes are sampled, after the skip lists."""
        partitions = self._guard("mounts", lambda: psutil.disk_partitions(all=True)) or []
        chosen: dict[str, None] = {}
        for part in partitions:
            if self._skip_mount(part):
                chosen.pop(part.mountpoint, None)
                continue
            chosen[part.mountpoint] = None
        return self._one_per_filesystem(list(chosen))

    @staticmethod
    def _one_per_filesystem(mounts: list[str]) -> list[str]:
        """Keep one mount point per filesystem, the shallowest, or the first mounted: bind mounts repeat it.

        systemd's ProtectHome= and PrivateTmp=, containers and fstab bind
        entries mount a filesystem again at /home, /tmp and elsewhere, and
        each copy would be sampled and alert as a disk of its own.
        """
        kept: list[str] = []
        devices: set[int] = set()
        # A stable sort keeps the mount table's order between mount points of the same depth.
        for mount in sorted(mounts, key=lambda path: path.rstrip("/").count("/")):
            try:
                device = os.stat(mount).st_dev
            except OSError:
                continue
            if device not in devices:
                devices.add(device)
                kept.append(mount)
        return kept

    def _skip_mount(self, part) -> bool:
        settings = self.disks
        options = part.opts.split(",") if part.opts else []
        if part.fstype in settings.skip_fstypes:
            return True
        if part.fstype == "tmpfs":
            if "ro" in options:  # a read-only tmpfs cannot fill up
                return True
            for prefix in settings.skip_tmpfs_under:
                prefix = prefix.rstrip("/") or "/"
                if part.mountpoint == prefix or part.mountpoint.startswith(prefix.rstrip("/") + "/"):
                    return True
        if part.device.startswith("/dev/loop") and "ro" in options:  # snap and image mounts
            return True
        if any(fnmatch.fnmatchcase(part.mountpoint, pattern) for pattern in settings.skip_mounts):
            return True
        return not os.path.isdir(part.mountpoint)  # bind-mounted single files

    def _filesystems(self) -> list[Sample]:
        samples = []
        for mount in self.monitored_mounts():
            # NOTE: statvfs on a hung network filesystem can block this round;
            # skip such mounts with [disks] skip_fstypes (e.g. "nfs4").
            try:
                stats = os.statvfs(mount)
            except OSError as error:
                self._report("statvfs", error, mount=mount)
                continue
            used = (stats.f_blocks - stats.f_bfree) * stats.f_frsize
            available = stats.f_bavail * stats.f_frsize
            labels = {"mount": mount}
            if used + available > 0:
                # df's figure: space available to unprivileged users is the
                # denominator, so reserved blocks count as not available.
                samples.append(Sample("disk.used_percent", labels, round(used / (used + available) * 100, 2)))
                samples.append(Sample("disk.used_bytes", dict(labels), float(used)))
            if stats.f_files > 0:
                inodes_used = stats.f_files - stats.f_ffree
                samples.append(Sample("disk.inodes_used_percent", dict(labels),
                                      round(inodes_used / stats.f_files * 100, 2)))
        return samples

    # -- one round ------------------------------------------------------------------

    def collect(self, now: float | None = None) -> list[Sample]:
        """Return this round's samples and keep the counters for the next round."""
        now = time.time() if now is None else now
        current = self.read_counters()
        samples = self._rates(current)
        self.previous = current
        samples.extend(self._gauges(now))
        return samples

    def _guard(self, what: str, read):
        try:
            value = read()
        except (OSError, RuntimeError, psutil.Error) as error:
            self._report(what, error)
            return None
        self._errors.forget(what)
        return value

    def _report(self, what: str, error: Exception, **fields) -> None:
        key = f"{what}:{fields}"
        should_log, suppressed = self._errors.should_log(key, time.time())
        if should_log:
            log_event(logger, 30, "metric_read_failed", metric=what, error=error,
                      suppressed=suppressed or None, **fields)
