"""Watched directories: the scan against du, its budgets, the breakdown's growth, and siqd and siqctl end to end."""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import BIN
from siqd import hostview
from siqd.config import DiskSettings
from siqd.diskwatch import (
    FILE_BUDGET, TIME_BUDGET, DirScan, DiskWatcher, due_paths, label_path, scan_directory, scan_samples,
)
from siqd.store.base import labels_of, series_key

MB = 1_000_000
GB = 1_000_000_000
HOUR = 3600.0
NO_LIMIT = 10**9


def du_bytes(path: Path) -> int:
    """Return `du -sx -B1` of a path: allocated bytes on its filesystem, hard links once."""
    output = subprocess.run(["du", "-sx", "-B1", str(path)], capture_output=True, text=True, check=True).stdout
    return int(output.split()[0])


def write_file(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(os.urandom(size))


def block_of(path: Path) -> int:
    return os.statvfs(path).f_bsize


@contextmanager
def mounted_tmpfs(mountpoint: Path, size: str):
    """Mount a tmpfs at `mountpoint` (root only) and unmount it on the way out."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    mountpoint.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mountpoint)], check=True)
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


# --- the scan ---------------------------------------------------------------------------------


def build_tree(root: Path) -> None:
    write_file(root / "top-level.bin", 70_000)
    write_file(root / "logs" / "app.log", 3 * MB)
    write_file(root / "logs" / "old" / "app.log.1", 1_200_000)
    write_file(root / "cache" / "a", 300_000)
    write_file(root / "cache" / "b", 5)
    (root / "empty").mkdir()
    with open(root / "logs" / "sparse", "wb") as handle:
        handle.truncate(40 * MB)  # allocates next to nothing, as du counts it


def test_scan_matches_du(tmp_path):
    root = tmp_path / "tree"
    build_tree(root)
    scan = scan_directory(str(root), 30.0, NO_LIMIT, 10)
    block = block_of(root)
    assert scan.complete
    assert scan.error is None
    assert abs(scan.bytes - du_bytes(root)) <= block
    sizes = dict(scan.subdirectories)
    assert set(sizes) == {str(root / name) for name in ("logs", "cache", "empty")}
    for name in ("logs", "cache", "empty"):
        assert abs(sizes[str(root / name)] - du_bytes(root / name)) <= block
    assert scan.files == 10  # 4 directories below the root and 6 files


def test_scan_keeps_largest_subdirectories(tmp_path):
    for index, size in enumerate([100_000, 900_000, 300_000, 50_000, 700_000]):
        write_file(tmp_path / "tree" / f"d{index}" / "data", size)
    scan = scan_directory(str(tmp_path / "tree"), 30.0, NO_LIMIT, 2)
    assert [path for path, _ in scan.subdirectories] == [str(tmp_path / "tree" / "d1"),
                                                         str(tmp_path / "tree" / "d4")]
    assert scan_directory(str(tmp_path / "tree"), 30.0, NO_LIMIT, 0).subdirectories == []


def test_scan_counts_hard_links_once(tmp_path):
    root = tmp_path / "tree"
    write_file(root / "a" / "original", 2 * MB)
    (root / "b").mkdir()
    os.link(root / "a" / "original", root / "b" / "link")
    os.link(root / "a" / "original", root / "link-at-top")
    scan = scan_directory(str(root), 30.0, NO_LIMIT, 10)
    block = block_of(root)
    assert abs(scan.bytes - du_bytes(root)) <= block
    assert scan.bytes < 3 * MB
    sizes = dict(scan.subdirectories)
    # As with du, the first path seen owns the file, so the two subdirectories count it once between them.
    assert sizes[str(root / "a")] + sizes[str(root / "b")] < 3 * MB


def test_scan_ignores_symlink_loops(tmp_path):
    root = tmp_path / "tree"
    write_file(root / "real" / "data", 500_000)
    os.symlink(root, root / "real" / "back-to-top")
    os.symlink("loop-b", root / "loop-a")
    os.symlink("loop-a", root / "loop-b")
    os.symlink("/", root / "to-slash")
    scan = scan_directory(str(root), 30.0, NO_LIMIT, 10)
    assert scan.complete
    assert abs(scan.bytes - du_bytes(root)) <= block_of(root)
    assert [path for path, _ in scan.subdirectories] == [str(root / "real")]


def test_scan_follows_watched_symlink(tmp_path):
    write_file(tmp_path / "target" / "sub" / "data", 400_000)
    os.symlink(tmp_path / "target", tmp_path / "alias")
    scan = scan_directory(str(tmp_path / "alias"), 30.0, NO_LIMIT, 10)
    assert abs(scan.bytes - du_bytes(tmp_path / "target")) <= block_of(tmp_path)
    assert scan.subdirectories[0][0] == str(tmp_path / "alias" / "sub")


def test_scan_stops_at_file_budget(tmp_path):
    root = tmp_path / "tree"
    for index in range(50):
        write_file(root / f"d{index % 5}" / f"f{index}", 10)
    scan = scan_directory(str(root), 30.0, 20, 10)
    assert scan.stopped_by == FILE_BUDGET
    assert not scan.complete
    assert scan.files == 20
    assert scan.bytes < du_bytes(root)
    # A budget that the tree fits in exactly is no stop.
    assert scan_directory(str(root), 30.0, 55, 10).complete


def test_scan_stops_at_time_budget(tmp_path):
    root = tmp_path / "tree"
    for index in range(200):
        write_file(root / f"d{index % 4}" / f"f{index}", 10)
    ticks = iter(range(10**6))
    scan = scan_directory(str(root), 50.0, NO_LIMIT, 10, clock=lambda: float(next(ticks)))
    assert scan.stopped_by == TIME_BUDGET
    assert not scan.complete
    # One clock reading at the start, then one before each entry: the 50th entry is not counted.
    assert scan.files == 49
    immediate = scan_directory(str(root), 0.0, NO_LIMIT, 10)
    assert immediate.stopped_by == TIME_BUDGET
    assert immediate.files == 0


def test_scan_time_budget_on_real_clock(tmp_path):
    with mounted_tmpfs(tmp_path / "mnt", "8m") as mountpoint:
        make_many_links(mountpoint / "many", 100_000)
        started = time.monotonic()
        scan = scan_directory(str(mountpoint / "many"), 0.1, NO_LIMIT, 10)
        elapsed = time.monotonic() - started
        assert scan.stopped_by == TIME_BUDGET
        assert 0 < scan.files < 100_100
        assert elapsed < 0.5


def test_scan_skips_directory_removed_mid_scan(tmp_path):
    root = tmp_path / "tree"
    write_file(root / "kept" / "data", 200_000)
    write_file(root / "doomed" / "inner" / "data", 600_000)
    readings = []

    def clock_that_removes() -> float:
        # The first reading is the scan's start. The second comes before the first entry,
        # once the root's listing is read, so "doomed" is listed but gone when it is read.
        readings.append(True)
        if len(readings) == 2:
            shutil.rmtree(root / "doomed")
        return time.monotonic()

    scan = scan_directory(str(root), 30.0, NO_LIMIT, 10, clock=clock_that_removes)
    assert scan.complete
    assert scan.skipped == 1
    assert [path for path, _ in scan.subdirectories] == [str(root / "kept")]
    assert abs(scan.bytes - du_bytes(root)) <= block_of(root)


NOBODY = 65534


def scan_without_root(path: Path) -> dict:
    """Scan `path` as this user, or as root in a forked child that switched to uid and gid 65534 (nobody)."""
    if os.geteuid() != 0:
        scan = scan_directory(str(path), 30.0, NO_LIMIT, 10)
        return {"complete": scan.complete, "skipped": scan.skipped, "subdirectories": dict(scan.subdirectories)}
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            scan = scan_directory(str(path), 30.0, NO_LIMIT, 10)
            report = {"complete": scan.complete, "skipped": scan.skipped,
                      "subdirectories": dict(scan.subdirectories)}
            os.write(write_end, json.dumps(report).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        output = pipe.read()
    os.waitpid(child, 0)
    return json.loads(output)


def test_scan_skips_unreadable_directory():
    # A folder every user can enter, because tmp_path is private to root.
    folder = Path(tempfile.mkdtemp(prefix="siq-diskwatch-"))
    try:
        folder.chmod(0o755)
        root = folder / "tree"
        write_file(root / "open" / "data", 200_000)
        write_file(root / "closed" / "data", 600_000)
        for directory in (root, root / "open"):
            directory.chmod(0o755)
        (root / "open" / "data").chmod(0o644)
        (root / "closed").chmod(0)
        scan = scan_without_root(root)
    finally:
        (folder / "tree" / "closed").chmod(0o755)
        shutil.rmtree(folder)
    assert scan["complete"] is True
    assert scan["skipped"] == 1
    assert scan["subdirectories"][str(root / "open")] >= 200_000
    assert scan["subdirectories"][str(root / "closed")] < 200_000


def test_scan_stays_on_its_filesystem(tmp_path):
    root = tmp_path / "tree"
    write_file(root / "local" / "data", 300_000)
    with mounted_tmpfs(root / "mounted", "8m") as mountpoint:
        write_file(mountpoint / "data", 2 * MB)
        scan = scan_directory(str(root), 30.0, NO_LIMIT, 10)
        assert abs(scan.bytes - du_bytes(root)) <= block_of(root)
        assert scan.bytes < 2 * MB
        assert [path for path, _ in scan.subdirectories] == [str(root / "local")]


def test_scan_of_missing_path_or_file(tmp_path):
    missing = scan_directory(str(tmp_path / "nothing"), 30.0, NO_LIMIT, 10)
    assert missing.error == "No such file or directory"
    assert not missing.complete
    assert scan_samples(missing) == []
    write_file(tmp_path / "plain", 10)
    assert scan_directory(str(tmp_path / "plain"), 30.0, NO_LIMIT, 10).error == "not a directory"


def test_samples_of_scan_and_comma_paths(tmp_path):
    root = tmp_path / "tree"
    write_file(root / "a,b=c" / "data", 100_000)
    scan = scan_directory(str(root), 30.0, NO_LIMIT, 10)
    samples = scan_samples(scan)
    assert [(sample.metric, sample.labels["path"]) for sample in samples] == [
        ("dir.bytes", str(root)),
        ("dir.bytes", f"{root}/a%2Cb=c"),
        ("dir.scan_complete", str(root)),
    ]
    assert samples[-1].value == 1.0
    assert all(sample.unit == "B" for sample in samples[:2])
    # A series key of such a path parses back to the same label.
    key = series_key(samples[1].labels)
    assert labels_of(key) == samples[1].labels
    partial = DirScan(path=str(root), bytes=10, stopped_by=FILE_BUDGET)
    assert scan_samples(partial)[-1].value == 0.0
    assert label_path("/srv/caf\udce9") == "/srv/caf\\xe9"


def test_due_paths_after_watch_every():
    settings = DiskSettings(watch=["/a", "/b", "/c"], watch_every=300.0)
    last = {"/a": 1000.0, "/b": 1000.0 - 280.0}
    assert due_paths(settings, last, 1000.0 + 10.0) == ["/b", "/c"]


def test_watcher_scans_again_every_watch_every(tmp_path):
    root = tmp_path / "tree"
    write_file(root / "sub" / "data", 100_000)
    watcher = DiskWatcher(DiskSettings(watch=[str(root)], watch_every=0.5))
    watcher.start()
    try:
        first = wait_for_samples(watcher)
        write_file(root / "sub" / "more", 400_000)
        second = wait_for_samples(watcher)
        assert watcher.samples() == []
    finally:
        watcher.stop()
    before = {sample.labels["path"]: sample.value for sample in first if sample.metric == "dir.bytes"}
    after = {sample.labels["path"]: sample.value for sample in second if sample.metric == "dir.bytes"}
    assert after[str(root / "sub")] - before[str(root / "sub")] >= 400_000


def test_watcher_nested_paths_one_value_each(tmp_path):
    root = tmp_path / "var"
    write_file(root / "log" / "syslog", 300_000)
    write_file(root / "lib" / "data", 100_000)
    watcher = DiskWatcher(DiskSettings(watch=[str(root), str(root / "log")]))
    watcher.scan_paths([str(root), str(root / "log")])
    samples = watcher.samples()
    keys = [(sample.metric, sample.labels["path"]) for sample in samples]
    assert len(keys) == len(set(keys))
    assert ("dir.scan_complete", str(root / "log")) in keys
    assert ("dir.bytes", str(root / "log")) in keys


def wait_for_samples(watcher: DiskWatcher, timeout: float = 10.0) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = watcher.samples()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"no scan finished within {timeout:g}s")


def make_many_links(folder: Path, count: int) -> None:
    """Make `count` hard links to one empty file, 1000 per directory: many entries that take no space."""
    folder.mkdir(parents=True)
    target = str(folder / "file")
    open(target, "w").close()
    # Plain strings: pathlib objects would make this loop several times slower.
    for index in range(count):
        directory = f"{folder}/d{index // 1000}"
        if index % 1000 == 0:
            os.mkdir(directory)
        os.link(target, f"{directory}/l{index}")


# --- the breakdown over stored scans -----------------------------------------------------------


def write_scan(store, ts: float, root: str, total: float, subdirectories: dict[str, float],
               complete: bool = True) -> None:
    scan = DirScan(path=root, bytes=int(total), subdirectories=list(subdirectories.items()),
                   stopped_by=None if complete else FILE_BUDGET)
    with store.transaction():
        store.mark_host_seen("test-host", ts, 60.0, "test")
        store.write_samples("test-host", ts, scan_samples(scan))


def test_breakdown_growth_and_new_subdirectory(siq):
    store = siq.store()
    now = time.time()
    write_scan(store, now - 5 * HOUR, "/var/log", 10 * GB,
               {"/var/log/journal": 4 * GB, "/var/log/nginx": 3 * GB, "/var/log/apt": 1 * GB})
    write_scan(store, now - 1 * HOUR, "/var/log", 20 * GB,
               {"/var/log/journal": 13 * GB, "/var/log/nginx": 3 * GB, "/var/log/apt": 1 * GB})
    write_scan(store, now - 60, "/var/log", 30 * GB,
               {"/var/log/journal": 14 * GB, "/var/log/new-app": 9 * GB, "/var/log/nginx": 3 * GB})

    [entry] = hostview.watched_paths(store, "test-host", now)
    assert entry["path"] == "/var/log"
    assert entry["bytes"] == 30 * GB
    assert entry["complete"] is True
    assert entry["baseline_complete"] is True
    assert entry["growth_bytes"] == 20 * GB
    assert entry["growth_since"] == pytest.approx(now - 5 * HOUR)
    rows = [(sub["path"], sub["growth_bytes"], sub["at_least"]) for sub in entry["subdirectories"]]
    # apt dropped out of the kept list. new-app was not kept 5 hours ago, so it was at most
    # 1 GB (the smallest kept then) and grew at least 8 GB.
    assert rows == [("/var/log/journal", 10 * GB, False), ("/var/log/new-app", 8 * GB, True),
                    ("/var/log/nginx", 0.0, False)]

    [short] = hostview.watched_paths(store, "test-host", now, since=30 * 60)
    assert short["growth_bytes"] is None
    assert all(sub["growth_bytes"] is None for sub in short["subdirectories"])

    # /var/log is watched too; its own scan a round later leaves it under /var.
    write_scan(store, now - 50, "/var", 40 * GB, {"/var/log": 30 * GB, "/var/lib": 9 * GB})
    write_scan(store, now - 40, "/var/log", 30.5 * GB, {"/var/log/journal": 14.5 * GB})
    nested = {entry["path"]: entry for entry in hostview.watched_paths(store, "test-host", now)}
    assert [sub["path"] for sub in nested["/var"]["subdirectories"]] == ["/var/log", "/var/lib"]
    assert nested["/var"]["subdirectories"][0]["bytes"] == 30.5 * GB
    store.close()


def test_breakdown_reads_rollups_and_partial_scans(siq):
    store = siq.store()
    now = time.time()
    write_scan(store, now - 4 * HOUR, "/srv", 5 * GB, {"/srv/a": 2 * GB})
    write_scan(store, now - 30, "/srv", 6 * GB, {"/srv/a": 2.5 * GB}, complete=False)
    with store.transaction():
        while store.roll_up("test-host", now - 2 * HOUR, 300.0, 500) is not None:
            pass
        store.delete_samples_before("test-host", now - 2 * HOUR, 1000)
    assert store.series_samples("test-host", "dir.bytes", now - 5 * HOUR)["path=/srv"] == [(now - 30, 6 * GB)]

    [entry] = hostview.watched_paths(store, "test-host", now)
    assert entry["complete"] is False
    assert entry["baseline_complete"] is True
    assert entry["growth_bytes"] == 1 * GB
    assert entry["subdirectories"][0]["growth_bytes"] == 0.5 * GB
    assert entry["growth_since"] <= now - 4 * HOUR
    store.close()


# --- config -----------------------------------------------------------------------------------


@pytest.mark.parametrize("disks, message", [
    ('watch = ["var/log"]', "disks.watch: 'var/log' is not an absolute path"),
    ("watch = [42]", "disks.watch: expected a list of absolute directory paths, found a number (42)"),
    ('watch = "/var/log"', "disks.watch: expected a list of absolute directory paths, got a string"),
    ('watch = ["/var/log", "/var/log/"]', "disks.watch: '/var/log/' is listed twice"),
    ('watch_every = "10s"', "disks.watch_every: must be at least 30s, got '10s'"),
    ('watch_budget = "10ms"', "disks.watch_budget: must be at least 100ms"),
    ('watch_every = "1m"\nwatch_budget = "2m"', "disks.watch_budget: must not be longer than watch_every (1m)"),
    ("watch_max_files = 0", "disks.watch_max_files: must be at least 1, got 0"),
    ("watch_top = -1", "disks.watch_top: must be 0 or more, got -1"),
])
def test_config_rejects_bad_watch(siq, disks, message):
    siq.write_config(f"[disks]\n{disks}\n")
    result = siq.siqctl("config", "check")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert f"{siq.config_path}: {message}" in result.stderr


def test_config_watch_settings_and_missing_path(siq, tmp_path):
    siq.write_config(f'[disks]\nwatch = ["{tmp_path}/", "{tmp_path}/later"]\nwatch_every = "2m"\n'
                     'watch_budget = "3s"\nwatch_max_files = 5000\nwatch_top = 0\n')
    result = siq.siqctl("config", "check", "--json")
    assert result.returncode == 0, result.stderr
    disks = json.loads(result.stdout)["settings"]["disks"]
    assert disks["watch"] == [str(tmp_path), f"{tmp_path}/later"]
    assert (disks["watch_every"], disks["watch_budget"]) == ("2m", "3s")
    assert (disks["watch_max_files"], disks["watch_top"]) == (5000, 0)
    assert f"warning: {siq.config_path}: disks.watch: {tmp_path}/later does not exist" in result.stderr


def test_rule_on_scan_metrics_is_valid(siq):
    siq.write_config('[[rule]]\nname = "log-partial"\nmetric = "dir.scan_complete"\nbelow = 1\n'
                     'labels = { path = "/var/log" }\n'
                     '[[rule]]\nname = "log-big"\nmetric = "dir.bytes"\nabove = 20e9\nfor = "15m"\n')
    result = siq.siqctl("config", "check")
    assert result.returncode == 0, result.stderr


def test_dir_rule_for_window_spans_scans(store_url):
    from siqd.collect.host import Sample
    from siqd.config import parse_config
    from siqd.daemon import Daemon
    from siqd.store import open_store

    text = {"host": "db-1", "interval": "10s",
            "disks": {"watch": ["/var/log"], "watch_every": "5m"},
            "rule": [{"name": "log-big", "metric": "dir.bytes", "above": 20e9, "for": "15m",
                      "labels": {"path": "/var/log"}}]}
    store = open_store(store_url)
    clock = [1_000_000.0]
    daemon = Daemon(parse_config(text, "test"), store, clock=lambda: clock[0])
    try:
        # Rounds every 10 s; a scan's reading arrives in every 30th round.
        for round_number in range(100):
            samples = [Sample("dir.bytes", {"path": "/var/log"}, 25e9)] if round_number % 30 == 0 else []
            with store.transaction():
                daemon.evaluate_rules(samples, clock[0])
            if round_number < 90:
                assert store.list_incidents() == [], f"opened before 15 minutes, in round {round_number}"
            clock[0] += 10.0
        [incident] = store.list_incidents()
        assert incident.rule == "log-big"
        assert incident.started_at == 1_000_000.0
    finally:
        store.close()


def test_starter_config_documents_watch(siq):
    from siqd.config import starter_config_text

    text = starter_config_text("web-1", siq.store_url)
    for key in ("watch = ", "watch_every", "watch_budget", "watch_max_files", "watch_top"):
        assert f"#   {key}" in text


# --- siqd and siqctl --------------------------------------------------------------------------


def start_siqd(siq, log: Path) -> subprocess.Popen:
    with open(log, "w") as handle:
        return subprocess.Popen([str(BIN / "siqd"), "run"], env=siq.env(), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=handle)


def stop_siqd(daemon: subprocess.Popen) -> None:
    if daemon.poll() is None:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(15)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait(5)


def wait_until(condition, timeout: float, description: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {description}")


def scans_of(siq, path: str) -> list[tuple[float, float]]:
    """Return (ts, dir.scan_complete) of every stored scan of a watched path."""
    store = siq.store()
    try:
        return store.series_samples("test-host", "dir.scan_complete", 0.0).get(f"path={path}", [])
    finally:
        store.close()


def test_siqd_shows_what_grew(siq, tmp_path):
    with mounted_tmpfs(tmp_path / "watched", "128m") as watched:
        write_file(watched / "logs" / "app.log", 10_000)
        write_file(watched / "db" / "data", 1 * MB)
        write_file(watched / "cache" / "blob", 2 * MB)
        siq.write_config(f'interval = "1s"\n[disks]\nwatch = ["{watched}"]\nwatch_every = "30s"\n')
        log = tmp_path / "siqd.log"
        daemon = start_siqd(siq, log)
        try:
            wait_until(lambda: scans_of(siq, str(watched)), 20, "the first scan")
            write_file(watched / "logs" / "burst.log", 50 * MB)
            wait_until(lambda: len(scans_of(siq, str(watched))) >= 2, 60, "the second scan, 30s after the first")

            data = siq.siqctl_json("host", "show", "test-host")
            [entry] = data["breakdown"]
            assert entry["path"] == str(watched)
            assert entry["complete"] is True
            top = entry["subdirectories"][0]
            assert top["path"] == str(watched / "logs")
            assert 50 * MB <= top["growth_bytes"] <= 50 * MB + 2 * 4096
            assert abs(entry["bytes"] - du_bytes(watched)) <= 4096
            assert not any(chart["metric"].startswith("dir.") for chart in data["charts"])

            text = siq.siqctl("host", "show", "test-host", check=True).stdout
            section = text.split("Disk usage of watched paths (growth over 6h):\n")[1].splitlines()
            assert section[0].split() == ["PATH", "SIZE", "GROWTH", "NOTE"]
            assert section[1].split()[0] == str(watched)
            assert section[2].split()[0] == str(watched / "logs")
            assert "+50.0 MB" in section[2]

            disk = siq.siqctl("disk", "test-host", check=True).stdout
            rows = [line.split()[0] for line in disk.splitlines()[2:]]
            assert rows == [str(watched), str(watched / "logs"), str(watched / "cache"), str(watched / "db")]

            # A reload that adds a path scans at once instead of after watch_every.
            write_file(tmp_path / "second" / "part" / "data", 300_000)
            siq.write_config(f'interval = "1s"\n[disks]\nwatch = ["{watched}", "{tmp_path / "second"}"]\n'
                             'watch_every = "30s"\n')
            daemon.send_signal(signal.SIGHUP)
            wait_until(lambda: scans_of(siq, str(tmp_path / "second")), 10, "a scan of the path added by reload")
            only = siq.siqctl_json("disk", "test-host", "--path", f"{tmp_path}/second/")
            assert [entry["path"] for entry in only["paths"]] == [str(tmp_path / "second")]
        finally:
            stop_siqd(daemon)
        assert "Traceback" not in log.read_text()


def test_partial_scan_keeps_rounds_on_time(siq, tmp_path, tmpfs):
    make_many_links(tmpfs / "many", 300_000)
    # Half the time a full scan takes on this machine, so siqd's scans run out of time
    # while rounds are due.
    started = time.monotonic()
    assert scan_directory(str(tmpfs / "many"), 60.0, NO_LIMIT, 10).complete
    budget_ms = max(int((time.monotonic() - started) * 500), 300)
    config = '[disks]\nwatch = ["{path}"]\nwatch_every = "30s"\nwatch_budget = "{budget}ms"\n'
    siq.write_config('interval = "1s"\n' + config.format(path=tmpfs / "many", budget=budget_ms))
    log = tmp_path / "siqd.log"
    daemon = start_siqd(siq, log)
    try:
        wait_until(lambda: scans_of(siq, str(tmpfs / "many")), 20, "the first scan")
        # A changed budget makes the reload scan again, and again the scan runs out of time.
        siq.write_config('interval = "1s"\n' + config.format(path=tmpfs / "many", budget=budget_ms + 50))
        daemon.send_signal(signal.SIGHUP)
        scans = wait_until(lambda: len(scans_of(siq, str(tmpfs / "many"))) >= 2 and scans_of(siq, str(tmpfs / "many")),
                           20, "the scan after the reload")
        time.sleep(3)
    finally:
        stop_siqd(daemon)

    assert [complete for _, complete in scans] == [0.0, 0.0]
    data = siq.siqctl_json("disk", "test-host")
    assert data["paths"][0]["complete"] is False
    assert "partial" in siq.siqctl("disk", "test-host", check=True).stdout

    lines = log.read_text().splitlines()
    warnings = [line for line in lines if "event=dir_scan_partial" in line]
    assert len(warnings) == 1, "a repeated partial scan of one path is not logged again within the hour"
    assert f"path={tmpfs / 'many'}" in warnings[0]
    assert f'budget="watch_budget ({budget_ms / 1000:g}s)"' in warnings[0]
    files = int(warnings[0].split(" files=")[1].split()[0])
    assert 0 < files < 300_300
    assert "raise watch_budget or watch_max_files, or watch a narrower path" in warnings[0]

    store = siq.store()
    rounds = sorted(ts for ts, _ in store.series_samples("test-host", "procs.count", 0.0)[""])
    store.close()
    gaps = [later - earlier for earlier, later in zip(rounds, rounds[1:])]
    assert len(gaps) >= 4
    assert max(gaps) < 1.5, f"rounds were delayed: gaps {gaps}"


def test_once_scans_only_when_due(siq, tmp_path):
    write_file(tmp_path / "tree" / "sub" / "data", 100_000)
    siq.write_config(f'[disks]\nwatch = ["{tmp_path / "tree"}"]\nwatch_every = "1h"\n')
    for _ in range(2):
        result = siq.siqd("run", "--once")
        assert result.returncode == 0, result.stderr
    assert len(scans_of(siq, str(tmp_path / "tree"))) == 1
    [entry] = siq.siqctl_json("disk", "test-host")["paths"]
    assert entry["subdirectories"][0]["path"] == str(tmp_path / "tree" / "sub")


def test_disk_command_errors(siq, tmp_path):
    result = siq.siqctl("disk", "nobody")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: host 'nobody' has not reported to this store; " \
                                    "list hosts with 'siqctl hosts'"
    assert siq.siqd("run", "--once").returncode == 0
    plain = siq.siqctl("disk", "test-host", check=True)
    assert "reports no watched paths" in plain.stdout
    assert siq.siqctl_json("disk", "test-host")["paths"] == []
    assert "breakdown" not in siq.siqctl_json("host", "show", "test-host")
    missing = siq.siqctl("disk", "test-host", "--path", "/var/log")
    assert missing.returncode == 1
    assert "/var/log is not a watched path of test-host (watched: none)" in missing.stderr
    bad = siq.siqctl("disk", "test-host", "--since", "soon")
    assert bad.returncode == 2
    assert "invalid --since" in bad.stderr
