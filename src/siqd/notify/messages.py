"""The text of notifications: what a person on call reads first."""

from siqd.durations import format_duration
from siqd.metrics import format_value
from siqd.store.base import Incident
from siqd.timefmt import local_time

# Apprise notify types by what happened.
_TYPE_BY_SEVERITY = {"critical": "failure", "warning": "warning", "info": "info"}

HEADLINES = {
    "opened": "opened",
    "breach": "firing again",
    "cleared": "condition cleared",
    "resolved": "resolved",
    "ignored": "ignored",
    "reopened": "reopened",
    "reminder": "still firing",
    "flapping": "flapping, notifications held",
    "stable": "stable again",
}


def notify_type(kind: str, incident: Incident) -> str:
    if kind in ("cleared", "resolved"):
        return "success"
    if kind == "ignored":
        return "info"
    return _TYPE_BY_SEVERITY.get(incident.severity, "warning")


def series_text(incident: Incident) -> str:
    return ", ".join(f"{key}={value}" for key, value in sorted(incident.labels.items()))


def summary_text(incident: Incident) -> str:
    """Describe an incident in one line for lists: a check's reason, a rule's series and value, else the title."""
    if incident.source != "rule" or incident.metric is None:
        return incident.title
    if incident.reason:
        return incident.reason
    if incident.metric == "host.silent_seconds":
        return f"host silent: no report for {format_duration(incident.value or 0)} when it opened"
    where = ",".join(f"{key}={value}" for key, value in sorted(incident.labels.items()))
    prefix = f"{where} " if where else ""
    threshold = format_value(incident.threshold, incident.unit)
    if incident.comparison == "forecast":
        return f"{prefix}{threshold} in about {format_duration(incident.value or 0)}"
    return f"{prefix}{format_value(incident.value, incident.unit)} ({incident.comparison} {threshold})"


def condition_text(incident: Incident) -> str:
    """Describe the breach: "disk.used_percent 90.4% (threshold: above 90.0% for 5m)"."""
    if incident.reason:
        held = f" for {format_duration(incident.for_seconds)}" if incident.for_seconds else ""
        return f"{incident.reason}{held}"
    if incident.metric is None or incident.threshold is None:
        return ""
    if incident.comparison == "forecast":
        return (f"{incident.metric} reaches {format_value(incident.threshold, incident.unit)} in about "
                f"{format_duration(incident.value or 0)} (linear fit over the last "
                f"{format_duration(incident.for_seconds or 0)})")
    value = format_value(incident.value, incident.unit)
    threshold = format_value(incident.threshold, incident.unit)
    held = f" for {format_duration(incident.for_seconds)}" if incident.for_seconds else ""
    return f"{incident.metric} {value} (threshold: {incident.comparison} {threshold}{held})"


def incident_title(incident: Incident, kind: str = "opened") -> str:
    """Return a notification title; cleared, resolved and ignored notices show that instead of the severity."""
    headline = HEADLINES.get(kind, kind)
    tag = kind.upper() if kind in ("cleared", "resolved", "ignored") else incident.severity.upper()
    return f"[{tag}] #{incident.id} {incident.title} — {headline}"


def describe_incident(host: str, rule: str, labels: dict, metric: str, value: float, comparison: str,
                      threshold: float, unit: str) -> str:
    """Return the one-line title stored on a rule's incident: "db-1 disk-full on mount=/: 90.4% above 90.0%"."""
    where = ", ".join(f"{key}={val}" for key, val in sorted(labels.items()))
    on = f" on {where}" if where else ""
    return (f"{host} {rule}{on}: {format_value(value, unit)} {comparison} "
            f"{format_value(threshold, unit)}")


def describe_forecast(host: str, rule: str, labels: dict, eta: float, target: float, unit: str) -> str:
    """Return the title of a forecast incident: "db-1 disk-filling on mount=/: 100.0% in about 3h"."""
    where = ", ".join(f"{key}={val}" for key, val in sorted(labels.items()))
    on = f" on {where}" if where else ""
    return f"{host} {rule}{on}: {format_value(target, unit)} in about {format_duration(eta)}"


def incident_body(incident: Incident, kind: str, detail: str, dashboard_url: str | None,
                  last_time: Incident | None) -> str:
    """Return the notification body for an incident event of `kind`."""
    lines = []
    lines.append(f"{incident.severity.upper()} {HEADLINES.get(kind, kind)}: {incident.title}")
    lines.append(f"Host: {incident.host}   Rule: {incident.rule}"
                 + (f"   Series: {series_text(incident)}" if incident.labels and incident.source == "rule" else ""))
    condition = condition_text(incident)
    if condition:
        lines.append(f"Value: {condition}")
    lines.append(f"Since: {local_time(incident.started_at)} (opened {local_time(incident.opened_at)})")
    if detail:
        lines.append(detail)
    if last_time is not None and kind in ("opened", "reopened"):
        note = (last_time.resolution or "").strip().replace("\n", " ")
        lines.append(f"Last time: #{last_time.id}, resolved with '{note}'")
    lines.append(f"Details: siqctl incidents show {incident.id}")
    if dashboard_url:
        lines.append(f"Dashboard: {dashboard_url}/incidents/{incident.id}")
    return "\n".join(lines)
