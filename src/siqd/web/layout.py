"""The page shell, its CSS and the small formatters the dashboard's pages share.

Every text that comes from the store, the config or the request goes
through `esc`, so an incident titled "<script>" is shown as text.
"""

from html import escape
from urllib.parse import quote

from siqd import __version__
from siqd.durations import format_duration
from siqd.notify.messages import summary_text
from siqd.store.base import Incident
from siqd.timefmt import iso_utc, local_time

REFRESH_SECONDS = 30
SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}

CSS = """
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d232b; background: #f4f6f8; }
header { background: #1d232b; padding: .55rem 1rem; display: flex; gap: 1.2rem; align-items: baseline; flex-wrap: wrap; }
header a { color: #e8edf2; text-decoration: none; } header a.brand { font-weight: 700; color: #fff; }
header a.current { color: #fff; border-bottom: 2px solid #7fb0e8; }
main { max-width: 76rem; margin: 0 auto; padding: .8rem 1rem 2rem; }
h1 { font-size: 1.3rem; margin: .3rem 0 .5rem; overflow-wrap: anywhere; }
h2 { font-size: 1.05rem; margin: 1.6rem 0 .5rem; }
a { color: #1f5fa8; }
code { font: 13px ui-monospace, "SFMono-Regular", Menlo, monospace; background: #e8ecf0; padding: .05rem .3rem; border-radius: 3px; overflow-wrap: anywhere; }
.muted, footer { color: #5b6572; } footer { font-size: 13px; margin-top: 2rem; }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid #e3e7ec; }
th, td { text-align: left; padding: .4rem .55rem; border-bottom: 1px solid #e3e7ec; vertical-align: top; overflow-wrap: anywhere; }
th { font-weight: 600; background: #f9fafb; font-size: 13px; color: #3c4550; }
td.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
.badge { display: inline-block; padding: .05rem .45rem; border-radius: 3px; font-size: 12px; font-weight: 600; white-space: nowrap; }
.sev-critical { background: #c0392b; color: #fff; } .sev-warning { background: #f0b43c; color: #1d232b; }
.sev-info { background: #6b7785; color: #fff; }
.st-open { background: #fde3df; color: #8d2318; } .st-resolved { background: #dcf1e1; color: #1d6b34; }
.st-ignored { background: #e8ecf0; color: #3c4550; }
.up { background: #dcf1e1; color: #1d6b34; } .silent { background: #c0392b; color: #fff; }
.note { margin-top: .2rem; color: #3c4550; font-size: 14px; }
.tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(9rem, 1fr)); gap: .6rem; margin: .6rem 0; }
.tile, .card { background: #fff; border: 1px solid #e3e7ec; border-radius: 6px; padding: .5rem .7rem; min-width: 0; }
.tile .label { font-size: 12px; color: #5b6572; } .tile .value { font-size: 1.25rem; font-weight: 600; overflow-wrap: anywhere; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(22rem, 1fr)); gap: .8rem; }
.card h3 { font-size: 14px; margin: 0; overflow-wrap: anywhere; }
.card .about { font-size: 12px; color: #5b6572; margin: 0 0 .3rem; }
svg.chart { width: 100%; height: auto; display: block; }
.incident-chart { max-width: 64rem; } .incident-chart .narrow { display: none; }
svg.chart text { font: 11px system-ui, sans-serif; fill: #3c4550; }
dl.fields { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; background: #fff; border: 1px solid #e3e7ec; padding: .7rem .9rem; margin: 0; }
dl.fields dt { font-weight: 600; color: #3c4550; } dl.fields dd { margin: 0; overflow-wrap: anywhere; white-space: pre-wrap; }
.windows a { margin-right: .6rem; } .windows a.current { font-weight: 700; text-decoration: none; color: #1d232b; }
.message { background: #fff; border: 1px solid #e3e7ec; border-left: 4px solid #c0392b; padding: .7rem .9rem; }
@media (max-width: 40rem) {
  main { padding: .6rem .6rem 2rem; }
  .charts { grid-template-columns: 1fr; }
  .incident-chart .wide { display: none; } .incident-chart .narrow { display: block; }
  table.list { border: 0; background: none; }
  table.list thead { display: none; }
  table.list tr { display: flex; flex-wrap: wrap; align-items: baseline; background: #fff; border: 1px solid #e3e7ec; border-radius: 6px; margin-bottom: .5rem; padding: .35rem 0; }
  table.list td { display: block; border: 0; padding: .12rem .6rem; }
  table.list td[data-label]::before { content: attr(data-label) ": "; color: #5b6572; font-size: 13px; }
  table.list td:first-child, table.list td.full { flex-basis: 100%; }
  table.list td:first-child { font-weight: 600; } table.list td:first-child::before, table.list td.full::before { content: none; }
  dl.fields { gap: .25rem .7rem; padding: .5rem .6rem; font-size: 14px; }
  table.incidents td.id { order: 1; flex-basis: auto; padding-right: 0; } table.incidents td.sev { order: 2; }
  table.incidents td.what { order: 3; flex-basis: 100%; font-weight: 600; }
  table.incidents td.host { order: 4; } table.incidents td.rule { order: 5; } table.incidents td.opened { order: 6; }
  table.incidents td.status { order: 7; flex-basis: 100%; }
}
"""


def esc(value: object) -> str:
    """Escape a value for HTML text and attribute values."""
    return escape(str(value), quote=True)


def host_href(name: str) -> str:
    return "/hosts/" + quote(name, safe="")


def incident_href(incident_id: int) -> str:
    return f"/incidents/{incident_id}"


def ago(epoch: float | None, now: float) -> str:
    """Return "<time>" markup showing how long ago `epoch` was, with the local time as its tooltip."""
    if epoch is None:
        return "-"
    return (f'<time datetime="{iso_utc(epoch)}" title="{esc(local_time(epoch))}">'
            f"{format_duration(now - epoch)} ago</time>")


def page(title: str, body: str, now: float, section: str = "", refresh: bool = True) -> str:
    """Wrap `body` in the HTML shell: head, navigation and footer; `section` marks the current menu entry."""
    refresh_tag = f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">' if refresh else ""
    links = "".join(f'<a href="{href}"{" class=current" if name == section else ""}>{label}</a>'
                    for name, href, label in (("incidents", "/", "Incidents"), ("hosts", "/hosts", "Hosts")))
    refreshed = f" · refreshes every {REFRESH_SECONDS} s" if refresh else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"{refresh_tag}<title>{esc(title)} · siq</title><style>{CSS}</style></head><body>"
        f'<header><a class="brand" href="/">siq</a>{links}</header><main>{body}'
        f"<footer>Updated {esc(local_time(now))}{refreshed} · siqd {esc(__version__)}</footer>"
        "</main></body></html>\n"
    )


def message_page(title: str, message: str, now: float, link: tuple[str, str] | None = None,
                 refresh: bool = False, extra: str = "") -> str:
    """Return a page with one message, for 401, 404 and 503 responses; `message` is plain text."""
    back = f'<p><a href="{esc(link[0])}">{esc(link[1])}</a></p>' if link else ""
    return page(title, f'<h1>{esc(title)}</h1><p class="message">{esc(message)}</p>{extra}{back}', now,
                refresh=refresh)


def severity_badge(severity: str) -> str:
    return f'<span class="badge sev-{esc(severity)}">{esc(severity)}</span>'


def status_cell(incident: Incident, now: float, with_note: bool = True) -> str:
    """Return the status of an incident as markup: open with its states, or who closed it, when and why."""
    parts = [f'<span class="badge st-{esc(incident.status)}">{esc(incident.status)}</span>']
    if incident.status == "open":
        if incident.cleared_at is not None:
            parts.append(f" cleared {ago(incident.cleared_at, now)}")
        if incident.flapping_since is not None:
            parts.append(" flapping")
        if incident.silenced_by is not None:
            parts.append(f" silenced (#{incident.silenced_by})")
        return "".join(parts)
    parts.append(f" by {esc(incident.closed_by or '-')} {ago(incident.closed_at, now)}")
    if incident.resolution and with_note:
        parts.append(f'<div class="note">{esc(incident.resolution)}</div>')
    return "".join(parts)


def incidents_table(incidents: list[Incident], now: float, show_host: bool = True) -> str:
    """Return a table of incidents that turns into one card per incident on a narrow screen."""
    # (header and CSS class, label shown before the value on a narrow screen)
    columns = [("#", "id", ""), ("Severity", "sev", "")] + ([("Host", "host", "Host")] if show_host else []) + [
        ("Rule", "rule", "Rule"), ("What", "what", ""), ("Opened", "opened", "Opened"), ("Status", "status", "")]
    rows = []
    for incident in incidents:
        content = {
            "id": f'<a href="{incident_href(incident.id)}">#{incident.id}</a>',
            "sev": severity_badge(incident.severity),
            "host": f'<a href="{esc(host_href(incident.host))}">{esc(incident.host)}</a>',
            "rule": esc(incident.rule),
            "what": f'<a href="{incident_href(incident.id)}">{esc(summary_text(incident))}</a>',
            "opened": ago(incident.opened_at, now),
            "status": status_cell(incident, now),
        }
        cells = []
        for _, css_class, label in columns:
            label_attribute = f' data-label="{label}"' if label else ""
            cells.append(f'<td class="{css_class}"{label_attribute}>{content[css_class]}</td>')
        rows.append(f"<tr>{''.join(cells)}</tr>")
    head = "".join(f"<th>{header}</th>" for header, _, _ in columns)
    return f'<table class="list incidents"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
