"""Turn incidents into tables, detail views and JSON with stable field names."""

import json
import time

from siqd.durations import format_duration
from siqd.metrics import format_value
from siqd.notify.messages import summary_text
from siqd.store.base import Event, Incident, Notification
from siqd.timefmt import iso_utc, local_time


def ago(epoch: float | None, now: float) -> str:
    if epoch is None:
        return "-"
    return f"{format_duration(now - epoch)} ago"


def status_text(incident: Incident, now: float) -> str:
    text = incident.status
    if incident.status == "open" and incident.cleared_at is not None:
        text = f"open, cleared {ago(incident.cleared_at, now)}"
    if incident.status == "open" and incident.flapping_since is not None:
        text += ", flapping"
    if incident.status == "open" and incident.silenced_by is not None:
        text += f", silenced (#{incident.silenced_by})"
    return text


def series_text(incident: Incident) -> str:
    if incident.source != "rule":
        return "-"
    return ",".join(f"{key}={value}" for key, value in sorted(incident.labels.items())) or "-"


def table(rows, headers) -> str:
    """Lay rows out under headers in plain columns: a header line, a dashed rule, then the rows.

    The layout is tabulate's "simple" format, written here because importing
    tabulate costs siqctl about 7 ms on every listing.
    """
    cells = [["" if value is None else str(value) for value in row] for row in rows]
    widths = [max([len(header) + 2] + [len(row[index]) for row in cells]) for index, header in enumerate(headers)]
    lines = ["  ".join(header.ljust(width) for header, width in zip(headers, widths)).rstrip(),
             "  ".join("-" * width for width in widths)]
    lines += ["  ".join(value.ljust(width) for value, width in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


SPARK_MARKS = "▁▂▃▄▅▆▇█"


def sparkline(buckets: list, unit: str, metric: str = "") -> str:
    """Draw bucket averages as one line of block marks; a blank is a bucket with no samples.

    Percentages are drawn on 0-100, so a flat 5% looks low, and load per
    core on 0 to at least 1 (one busy core each). Other units span the
    window's lowest to highest average, so a flat line is drawn low.
    """
    means = [bucket[1] for bucket in buckets if bucket is not None]
    if unit == "%":
        low, top = 0.0, 100.0
    elif metric.startswith("load."):
        low, top = 0.0, max(means + [1.0])
    else:
        low, top = min(means, default=0.0), max(means, default=0.0)
    marks = []
    for bucket in buckets:
        if bucket is None:
            marks.append(" ")
        elif top <= low:
            marks.append(SPARK_MARKS[0])
        else:
            share = min(max((bucket[1] - low) / (top - low), 0.0), 1.0)
            marks.append(SPARK_MARKS[min(int(share * len(SPARK_MARKS)), len(SPARK_MARKS) - 1)])
    return "".join(marks)


def incident_link(incident: Incident, dashboard_url: str | None) -> str | None:
    return f"{dashboard_url}/incidents/{incident.id}" if dashboard_url else None


def incident_data(incident: Incident, dashboard_url: str | None) -> dict:
    """Return an incident as JSON-ready data; these field names are a stable interface."""
    return {
        "id": incident.id,
        "status": incident.status,
        "severity": incident.severity,
        "host": incident.host,
        "rule": incident.rule,
        "labels": incident.labels,
        "series": incident.series,
        "title": incident.title,
        "source": incident.source,
        "metric": incident.metric,
        "value": incident.value,
        "threshold": incident.threshold,
        "comparison": incident.comparison,
        "unit": incident.unit,
        "for_seconds": incident.for_seconds,
        "started_at": iso_utc(incident.started_at),
        "opened_at": iso_utc(incident.opened_at),
        "cleared_at": iso_utc(incident.cleared_at),
        "closed_at": iso_utc(incident.closed_at),
        "closed_by": incident.closed_by,
        "resolution": incident.resolution,
        "reason": incident.reason,
        "previous_id": incident.previous_id,
        "silenced_by": incident.silenced_by,
        "flapping": incident.flapping_since is not None,
        "updated_at": iso_utc(incident.updated_at),
        "url": incident_link(incident, dashboard_url),
    }


def event_data(event: Event) -> dict:
    return {"id": event.id, "at": iso_utc(event.ts), "kind": event.kind, "actor": event.actor,
            "text": event.text, "value": event.value}


def notification_data(notification: Notification) -> dict:
    return {
        "id": notification.id,
        "kind": notification.kind,
        "channel": notification.channel,
        "target": notification.target_masked,
        "status": notification.status,
        "attempts": notification.attempts,
        "created_at": iso_utc(notification.created_at),
        "sent_at": iso_utc(notification.sent_at),
        "next_attempt_at": iso_utc(notification.next_attempt_at) if notification.status == "pending" else None,
        "last_error": notification.last_error,
    }


def review_data(review: dict | None) -> dict | None:
    if review is None:
        return None
    return {
        "trigger": review["trigger"], "cause": review["cause"], "fix": review["fix"], "sooner": review["sooner"],
        "author": review["author"], "created_at": iso_utc(review["created_at"]),
        "updated_at": iso_utc(review["updated_at"]), "updated_by": review["updated_by"],
    }


def to_json(data) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)


def incidents_table(incidents: list[Incident], now: float | None = None) -> str:
    now = time.time() if now is None else now
    rows = [
        (
            incident.id,
            incident.severity,
            incident.host,
            incident.rule,
            shorten(summary_text(incident), 50),
            ago(incident.opened_at, now),
            status_text(incident, now),
        )
        for incident in incidents
    ]
    headers = ("ID", "SEVERITY", "HOST", "RULE", "WHAT", "OPENED", "STATUS")
    return table(rows, headers=headers)


def series_label(series: str) -> str:
    return series if series and not series.startswith("title=") else "-"


def shorten(text: str, width: int) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def incident_detail(incident: Incident, events: list[Event], notifications: list[Notification],
                    current: tuple[float, float] | None, previous: Incident | None,
                    dashboard_url: str | None, review: dict | None = None, description: str = "",
                    now: float | None = None) -> str:
    """Return the `incidents show` view: every field, the timeline and the deliveries."""
    now = time.time() if now is None else now
    lines = [f"Incident #{incident.id}: {incident.title}", ""]

    def field(name: str, value) -> None:
        if value not in (None, ""):
            lines.append(f"  {name + ':':<12}{value}")

    field("Status", status_text(incident, now))
    field("Severity", incident.severity)
    field("Host", incident.host)
    field("Rule", incident.rule)
    field("Series", series_text(incident) if incident.source == "rule" else None)
    if incident.metric and incident.comparison == "forecast":
        from siqd.notify.messages import condition_text

        field("Metric", incident.metric)
        field("Forecast", condition_text(incident).split(" ", 1)[1])
        if current is not None:
            field("Now", f"{format_value(current[1], incident.unit)} ({ago(current[0], now)})")
    elif incident.reason:
        field("Reason", incident.reason)
        field("Held", format_duration(incident.for_seconds) if incident.for_seconds else None)
    elif incident.metric:
        value = format_value(incident.value, incident.unit)
        threshold = format_value(incident.threshold, incident.unit)
        held = f" for {format_duration(incident.for_seconds)}" if incident.for_seconds else ""
        field("Metric", incident.metric)
        field("Value", f"{value} at opening (threshold: {incident.comparison} {threshold}{held})")
        if current is not None:
            field("Now", f"{format_value(current[1], incident.unit)} ({ago(current[0], now)})")
    field("Started", f"{local_time(incident.started_at)} ({ago(incident.started_at, now)})")
    field("Opened", f"{local_time(incident.opened_at)} ({ago(incident.opened_at, now)})")
    if incident.cleared_at is not None:
        field("Cleared", f"{local_time(incident.cleared_at)} (condition cleared; not yet confirmed by a person)"
              if incident.status == "open" else local_time(incident.cleared_at))
    if incident.closed_at is not None:
        field(incident.status.capitalize(), f"{local_time(incident.closed_at)} by {incident.closed_by}")
        field("Resolution" if incident.status == "resolved" else "Reason", incident.resolution)
    if previous is not None:
        field("Last time", f"#{previous.id}, resolved with '{previous.resolution}'")
    field("Dashboard", incident_link(incident, dashboard_url))
    field("Why", description)

    if review is not None:
        from siqd.incidents import REVIEW_LABELS

        edited = ""
        if review["updated_at"] != review["created_at"]:
            edited = f", edited by {review['updated_by']} {local_time(review['updated_at'])}"
        lines += ["", f"Review (by {review['author']} {local_time(review['created_at'])}{edited}):"]
        for question, label in REVIEW_LABELS.items():
            answer = (review[question] or "-").replace("\n", "\n" + " " * 17)
            lines.append(f"  {label + ':':<15}{answer}")
    elif incident.status == "resolved":
        lines += ["", f"Review: none yet; write one with: siqctl review {incident.id}"]

    lines += ["", "Timeline:"]
    for event in events:
        lines.append(f"  {local_time(event.ts)}  {event.kind:<10} {event.actor:<10} {event.text}")

    lines += ["", "Notifications:"]
    if not notifications and incident.silenced_by is not None:
        lines.append(f"  none yet: held by silence #{incident.silenced_by}")
    elif not notifications and any(event.kind == "silenced" for event in events):
        lines.append("  none: held by a silence")
    elif not notifications:
        lines.append("  none (no channel was configured when it opened)")
    pending_targets: dict[str, int] = {}
    for note in notifications:
        state = note.status.replace("_", " ")
        if note.status == "pending":
            earlier = pending_targets.get(note.target)
            if earlier is not None:
                state = f"queued behind #{earlier} to the same target"
            elif note.attempts:
                state = f"retrying at {local_time(note.next_attempt_at)}"
            pending_targets.setdefault(note.target, note.id)
        attempts = f"{note.attempts} attempt{'s' if note.attempts != 1 else ''}"
        error = f", last error: {note.last_error}" if note.last_error and note.status != "sent" else ""
        lines.append(f"  #{note.id} {note.kind:<9} {note.channel} {note.target_masked}: {state} ({attempts}{error})")
    return "\n".join(lines)
