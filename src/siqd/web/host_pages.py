"""The hosts overview and the page of one host."""

from urllib.parse import quote

from siqd import hostview
from siqd.config import Config
from siqd.durations import DurationError, format_duration, parse_duration
from siqd.metrics import CATALOG, format_value
from siqd.store.base import Store
from siqd.timefmt import local_time
from siqd.web.charts import series_chart
from siqd.web.incident_pages import NotFound
from siqd.web.layout import ago, esc, host_href, incidents_table, page

CHART_COLUMNS = 96
WINDOWS = ("1h", "6h", "24h", "7d")
DEFAULT_WINDOW = "24h"
MIN_WINDOW, MAX_WINDOW = 600.0, 90 * 86400.0


class BadRequest(Exception):
    """A request with an invalid parameter; the message names the value and what to use instead."""


def hosts_page(store: Store, config: Config, now: float) -> str:
    """Return every host that reports to the store: up or silent, last seen, open incidents and headline values."""
    hosts = store.list_hosts()
    rows = []
    for host in hosts:
        state = hostview.host_state(host, now, hostview.stale_after(host, config.stale_after, config.interval))
        values = hostview.now_values(hostview.current_samples(store, host))
        disk = values["worst_disk"]
        worst = f"{format_value(disk['used_percent'], '%')} {disk['mount']}" if disk else "-"
        cells = [
            ("Host", f'<a href="{esc(host_href(host["name"]))}">{esc(host["name"])}</a>'),
            ("State", f'<span class="badge {state}">{state}</span>'),
            ("Last seen", ago(host["last_seen"], now)),
            ("Open incidents", str(host["open_incidents"])),
            ("CPU", esc(format_value(values["cpu_percent"], "%"))),
            ("Memory", esc(format_value(values["memory_used_percent"], "%"))),
            ("Worst disk", esc(worst)),
        ]
        rows.append("<tr>" + "".join(f'<td data-label="{label}">{content}</td>' for label, content in cells)
                    + "</tr>")
    if not rows:
        body = '<h1>Hosts</h1><p class="muted">No host has reported yet; start <code>siqd run</code> on each host.</p>'
        return page("Hosts", body, now, section="hosts")
    head = "".join(f"<th>{name}</th>" for name in ("Host", "State", "Last seen", "Open incidents", "CPU", "Memory",
                                                   "Worst disk"))
    body = (f"<h1>Hosts ({len(hosts)})</h1>"
            f'<table class="list"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>')
    return page("Hosts", body, now, section="hosts")


def window_seconds(since: str | None) -> tuple[str, float]:
    """Return the host page's window as given and in seconds; raise BadRequest for an unusable one."""
    text = since or DEFAULT_WINDOW
    try:
        seconds = parse_duration(text)
    except DurationError as error:
        raise BadRequest(f"invalid since={text}: {error}; try one of {', '.join(WINDOWS)}") from None
    if not MIN_WINDOW <= seconds <= MAX_WINDOW:
        raise BadRequest(f"since={text} is out of range; give 10m to 90d, such as one of {', '.join(WINDOWS)}")
    return text, seconds


def host_page(store: Store, config: Config, now: float, name: str, since: str | None) -> str:
    """Return one host: its values now, a chart per metric, its mounts and its open and recent incidents."""
    window_text, window = window_seconds(since)
    view = hostview.host_view(store, name, now, window, CHART_COLUMNS, config.stale_after, config.interval)
    if view is None:
        raise NotFound(f"Host {name!r} has not reported to this store.", ("/hosts", "All hosts"))
    host = view["host"]
    body = [
        f'<h1>{esc(host["name"])} <span class="badge {view["state"]}">{view["state"]}</span></h1>',
        f'<p class="muted">Last seen {ago(host["last_seen"], now)}; siqd {esc(host["version"] or "?")} '
        f'every {esc(format_duration(host["interval"] or 0))}.</p>',
        f'<p class="muted">The host is silent: these are its last readings, from '
        f'{ago(host["last_seen"], now)}.</p>' if view["state"] == "silent" else "",
        _tiles(view["now"]),
        # What is wrong and which disk is filling come before the charts, so a
        # phone shows them without scrolling past every chart.
        f'<h2 id="incidents">Open incidents ({len(view["open_incidents"])})</h2>',
        incidents_table(view["open_incidents"], now, show_host=False) if view["open_incidents"] else
        '<p class="muted">None.</p>',
        '<h2 id="disks">Disks</h2>', _mounts(view["mounts"]),
        _window_links(host["name"], window_text),
        _charts(view),
        f"<h2>Closed in the last {esc(window_text)} ({len(view['recent_incidents'])})</h2>",
        incidents_table(view["recent_incidents"], now, show_host=False) if view["recent_incidents"] else
        '<p class="muted">None.</p>',
        _events(view["events"]),
    ]
    return page(host["name"], "".join(body), now, section="hosts")


def _tiles(values: dict) -> str:
    disk = values["worst_disk"]
    tiles = [
        ("CPU", format_value(values["cpu_percent"], "%")),
        ("Memory", format_value(values["memory_used_percent"], "%")),
        ("Swap", format_value(values["swap_used_percent"], "%")),
        ("Load per core", format_value(values["load_per_core_1m"], "")),
        (f"Fullest disk {disk['mount']}" if disk else "Fullest disk",
         format_value(disk["used_percent"], "%") if disk else "-"),
    ]
    return '<div class="tiles">' + "".join(
        f'<div class="tile"><div class="label">{esc(label)}</div><div class="value">{esc(value)}</div></div>'
        for label, value in tiles) + "</div>"


def _window_links(name: str, current: str) -> str:
    links = "".join(
        f'<a href="{esc(host_href(name))}?since={quote(window)}"{" class=current" if window == current else ""}>'
        f"{window}</a>"
        for window in WINDOWS
    )
    return f'<h2 id="charts">Last {esc(current)}</h2><p class="windows">{links}</p>'


def _charts(view: dict) -> str:
    window = view["window"]
    interval = view["host"]["interval"] or 0.0
    cards = []
    for chart in view["charts"]:
        labels = " ".join(f"{key}={value}" for key, value in sorted(chart["labels"].items()))
        title = chart["metric"] + (f" {labels}" if labels else "")
        info = CATALOG.get(chart["metric"])
        highs = [bucket[2] for bucket in chart["buckets"] if bucket is not None]
        peak = format_value(max(highs), chart["unit"]) if highs else "-"
        figures = f"now {format_value(chart['now'], chart['unit'])}, highest {peak}"
        svg = series_chart(chart["buckets"], window["start"], window["step"], chart["unit"], title,
                           interval=interval)
        cards.append(f'<div class="card"><h3>{esc(title)}</h3>'
                     f'<p class="about">{esc(figures)}{" · " + esc(info.description) if info else ""}</p>'
                     f"{svg}</div>")
    if not cards:
        return '<p class="muted">No samples in this window.</p>'
    return (f'<p class="muted">Line: average per {esc(format_duration(window["step"]))}; '
            f'band: lowest to highest reading.</p><div class="charts">{"".join(cards)}</div>')


def _mounts(mounts: list[dict]) -> str:
    if not mounts:
        return '<p class="muted">No mounts reported.</p>'
    rows = []
    headings = ("Mount", "Used", "Used size", "Growth in 6h", "Full in", "Inodes")
    for mount in mounts:
        cells = list(zip(headings, (esc(text) for text in hostview.mount_cells(mount))))
        rows.append("<tr>" + "".join(f'<td data-label="{label}">{content}</td>' for label, content in cells)
                    + "</tr>")
    head = "".join(f"<th>{name}</th>" for name in headings)
    return (f'<table class="list"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
            '<p class="muted">"Full in" is when the mount fills at the pace of the last 6 hours.</p>')


def _events(events: list[dict]) -> str:
    if not events:
        return ""
    items = "".join(f"<li>{esc(local_time(event['ts']))}: {esc(event['text'])}</li>" for event in events)
    return f'<h2 id="events">Host events</h2><ul>{items}</ul>'
