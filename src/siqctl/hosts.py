"""Host commands: `siqctl hosts` lists every host; `siqctl host show NAME` looks at one."""

import time

import typer

from siqctl import context, render
from siqctl.context import USAGE, fail, store_errors

host_app = typer.Typer(help="Look at one host: current values, history, disks and incidents.",
                       no_args_is_help=True)


@store_errors
def hosts(as_json: bool = typer.Option(False, "--json", help="print JSON")):
    """List the hosts whose siqd reports to this store, with when each was last seen.

    Example: siqctl hosts
    """
    from siqd import hostview

    now = time.time()
    config = context.config()
    store = context.store(create=False)
    found = store.list_hosts()
    states = {host["name"]: hostview.host_state(host, now, hostview.stale_after(host, config.stale_after,
                                                                                config.interval))
              for host in found}
    current = {host["name"]: hostview.now_values(hostview.current_samples(store, host)) for host in found}
    if as_json:
        typer.echo(render.to_json([
            {"name": host["name"], "state": states[host["name"]], "last_seen": render.iso_utc(host["last_seen"]),
             "first_seen": render.iso_utc(host["first_seen"]), "interval_seconds": host["interval"],
             "version": host["version"], "open_incidents": host["open_incidents"], **current[host["name"]]}
            for host in found
        ]))
        return
    if not found:
        typer.echo("No host has reported yet; start 'siqd run' on each host.")
        return
    from siqd.metrics import format_value

    rows = []
    for host in found:
        values = current[host["name"]]
        disk = values["worst_disk"]
        rows.append((host["name"], states[host["name"]], render.ago(host["last_seen"], now), host["open_incidents"],
                     format_value(values["cpu_percent"], "%"), format_value(values["memory_used_percent"], "%"),
                     f"{format_value(disk['used_percent'], '%')} {disk['mount']}" if disk else "-"))
    typer.echo(render.table(rows, headers=("HOST", "STATE", "LAST SEEN", "OPEN", "CPU", "MEMORY", "WORST DISK")))


@host_app.command("show")
@store_errors
def show(
    name: str = typer.Argument(..., metavar="NAME", help="host name, as 'siqctl hosts' lists it"),
    since: str = typer.Option("24h", "--since", help="how far back the charts and recent incidents go, e.g. 6h, 7d"),
    width: int = typer.Option(0, "--width", help="chart width in characters (default: fit the terminal, at most 48)"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
):
    """Show one host: current values, a sparkline per metric, each disk's growth and forecast, and incidents.

    Example: siqctl host show db-1 --since 6h
    """
    import shutil

    from siqd import hostview

    window = context.window_seconds(since)
    if width < 0 or width == 1:
        fail(f"invalid --width {width}; give at least 2 characters", USAGE)
    columns = width or max(8, min(48, shutil.get_terminal_size().columns - 60))
    config = context.config()
    store = context.store(create=False)
    now = time.time()
    view = hostview.host_view(store, name, now, window, columns, config.stale_after, config.interval)
    if view is None:
        fail(f"host {name!r} has not reported to this store; list hosts with 'siqctl hosts'")
    if as_json:
        typer.echo(render.to_json(host_data(view, config.dashboard_url)))
    else:
        typer.echo(host_text(view, since, now, config.dashboard_url))


def host_data(view: dict, dashboard_url: str | None) -> dict:
    """Return a host view as JSON-ready data."""
    host, window = view["host"], view["window"]

    def bucket(index: int, values) -> dict | None:
        if values is None:
            return None
        return {"at": render.iso_utc(window["start"] + index * window["step"]),
                "min": values[0], "avg": values[1], "max": values[2]}

    return {
        "name": host["name"], "state": view["state"], "last_seen": render.iso_utc(host["last_seen"]),
        "first_seen": render.iso_utc(host["first_seen"]), "interval_seconds": host["interval"],
        "version": host["version"], **view["now"],
        "window": {"start": render.iso_utc(window["start"]), "end": render.iso_utc(window["end"]),
                   "step_seconds": window["step"]},
        "charts": [{"metric": chart["metric"], "labels": chart["labels"], "unit": chart["unit"], "now": chart["now"],
                    "buckets": [bucket(index, values) for index, values in enumerate(chart["buckets"])]}
                   for chart in view["charts"]],
        "mounts": view["mounts"],
        "open_incidents": [render.incident_data(incident, dashboard_url) for incident in view["open_incidents"]],
        "recent_incidents": [render.incident_data(incident, dashboard_url)
                             for incident in view["recent_incidents"]],
        "events": [{"at": render.iso_utc(event["ts"]), "kind": event["kind"], "text": event["text"]}
                   for event in view["events"]],
        **_breakdown_data(view),
    }


def _breakdown_data(view: dict) -> dict:
    """Return {"breakdown": …} for a host with watched paths, else nothing, so the key appears only then."""
    from siqctl.disk_cmd import breakdown_data

    return {"breakdown": breakdown_data(view["breakdown"])} if view.get("breakdown") else {}


def host_text(view: dict, since: str, now: float, dashboard_url: str | None) -> str:
    """Return the `host show` view for a terminal."""
    from siqd import hostview
    from siqd.durations import format_duration
    from siqd.metrics import format_value

    host, values, window = view["host"], view["now"], view["window"]
    disk = values["worst_disk"]
    lines = [
        f"{host['name']}: {view['state']}, last seen {render.ago(host['last_seen'], now)}, "
        f"siqd {host['version'] or '?'} every {format_duration(host['interval'] or 0)}",
        ("Now: " if view["state"] != "silent" else f"Last readings ({render.ago(host['last_seen'], now)}): ")
        + "  ".join(f"{label} {text}" for label, text in (
            ("cpu", format_value(values["cpu_percent"], "%")),
            ("memory", format_value(values["memory_used_percent"], "%")),
            ("swap", format_value(values["swap_used_percent"], "%")),
            ("load/core", format_value(values["load_per_core_1m"], "")),
            ("worst disk", f"{format_value(disk['used_percent'], '%')} {disk['mount']}" if disk else "-"),
        )),
        "",
        f"Last {since}, one mark per {format_duration(window['step'])} (average; MAX is the highest reading):",
    ]
    charts = view["charts"]
    names = [chart["metric"] + "".join(f" {key}={value}" for key, value in sorted(chart["labels"].items()))
             for chart in charts]
    name_width = max((len(name) for name in names), default=0)
    for name, chart in zip(names, charts):
        highs = [bucket[2] for bucket in chart["buckets"] if bucket is not None]
        peak = format_value(max(highs), chart["unit"]) if highs else "-"
        lines.append(f"  {name:<{name_width}}  {render.sparkline(chart['buckets'], chart['unit'], chart['metric'])}  "
                     f"now {format_value(chart['now'], chart['unit'])}, max {peak}")
    if not charts:
        lines.append("  no samples in this window")

    lines += ["", "Disks (growth over the last 6h; 'full in' at that pace):"]
    rows = [hostview.mount_cells(mount) for mount in view["mounts"]]
    if rows:
        table = render.table(rows, headers=("MOUNT", "USED", "USED SIZE", "6H GROWTH", "FULL IN", "INODES"))
        lines += ["  " + line for line in table.splitlines()]
    else:
        lines.append("  no mounts reported")

    if view.get("breakdown"):
        from siqctl.disk_cmd import HOST_SHOW_ROWS, breakdown_lines
        from siqd.hostview import GROWTH_WINDOW

        lines += ["", "Disk usage of watched paths (growth over 6h):"]
        lines += breakdown_lines(view["breakdown"], now, GROWTH_WINDOW, limit=HOST_SHOW_ROWS, host=host["name"])

    lines += ["", "Open incidents:"]
    lines += [_incident_line(incident, now) for incident in view["open_incidents"]] or ["  none"]
    lines += ["", f"Closed in the last {since}:"]
    for incident in view["recent_incidents"]:
        lines.append(_incident_line(incident, now))
        if incident.resolution:
            lines.append(f"      {incident.status} by {incident.closed_by}: {render.shorten(incident.resolution, 100)}")
    if not view["recent_incidents"]:
        lines.append("  none")
    if view["events"]:
        lines += ["", "Host events:"]
        lines += [f"  {render.local_time(event['ts'])}  {event['text']}" for event in view["events"]]
    if dashboard_url:
        lines += ["", f"Dashboard: {dashboard_url}/hosts/{host['name']}"]
    return "\n".join(lines)


def _incident_line(incident, now: float) -> str:
    when = f"opened {render.ago(incident.opened_at, now)}" if incident.closed_at is None else \
        f"{incident.status} {render.ago(incident.closed_at, now)}"
    return (f"  #{incident.id} {incident.severity:<8} {render.shorten(render.summary_text(incident), 50):<50} "
            f"{incident.rule}, {when}")


def register(app: typer.Typer) -> None:
    app.command("hosts")(hosts)
    app.add_typer(host_app, name="host")
