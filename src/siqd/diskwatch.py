"""Size watched directories and their largest subdirectories, within a time and file budget per scan.

`scan_directory` walks one directory tree and counts allocated bytes as
`du -sx` does. `DiskWatcher` runs scans of the `[disks] watch` paths in one
background thread every `watch_every` and hands finished scans to the daemon
as `dir.bytes` and `dir.scan_complete` samples, so a slow scan never delays
a metric round. The daemon imports this module only when `watch` is set.
"""

import errno
import heapq
import logging
import os
import posixpath
import stat
import threading
import time

from siqd.collect.host import Sample
from siqd.config import DiskSettings
from siqd.log import RepeatFilter, get_logger, log_event
from siqd.records import Factory, Record

logger = get_logger("diskwatch")

# du and st_blocks count in 512-byte units, whatever the filesystem's block size.
BLOCK_BYTES = 512
TIME_BUDGET = "time"
FILE_BUDGET = "files"
CANCELLED = "cancelled"
# A partial or failed scan of a path is logged at most once per this many seconds.
WARNING_WINDOW = 3600.0
# How long stop() waits for a scan in progress to notice that it was cancelled.
STOP_WAIT_SECONDS = 5.0


class DirScan(Record):
    """The outcome of one scan of a watched path."""

    path: str
    bytes: int = 0  # allocated bytes of the path and everything under it that was counted
    # (label path, allocated bytes) of the largest immediate subdirectories, largest first.
    subdirectories: list[tuple[str, int]] = Factory(list)
    files: int = 0  # files, directories and other entries counted
    skipped: int = 0  # entries that could not be read (permission denied, removed during the scan)
    stopped_by: str | None = None  # TIME_BUDGET, FILE_BUDGET or CANCELLED when the scan did not finish
    seconds: float = 0.0
    error: str | None = None  # why the path itself could not be scanned; no sizes then
    error_code: int | None = None  # the errno behind `error`, when there is one

    @property
    def complete(self) -> bool:
        return self.error is None and self.stopped_by is None


def label_path(path: str) -> str:
    """Return a path as a `path` label value that every reader of series keys can parse.

    Series keys separate labels with commas (siqd.store.base.series_key), so
    a comma in a path is written as %2C. Bytes that are not UTF-8 are shown
    as backslash escapes.
    """
    text = os.fsencode(path).decode("utf-8", "backslashreplace")
    return text.replace(",", "%2C")


def scan_directory(path: str, time_budget: float, max_files: int, top: int, clock=time.monotonic,
                   cancel: threading.Event | None = None) -> DirScan:
    """Count the allocated bytes under `path` and of its `top` largest immediate subdirectories.

    Sizes are st_blocks * 512, as `du -sx -B1` reports them. A file with
    several hard links is counted once. Symbolic links are counted but not
    followed, except the watched path itself. Directories of other
    filesystems mounted below `path` are left out. Entries that cannot be
    read are skipped and counted in `skipped`. The scan stops, and its result
    is partial, once it has counted `max_files` entries or `time_budget`
    seconds have passed on `clock`.
    """
    started = clock()
    deadline = started + time_budget
    result = DirScan(path=path)
    try:
        root = os.stat(path)
    except OSError as error:
        result.error = error.strerror or str(error)
        result.error_code = error.errno
        return result
    if not stat.S_ISDIR(root.st_mode):
        result.error = "not a directory"
        result.error_code = errno.ENOTDIR
        return result

    device = root.st_dev
    total = root.st_blocks * BLOCK_BYTES
    per_child: dict[str, int] = {}
    # Inodes of files with more than one link that were counted already. One
    # filesystem is scanned, so the inode number alone identifies a file.
    linked: set[int] = set()
    # Each entry: a directory to list, the immediate subdirectory of `path`
    # it belongs to (None for `path` itself) and the inodes of the directories
    # above it, so that a directory bind-mounted inside itself is not entered again.
    pending: list[tuple[str, str | None, tuple[int, ...]]] = [(path, None, (root.st_ino,))]
    while pending and result.stopped_by is None:
        directory, child, ancestors = pending.pop()
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    if result.files >= max_files:
                        result.stopped_by = FILE_BUDGET
                        break
                    if clock() >= deadline:
                        result.stopped_by = TIME_BUDGET
                        break
                    if cancel is not None and cancel.is_set():
                        result.stopped_by = CANCELLED
                        break
                    result.files += 1
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except OSError:
                        result.skipped += 1
                        continue
                    if info.st_dev != device:
                        continue
                    is_directory = stat.S_ISDIR(info.st_mode)
                    if not is_directory and info.st_nlink > 1:
                        if info.st_ino in linked:
                            continue
                        linked.add(info.st_ino)
                    size = info.st_blocks * BLOCK_BYTES
                    total += size
                    owner = child
                    if owner is None and is_directory:
                        owner = entry.name
                    if owner is not None:
                        per_child[owner] = per_child.get(owner, 0) + size
                    if is_directory and info.st_ino not in ancestors:
                        pending.append((entry.path, owner, ancestors + (info.st_ino,)))
        except OSError:
            # The directory could not be listed (permission denied, removed
            # meanwhile) or listing it failed part way.
            result.skipped += 1

    result.bytes = total
    largest = heapq.nlargest(top, per_child.items(), key=lambda item: item[1]) if top > 0 else []
    result.subdirectories = [(label_path(posixpath.join(path, name)), size) for name, size in largest]
    result.seconds = clock() - started
    return result


def scan_samples(scan: DirScan) -> list[Sample]:
    """Return the samples of a finished scan: dir.bytes of the path and its subdirectories, and dir.scan_complete.

    A scan that failed on the path itself has no sizes, so it gives no samples.
    """
    if scan.error is not None:
        return []
    label = label_path(scan.path)
    samples = [Sample("dir.bytes", {"path": label}, float(scan.bytes))]
    samples += [Sample("dir.bytes", {"path": sub}, float(size)) for sub, size in scan.subdirectories]
    samples.append(Sample("dir.scan_complete", {"path": label}, 1.0 if scan.complete else 0.0))
    return samples


def due_paths(settings: DiskSettings, last_scans: dict[str, float], now: float) -> list[str]:
    """Return the watched paths whose last scan (epoch seconds, by label path) is `watch_every` old or more.

    `siqd run --once` uses this, because each cron run is a new process with
    no thread to keep the schedule. A tenth of `watch_every` is allowed as
    slack, so a cron period equal to `watch_every` scans every run.
    """
    due = []
    for path in settings.watch:
        last = last_scans.get(label_path(path))
        if last is None or now - last >= 0.9 * settings.watch_every:
            due.append(path)
    return due


class DiskWatcher:
    """Scan the watched paths in one background thread and keep the newest finished scan of each."""

    def __init__(self, settings: DiskSettings, clock=time.monotonic):
        self.settings = settings
        self.clock = clock
        self._finished: dict[str, DirScan] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._warnings = RepeatFilter(WARNING_WINDOW)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="siqd-diskwatch", daemon=True)
        self._thread.start()
        log_event(logger, logging.INFO, "disk_watch_started", paths=",".join(self.settings.watch),
                  every=f"{self.settings.watch_every:g}s")

    def update(self, settings: DiskSettings) -> None:
        """Use new settings (after a reload); a changed watch setting starts a new round of scans at once."""
        old = self.settings
        self.settings = settings
        if (old.watch, old.watch_every, old.watch_budget, old.watch_max_files, old.watch_top) != \
                (settings.watch, settings.watch_every, settings.watch_budget, settings.watch_max_files,
                 settings.watch_top):
            self._wake.set()

    def stop(self) -> None:
        """Cancel a scan in progress and end the thread."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(STOP_WAIT_SECONDS)
            self._thread = None
            log_event(logger, logging.INFO, "disk_watch_stopped", paths=",".join(self.settings.watch))

    def samples(self) -> list[Sample]:
        """Return the samples of the scans finished since the last call, each scan once.

        When a path was scanned twice since the last call, only the newer scan
        counts, so one round never contains two values of one series. A watched
        path that is also a subdirectory of another one ("/var" and "/var/log")
        gets the value of its own scan.
        """
        with self._lock:
            finished, self._finished = self._finished, {}
        watched = set(self.settings.watch)
        chosen: dict[tuple[str, str], Sample] = {}
        for path, scan in finished.items():
            if path not in watched:
                continue
            own = label_path(path)
            for sample in scan_samples(scan):
                key = (sample.metric, sample.labels["path"])
                if sample.labels["path"] == own or key not in chosen:
                    chosen[key] = sample
        return list(chosen.values())

    def scan_paths(self, paths: list[str]) -> None:
        """Scan `paths` one after another in the calling thread and keep the results for samples()."""
        for path in paths:
            if self._stop.is_set():
                return
            settings = self.settings
            scan = scan_directory(path, settings.watch_budget, settings.watch_max_files, settings.watch_top,
                                  clock=self.clock, cancel=self._stop)
            if scan.stopped_by == CANCELLED:
                return
            self._report(scan, settings)
            with self._lock:
                self._finished[path] = scan

    def _run(self) -> None:
        # On Linux the nice value belongs to the thread (see setpriority(2)), so
        # scans yield the CPU to the metric rounds without slowing the rest of siqd.
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        except (AttributeError, OSError):
            pass
        while not self._stop.is_set():
            started = self.clock()
            self._wake.clear()
            settings = self.settings
            try:
                self.scan_paths(list(settings.watch))
            except Exception as error:  # a bug in a scan must not end the watching for good
                log_event(logger, logging.ERROR, "disk_watch_error", error=f"{type(error).__name__}: {error}",
                          action="report this as a bug; the next scans run at watch_every")
            self._wake.wait(max(started + self.settings.watch_every - self.clock(), 0.0))

    def _report(self, scan: DirScan, settings: DiskSettings) -> None:
        """Log a scan: a rate-limited warning when it failed, stopped early or skipped entries."""
        now = time.time()
        log_event(logger, logging.DEBUG, "dir_scanned", path=scan.path, bytes=scan.bytes, files=scan.files,
                  skipped=scan.skipped or None, seconds=f"{scan.seconds:.2f}", complete=scan.complete)
        if scan.error is not None:
            should_log, suppressed = self._warnings.should_log(f"failed:{scan.path}", now)
            if should_log:
                log_event(logger, logging.WARNING, "dir_watch_failed", path=scan.path, error=scan.error,
                          suppressed=suppressed or None, action=_failure_action(scan.error_code))
            return
        if scan.stopped_by is not None:
            should_log, suppressed = self._warnings.should_log(f"partial:{scan.path}", now)
            if should_log:
                if scan.stopped_by == TIME_BUDGET:
                    budget = f"watch_budget ({settings.watch_budget:g}s)"
                else:
                    budget = f"watch_max_files ({settings.watch_max_files})"
                log_event(logger, logging.WARNING, "dir_scan_partial", path=scan.path, budget=budget, files=scan.files,
                          suppressed=suppressed or None,
                          action="raise watch_budget or watch_max_files, or watch a narrower path")
        if scan.skipped:
            should_log, suppressed = self._warnings.should_log(f"skipped:{scan.path}", now)
            if should_log:
                log_event(logger, logging.WARNING, "dir_scan_skipped", path=scan.path, skipped=scan.skipped,
                          suppressed=suppressed or None,
                          action="run siqd as a user that can read the whole path, or watch a narrower path")


def _failure_action(code: int | None) -> str:
    if code == errno.ENOENT:
        return "siqd sizes the path once it exists; remove it from [disks] watch if it is not expected"
    if code == errno.ENOTDIR:
        return "list a directory in [disks] watch, not a file"
    if code in (errno.EACCES, errno.EPERM):
        return "run siqd as a user that can read the path, or remove it from [disks] watch"
    return "check the path and the filesystem it is on"
