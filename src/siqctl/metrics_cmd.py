"""`siqctl metrics HOST METRIC`: the samples of a metric's series, as a table, JSON or CSV."""

import time

import typer

from siqctl import context, render
from siqctl.context import USAGE, fail, store_errors


@store_errors
def metrics(
    host: str = typer.Argument(..., metavar="HOST", help="host name"),
    metric: str = typer.Argument(..., metavar="METRIC", help="metric name, e.g. disk.used_percent"),
    label: list[str] = typer.Option([], "--label", help="only series with this label, KEY=VALUE; repeatable"),
    since: str = typer.Option("6h", "--since", help="how far back, e.g. 30m, 6h, 2d"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
    as_csv: bool = typer.Option(False, "--csv", help="print CSV: series,time,value"),
):
    """Print the samples of a metric on a host, one row per sample.

    Example: siqctl metrics db-1 disk.used_percent --label mount=/ --since 6h --csv
    """
    from siqd.durations import DurationError, parse_duration
    from siqd.metrics import CATALOG, format_value
    from siqd.store.base import labels_of

    if metric not in CATALOG:
        fail(f"unknown metric {metric!r}; known metrics: {', '.join(sorted(CATALOG))}", USAGE)
    if as_json and as_csv:
        fail("give --json or --csv, not both", USAGE)
    label_filter = {}
    for item in label:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"invalid --label {item!r}; expected KEY=VALUE such as mount=/", USAGE)
        label_filter[key] = value
    try:
        window = parse_duration(since)
    except DurationError as error:
        fail(f"invalid --since: {error}", USAGE)
    if window <= 0:
        fail(f"--since {since} is empty; give a window such as 30m or 6h", USAGE)
    now = time.time()
    start = now - window
    store = context.store(create=False)
    # Past the raw retention only 5-minute roll-ups remain, so longer windows use them.
    rolled = window > context.config().retention_raw
    if store.get_host(host) is None:
        fail(f"host {host!r} has not reported to this store; list hosts with 'siqctl hosts'")
    found = {}
    source = _five_minute_buckets(store, host, metric, start, now) if rolled else \
        store.series_samples(host, metric, start)
    for labels_text, points in source.items():
        labels = labels_of(labels_text)
        if all(labels.get(key) == value for key, value in label_filter.items()):
            found[labels_text] = points
    # A plugin's performance data carries its own unit per series; the catalog has none for it.
    units = store.series_units(host, metric)
    unit = CATALOG[metric].unit
    if as_json:
        typer.echo(render.to_json([
            {"host": host, "metric": metric, "labels": labels_of(key), "unit": units.get(key) or unit,
             "resolution": "5m" if rolled else "raw", "samples": [_point_data(point) for point in points]}
            for key, points in found.items()
        ]))
        return
    if as_csv:
        import csv
        import sys

        writer = csv.writer(sys.stdout)
        writer.writerow(["series", "time", "min", "avg", "max"] if rolled else ["series", "time", "value"])
        for key, points in found.items():
            for point in points:
                writer.writerow([key, render.iso_utc(point[0]), *point[1:]])
        return
    if not found:
        typer.echo(f"No samples of {metric} on {host} in the last {since}.")
        return
    for key, points in found.items():
        what = f"{len(points)} 5-minute roll-ups (min / avg / max)" if rolled else f"{len(points)} samples"
        typer.echo(f"{metric} on {host}" + (f" ({key})" if key else "") + f", {what}:")
        for point in points:
            values = " / ".join(format_value(value, units.get(key) or unit) for value in point[1:])
            typer.echo(f"  {render.local_time(point[0])}  {values}")


def _five_minute_buckets(store, host: str, metric: str, start: float, now: float) -> dict[str, list[tuple]]:
    """Return (bucket start, min, avg, max) per series: roll-ups, then the newest minutes from raw samples."""
    from siqd.hostview import ROLLUP_SECONDS, history

    window = history(store, host, start, now, int((now - start) // ROLLUP_SECONDS), (metric,))
    return {labels: [(window["start"] + index * window["step"], *bucket)
                     for index, bucket in enumerate(buckets) if bucket is not None]
            for (_, labels), buckets in window["series"].items()}


def _point_data(point: tuple) -> dict:
    if len(point) == 2:
        return {"at": render.iso_utc(point[0]), "value": point[1]}
    return {"at": render.iso_utc(point[0]), "min": point[1], "avg": point[2], "max": point[3]}


def register(app: typer.Typer) -> None:
    app.command("metrics")(metrics)
