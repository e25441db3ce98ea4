"""A host's state now and its history over a window.

This is the data behind `siqctl hosts`, `siqctl host show`, `siqctl top` and
the dashboard's host pages, so each of them shows the same figures. It reads
5-minute roll-ups for long windows and raw samples for the newest minutes,
so a 30-day window costs a few thousand rows, not millions.
"""

import posixpath

from siqd.metrics import CATALOG
from siqd.rules import forecast_eta
from siqd.store.base import Store, labels_of

ROLLUP_SECONDS = 300.0
GROWTH_WINDOW = 6 * 3600.0
# A mount's "full in" needs this much history; under SHORT_HISTORY it is fitted to raw samples.
MIN_FORECAST_SPAN = 600.0
SHORT_HISTORY = 3600.0
# Series not written in this many of the host's intervals are gone (an unmounted disk).
CURRENT_INTERVALS = 2.5
# Metrics the mount table shows instead of a chart of their own.
MOUNT_METRICS = ("disk.used_percent", "disk.used_bytes", "disk.inodes_used_percent")
HIDDEN_METRICS = ("uptime.seconds", "host.silent_seconds")
# Metrics of watched directories, which the breakdown shows instead of a chart per directory.
DIR_METRICS = ("dir.bytes", "dir.scan_complete")


def stale_after(host: dict, configured: float | None, default_interval: float) -> float:
    """Return how long a host may stay quiet: the config's stale_after, or 3 of its intervals, at least 60 s."""
    if configured is not None:
        return configured
    return max(3 * (host["interval"] or default_interval), 60.0)


def host_state(host: dict, now: float, limit: float) -> str:
    return "silent" if now - host["last_seen"] > limit else "up"


def current_samples(store: Store, host: dict) -> dict[tuple[str, str], tuple[float, float]]:
    """Return (ts, value) of the newest sample of each series the host still reports, keyed by (metric, labels)."""
    interval = host["interval"] or 10.0
    newest = host["last_seen"] - CURRENT_INTERVALS * interval
    return {(row["metric"], row["labels"]): (row["ts"], row["value"])
            for row in store.latest_samples(host["name"]) if row["ts"] >= newest}


def now_values(current: dict[tuple[str, str], tuple[float, float]]) -> dict:
    """Return the headline readings of a host: cpu, memory, swap, load per core and the fullest disk."""
    def single(metric: str) -> float | None:
        found = current.get((metric, ""))
        return found[1] if found else None

    disks = [(labels_of(labels)["mount"], value) for (metric, labels), (_, value) in current.items()
             if metric == "disk.used_percent"]
    worst = max(disks, key=lambda disk: disk[1]) if disks else None
    return {
        "cpu_percent": single("cpu.percent"),
        "memory_used_percent": single("memory.used_percent"),
        "swap_used_percent": single("swap.used_percent"),
        "load_per_core_1m": single("load.per_core_1m"),
        "worst_disk": {"mount": worst[0], "used_percent": worst[1]} if worst else None,
    }


def history(store: Store, host: str, start: float, end: float, columns: int, metrics: tuple[str, ...] = ()) -> dict:
    """Split [start, end) into `columns` equal buckets and return the buckets of each series of a host.

    The result has start, step and series: {(metric, labels): buckets}. Each bucket is (low, mean, high) or None where nothing was recorded.
    Buckets at least as wide as a roll-up read roll-ups up to where the
    daemon has rolled them, then raw samples. Narrower buckets read raw samples only.
    """
    step = max((end - start) / columns, 1.0)
    if step >= ROLLUP_SECONDS:
        # Columns start on roll-up bucket edges, so no roll-up straddles two columns.
        step -= step % ROLLUP_SECONDS
        start = end + (-end) % ROLLUP_SECONDS - step * columns
        rolled = store.rolled_until(host)
        raw_from = min(max(rolled, start), end) if rolled is not None else start
    else:
        raw_from = start
    found: dict[tuple[str, str], list] = {}
    for row in store.host_history(host, start, end, step, raw_from, metrics):
        index = int(row["idx"])
        if not 0 <= index < columns:
            continue
        buckets = found.setdefault((row["metric"], row["labels"]), [None] * columns)
        previous = buckets[index]
        bucket = (row["low"], row["mean"], row["high"])
        if previous is not None:  # a column where roll-ups end and raw samples begin
            bucket = (min(previous[0], bucket[0]), (previous[1] + bucket[1]) / 2, max(previous[2], bucket[2]))
        buckets[index] = bucket
    return {"start": start, "step": step, "series": found}


def mount_table(store: Store, host: str, now: float, current: dict) -> list[dict]:
    """Return each mount's fill, its growth over the last 6 hours and when it will be full at that pace."""
    step_count = int(GROWTH_WINDOW // ROLLUP_SECONDS)
    window = history(store, host, now - GROWTH_WINDOW, now, step_count, ("disk.used_percent", "disk.used_bytes"))
    mounts = []
    for (metric, labels), (ts, value) in sorted(current.items()):
        if metric != "disk.used_percent":
            continue
        mount = labels_of(labels)["mount"]
        used_bytes = current.get(("disk.used_bytes", labels))
        inodes = current.get(("disk.inodes_used_percent", labels))
        percent_points = _points(window, "disk.used_percent", labels)
        bytes_points = _points(window, "disk.used_bytes", labels)
        growth_points = value - percent_points[0][1] if percent_points else None
        growth_bytes = used_bytes[1] - bytes_points[0][1] if used_bytes and bytes_points else None
        eta = _full_in(store, host, labels, percent_points + [(ts, value)], now)
        mounts.append({
            "mount": mount,
            "used_percent": value,
            "used_bytes": used_bytes[1] if used_bytes else None,
            "inodes_used_percent": inodes[1] if inodes else None,
            "growth_percent_points": growth_points,
            "growth_bytes": growth_bytes,
            "full_in_seconds": eta if eta is not None and eta != float("inf") else None,
        })
    return mounts


def _full_in(store: Store, host: str, labels: str, points: list[tuple[float, float]], now: float) -> float | None:
    """Return seconds until a mount is full at the pace of the last 6 hours, or of all its history if shorter.

    A host that has reported for less than an hour has too few 5-minute
    buckets for a fit, so its raw samples are used instead.
    """
    span = now - points[0][0] if points else 0.0
    if span < SHORT_HISTORY:
        raw = store.series_samples(host, "disk.used_percent", now - SHORT_HISTORY).get(labels, [])
        if raw:
            points, span = raw, now - raw[0][0]
    if span < MIN_FORECAST_SPAN:
        return None
    eta = forecast_eta(points, 100.0, now, min(span, GROWTH_WINDOW))
    return eta if eta is not None and eta != float("inf") else None


def mount_cells(mount: dict) -> tuple[str, str, str, str, str, str]:
    """Return a mount-table row as text: mount, used %, used size, 6-hour growth, full in, inodes %."""
    from siqd.metrics import format_bytes, format_value

    growth = "-"
    if mount["growth_bytes"] is not None:
        sign = "+" if mount["growth_bytes"] >= 0 else "-"
        growth = f"{sign}{format_bytes(abs(mount['growth_bytes']))}"
    elif mount["growth_percent_points"] is not None:
        growth = f"{mount['growth_percent_points']:+.1f} points"
    return (
        mount["mount"],
        format_value(mount["used_percent"], "%"),
        format_bytes(mount["used_bytes"]) if mount["used_bytes"] is not None else "-",
        growth,
        _rounded_duration(mount["full_in_seconds"]),
        format_value(mount["inodes_used_percent"], "%"),
    )


def _rounded_duration(seconds: float | None) -> str:
    """Format a forecast to the minute once it is an hour or more away: "2h", not "2h11s"."""
    from siqd.durations import format_duration

    if seconds is None:
        return "-"
    return format_duration(round(seconds / 60) * 60 if seconds >= 3600 else seconds)


def _points(window: dict, metric: str, labels: str) -> list[tuple[float, float]]:
    """Return (bucket middle, mean) of one series in a history window, skipping empty buckets."""
    buckets = window["series"].get((metric, labels), [])
    start, step = window["start"], window["step"]
    return [(start + (index + 0.5) * step, bucket[1]) for index, bucket in enumerate(buckets) if bucket is not None]


def host_view(store: Store, name: str, now: float, since: float, columns: int,
              configured_stale_after: float | None, default_interval: float) -> dict | None:
    """Return everything `host show` and the host page display, or None for a host that never reported."""
    host = store.get_host(name)
    if host is None:
        return None
    current = current_samples(store, host)
    window = history(store, name, now - since, now, columns)
    charts = []
    order = {metric: position for position, metric in enumerate(CATALOG)}
    for (metric, labels), buckets in sorted(window["series"].items(),
                                            key=lambda item: (order.get(item[0][0], len(order)), item[0])):
        if metric in MOUNT_METRICS or metric in HIDDEN_METRICS or metric in DIR_METRICS:
            continue
        latest = current.get((metric, labels))
        info = CATALOG.get(metric)
        charts.append({"metric": metric, "labels": labels_of(labels), "unit": info.unit if info else "",
                       "now": latest[1] if latest else None, "buckets": buckets})
    incidents = store.host_incidents(name, now - since)
    return {
        "host": host,
        "state": host_state(host, now, stale_after(host, configured_stale_after, default_interval)),
        "now": now_values(current),
        "window": {"start": window["start"], "end": now, "step": window["step"], "columns": columns},
        "charts": charts,
        "mounts": mount_table(store, name, now, current),
        "open_incidents": [incident for incident in incidents if incident.status == "open"],
        "recent_incidents": [incident for incident in incidents if incident.status != "open"],
        "events": store.host_events(name, limit=10),
        "breakdown": watched_paths(store, name, now),
    }


def watched_paths(store: Store, host: str, now: float, since: float = GROWTH_WINDOW) -> list[dict]:
    """Return each watched path of a host with its latest size and what grew under it over the last `since` seconds.

    A path is listed while its latest scan is in the raw samples. Each item
    has path, bytes, scanned_at, complete (False when the latest scan ran out
    of its budget), growth_bytes, growth_since, baseline_complete and
    subdirectories: the ones the latest scan kept, each with path, bytes,
    growth_bytes, growth_since and at_least, largest growth first.

    Growth is the latest size minus the earliest one in the window, or None
    without an earlier scan in the window. A subdirectory that was not among
    the largest kept at that earliest scan was at most as large as the
    smallest one kept then. Its growth is counted from that size, so it is a
    lower bound, marked at_least.
    """
    # NOTE: with watch_every longer than [retention] raw, the latest scan's raw
    # samples are deleted before the next scan and its path is not listed meanwhile.
    sizes = _latest_by_path(store, host, "dir.bytes")
    scans = _latest_by_path(store, host, "dir.scan_complete")
    size_points = _window_points(store, host, "dir.bytes", now - since)
    scan_points = _window_points(store, host, "dir.scan_complete", now - since)
    found = []
    for path, (scanned_at, complete) in sorted(scans.items()):
        latest = sizes.get(path)
        if latest is None:
            continue
        points = size_points.get(path, [])
        baseline = points[0] if points and points[0][0] < latest[0] else None
        kept_then = {}
        if baseline is not None:
            for sub, sub_points in size_points.items():
                if sub != path and posixpath.dirname(sub) == path:
                    kept_then.update({sub: value for ts, value in sub_points if ts == baseline[0]})
        # The latest scan kept a subdirectory if it wrote a size for it. A subdirectory
        # that is watched itself may have a newer size from its own scan.
        subdirectories = [
            _growth(sub, size, baseline, kept_then)
            for sub, size in sizes.items()
            if sub != path and posixpath.dirname(sub) == path
            and (size[0] == latest[0] or any(ts == latest[0] for ts, _ in size_points.get(sub, [])))
        ]
        subdirectories.sort(key=lambda sub: (sub["growth_bytes"] is None, -(sub["growth_bytes"] or 0.0),
                                             -sub["bytes"]))
        baseline_scan = dict(scan_points.get(path, [])).get(baseline[0]) if baseline else None
        found.append({
            "path": path,
            "bytes": latest[1],
            "scanned_at": scanned_at,
            "complete": complete >= 1.0,
            "growth_bytes": latest[1] - baseline[1] if baseline else None,
            "growth_since": baseline[0] if baseline else None,
            "baseline_complete": baseline_scan >= 1.0 if baseline_scan is not None else None,
            "subdirectories": subdirectories,
        })
    return found


def _growth(path: str, latest: tuple[float, float], baseline: tuple[float, float] | None,
            kept_then: dict[str, float]) -> dict:
    """Return a kept subdirectory's size and growth since `baseline`, the (ts, bytes) of its parent's earliest scan.

    `kept_then` has the sizes of the subdirectories that the baseline scan kept.
    """
    entry = {"path": path, "bytes": latest[1], "growth_bytes": None, "growth_since": None, "at_least": False}
    if baseline is None:
        return entry
    then = kept_then.get(path)
    if then is None:
        # Not kept at the baseline scan, so no larger than the smallest subdirectory kept then.
        then = min(kept_then.values(), default=0.0)
        entry["at_least"] = True
    if latest[1] - then < 0 and entry["at_least"]:
        return entry  # a negative lower bound carries no information
    entry["growth_bytes"] = latest[1] - then
    entry["growth_since"] = baseline[0]
    return entry


def _latest_by_path(store: Store, host: str, metric: str) -> dict[str, tuple[float, float]]:
    """Return (ts, value) of the newest raw sample of each series of a dir.* metric, keyed by its path label."""
    return {labels_of(row["labels"]).get("path", ""): (row["ts"], row["value"])
            for row in store.latest_values(host, metric)}


def _window_points(store: Store, host: str, metric: str, start: float) -> dict[str, list[tuple[float, float]]]:
    """Return (ts, value) points of each series of a dir.* metric since `start`, keyed by path label, oldest first.

    Raw samples are used where they are kept. Before the oldest one, a
    roll-up bucket stands for the scans in it, at the bucket's start with
    their average.
    """
    raw = store.series_samples(host, metric, start)
    rolled = store.series_rollups(host, metric, start)
    found = {}
    for key in set(raw) | set(rolled):
        samples = raw.get(key, [])
        first_raw = samples[0][0] if samples else float("inf")
        older = [(bucket, mean) for bucket, _, mean, _ in rolled.get(key, []) if bucket + ROLLUP_SECONDS <= first_raw]
        found[labels_of(key).get("path", "")] = older + samples
    return found

