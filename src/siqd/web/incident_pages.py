"""The incidents list and the page of one incident."""

import math

from siqd import hostview
from siqd.config import Config
from siqd.durations import format_duration
from siqd.incidents import REVIEW_LABELS
from siqd.metrics import format_value, unit_of
from siqd.notify.messages import condition_text
from siqd.rules import SILENT_HOST_RULE
from siqd.store.base import Incident, IncidentNotFound, Store
from siqd.timefmt import local_time
from siqd.web.charts import series_chart
from siqd.web.layout import (
    SEVERITY_ORDER, ago, esc, host_href, incident_href, incidents_table, page, severity_badge, status_cell,
)

CLOSED_WINDOW = 7 * 86400.0
# Closed incidents are read newest first, this many at most, then kept if closed within CLOSED_WINDOW.
CLOSED_LIMIT = 200
MAX_CHART_COLUMNS = 120
ROUND_STEPS = (10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
CHART_LEAD = 3600.0  # the incident chart starts this long before the incident opened
WIDE_CHART_WIDTH, NARROW_CHART_WIDTH = 860, 440


class NotFound(Exception):
    """A page for an id or name that the store does not have; the message is one line of plain text."""

    def __init__(self, message: str, link: tuple[str, str]):
        super().__init__(message)
        self.link = link


def incidents_page(store: Store, now: float) -> str:
    """Return the list of open incidents, most severe first, then those closed in the last 7 days."""
    open_incidents = sorted(store.list_incidents(["open"]),
                            key=lambda incident: (SEVERITY_ORDER.get(incident.severity, 3), -incident.opened_at))
    # NOTE: an incident opened long ago is missed here when CLOSED_LIMIT newer
    # incidents were closed after it; `siqctl incidents list --status closed` has it.
    closed = [incident for incident in store.list_incidents(["resolved", "ignored"], limit=CLOSED_LIMIT)
              if incident.closed_at is not None and incident.closed_at >= now - CLOSED_WINDOW]
    closed.sort(key=lambda incident: -incident.closed_at)
    body = [f"<h1>Open incidents ({len(open_incidents)})</h1>"]
    body.append(incidents_table(open_incidents, now) if open_incidents else
                '<p class="muted">No open incidents.</p>')
    body.append(f"<h2>Closed in the last 7 days ({len(closed)})</h2>")
    body.append(incidents_table(closed, now) if closed else '<p class="muted">None.</p>')
    return page("Incidents", "".join(body), now, section="incidents")


def incident_page(store: Store, config: Config, now: float, incident_id: int) -> str:
    """Return every field of an incident, a chart of its series, its timeline, notifications and review."""
    try:
        incident = store.get_incident(incident_id)
    except IncidentNotFound:
        raise NotFound(f"Incident #{incident_id} is not in this store.", ("/", "All incidents")) from None
    events = store.events(incident_id)
    notifications = store.notifications_for(incident_id)
    review = store.get_review(incident_id)
    previous = None
    if incident.previous_id is not None:
        try:
            previous = store.get_incident(incident.previous_id)
        except IncidentNotFound:
            previous = None
    current = store.latest_value(incident.host, incident.metric, incident.series) if incident.metric else None
    rule = next((rule for rule in config.rules if rule.name == incident.rule), None)

    body = [f"<h1>#{incident.id} {esc(incident.title)}</h1>",
            _fields(incident, current, previous, rule.description if rule else "", now),
            '<h2 id="chart">Chart</h2>', _chart(store, incident, now),
            '<h2 id="timeline">Timeline</h2>', _timeline(events),
            '<h2 id="notifications">Notifications</h2>', _notifications(incident, notifications),
            '<h2 id="review">Review</h2>', _review(incident, review),
            _commands(incident)]
    return page(f"#{incident.id} {incident.title}", "".join(body), now, section="incidents")


def _fields(incident: Incident, current: tuple[float, float] | None, previous: Incident | None,
            description: str, now: float) -> str:
    rows: list[tuple[str, str]] = [
        ("Status", status_cell(incident, now, with_note=False)),
        ("Severity", severity_badge(incident.severity)),
        ("Host", f'<a href="{esc(host_href(incident.host))}">{esc(incident.host)}</a>'),
        ("Rule", esc(incident.rule)),
    ]
    if incident.source == "rule" and incident.labels:
        rows.append(("Series", esc(incident.series)))
    if incident.metric:
        rows.append(("Metric", esc(incident.metric)))
        if incident.comparison == "forecast":
            rows.append(("Forecast", esc(condition_text(incident).split(" ", 1)[1])))
        else:
            held_for = f" for {format_duration(incident.for_seconds)}" if incident.for_seconds else ""
            rows.append(("Value", esc(f"{format_value(incident.value, incident.unit)} at opening (threshold: "
                                      f"{incident.comparison} {format_value(incident.threshold, incident.unit)}"
                                      f"{held_for})")))
        if current is not None:
            rows.append(("Now", f"{esc(format_value(current[1], unit_of(incident.metric)))} "
                                f"({ago(current[0], now)})"))
    rows.append(("Started", f"{esc(local_time(incident.started_at))} ({ago(incident.started_at, now)})"))
    rows.append(("Opened", f"{esc(local_time(incident.opened_at))} ({ago(incident.opened_at, now)})"))
    if incident.cleared_at is not None:
        pending = " (condition cleared; not yet confirmed by a person)" if incident.status == "open" else ""
        rows.append(("Cleared", esc(local_time(incident.cleared_at) + pending)))
    if incident.closed_at is not None:
        rows.append((incident.status.capitalize(),
                     esc(f"{local_time(incident.closed_at)} by {incident.closed_by or '-'}")))
        if incident.resolution:
            rows.append(("Resolution" if incident.status == "resolved" else "Reason", esc(incident.resolution)))
    if incident.flapping_since is not None:
        rows.append(("Flapping", esc(f"since {local_time(incident.flapping_since)}; notifications held")))
    if incident.silenced_by is not None:
        rows.append(("Silenced", esc(f"by silence #{incident.silenced_by}; notifications held")))
    if previous is not None:
        rows.append(("Last time", f'<a href="{incident_href(previous.id)}">#{previous.id}</a>, '
                                  f"{esc(previous.status)}: {esc(previous.resolution or '-')}"))
    if description:
        rows.append(("Why", esc(description)))
    items = "".join(f"<dt>{label}</dt><dd>{value}</dd>" for label, value in rows)
    return f'<dl class="fields">{items}</dl>'


def _chart(store: Store, incident: Incident, now: float) -> str:
    """Chart the incident's series from an hour before it opened to now, or to when it closed."""
    if incident.metric is None:
        return '<p class="muted">Opened by hand, so there is no metric to chart.</p>'
    if incident.rule == SILENT_HOST_RULE:
        return (f'<p class="muted">The host stopped reporting, so there are no samples to chart; its last '
                f'readings are on <a href="{esc(host_href(incident.host))}">the host page</a>.</p>')
    end = incident.closed_at if incident.closed_at is not None else now
    span = end - (incident.opened_at - CHART_LEAD)
    # A round bucket width ("30s", "5m") and as many buckets as it takes to cover the span.
    step = next((step for step in ROUND_STEPS if step * MAX_CHART_COLUMNS >= span), span / MAX_CHART_COLUMNS)
    columns = min(math.ceil(span / step), MAX_CHART_COLUMNS)
    window = hostview.history(store, incident.host, end - columns * step, end, columns)
    buckets = window["series"].get((incident.metric, incident.series), [None] * columns)
    unit = unit_of(incident.metric)
    threshold_label = ""
    if incident.threshold is not None:
        verb = "forecast target" if incident.comparison == "forecast" else incident.comparison
        threshold_label = f"{verb} {format_value(incident.threshold, unit)}"
    markers = [(incident.opened_at, "opened")]
    if incident.cleared_at is not None:
        markers.append((incident.cleared_at, "cleared"))
    if incident.closed_at is not None:
        markers.append((incident.closed_at, incident.status))
    label = incident.metric + (f" {incident.series}" if incident.series else "")
    host = store.get_host(incident.host)
    interval = host["interval"] if host is not None and host["interval"] else 0.0
    # The same chart twice: SVG text scales with the drawing, so a narrow screen gets a narrower drawing.
    charts = "".join(
        f'<div class="{css_class}">'
        + series_chart(buckets, window["start"], window["step"], unit, label, incident.threshold, threshold_label,
                       tuple(markers), interval, width)
        + "</div>"
        for css_class, width in (("wide", WIDE_CHART_WIDTH), ("narrow", NARROW_CHART_WIDTH))
    )
    until = "closing" if incident.closed_at is not None else "now"
    return (f'<div class="card incident-chart"><h3>{esc(label)}</h3><p class="about">from an hour before opening '
            f"to {until}; line: average per {esc(format_duration(window['step']))}, band: lowest to highest "
            f"reading</p>{charts}</div>")


def _timeline(events: list) -> str:
    if not events:
        return '<p class="muted">No events.</p>'
    rows = "".join(
        f'<tr><td data-label="When" class="num">{esc(local_time(event.ts))}</td>'
        f'<td data-label="Event">{esc(event.kind)}</td><td data-label="By">{esc(event.actor)}</td>'
        f'<td class="full">{esc(event.text)}</td></tr>'
        for event in events
    )
    return ('<table class="list"><thead><tr><th>When</th><th>Event</th><th>By</th><th>Text</th></tr></thead>'
            f"<tbody>{rows}</tbody></table>")


def _notifications(incident: Incident, notifications: list) -> str:
    if not notifications:
        if incident.silenced_by is not None:
            return f'<p class="muted">None yet: held by silence #{incident.silenced_by}.</p>'
        return '<p class="muted">None: no channel was configured when it opened, or a silence held it.</p>'
    rows = []
    for note in notifications:
        status = note.status.replace("_", " ")
        if note.status == "pending" and note.attempts:
            status = f"retrying at {local_time(note.next_attempt_at)}"
        error = esc(note.last_error) if note.last_error and note.status != "sent" else ""
        rows.append(f'<tr><td>#{note.id} {esc(note.kind)}</td>'
                    f'<td data-label="Channel">{esc(note.channel)}</td>'
                    f'<td data-label="Target"><code>{esc(note.target_masked)}</code></td>'
                    f'<td data-label="Status">{esc(status)}</td><td data-label="Attempts" class="num">'
                    f'{note.attempts}</td><td class="full">{error}</td></tr>')
    return ('<table class="list"><thead><tr><th>Notification</th><th>Channel</th><th>Target</th><th>Status</th>'
            f'<th>Attempts</th><th>Last error</th></tr></thead><tbody>{"".join(rows)}</tbody></table>')


def _review(incident: Incident, review: dict | None) -> str:
    if review is None:
        if incident.status == "resolved":
            return f'<p class="muted">None yet; write one with <code>siqctl review {incident.id}</code>.</p>'
        return '<p class="muted">None.</p>'
    edited = ""
    if review["updated_at"] != review["created_at"]:
        edited = f", edited by {review['updated_by']} {local_time(review['updated_at'])}"
    items = "".join(f"<dt>{esc(label)}</dt><dd>{esc(review[question] or '-')}</dd>"
                    for question, label in REVIEW_LABELS.items())
    return (f'<p class="muted">By {esc(review["author"])} {esc(local_time(review["created_at"]))}{esc(edited)}</p>'
            f'<dl class="fields">{items}</dl>')


def _commands(incident: Incident) -> str:
    """Return the siqctl commands that act on the incident; the dashboard itself only reads."""
    if incident.status == "open":
        commands = [f'siqctl comment {incident.id} "what you found"',
                    f'siqctl resolve {incident.id} -m "what fixed it"',
                    f'siqctl ignore {incident.id} -m "why it needs no fix"']
    else:
        commands = [f"siqctl review {incident.id}", f'siqctl reopen {incident.id} -m "why it is not over"']
    lines = "".join(f"<li><code>{esc(command)}</code></li>" for command in commands)
    return f"<h2>Act on it</h2><ul>{lines}</ul>"
