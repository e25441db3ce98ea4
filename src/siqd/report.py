"""The patterns report: what happened over a period, computed from the store.

Days and hours are those of the configured time zone, and period limits
are local midnights, so a day of a DST change has 23 or 25 hours and its
incidents still count on the day they opened. Each incident counts once,
on the day and hour it opened, even if it was resolved after midnight.

Percentiles use the nearest-rank method: the p-th percentile of n sorted
values is the value at rank ceil(p/100 * n). The median is the middle
value, or the mean of the two middle values.
"""

import math
import statistics
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from siqd.config import Config
from siqd.durations import format_duration
from siqd.heartbeats import failures_between
from siqd.metrics import format_value
from siqd.store.base import IGNORED, OPEN, RESOLVED, Store
from siqd.timefmt import iso_utc, zone_of

# A rule is noise when at least this many of its incidents were ignored ...
NOISY_MIN_INCIDENTS = 3
# ... and they are at least this share of its incidents.
NOISY_IGNORED_SHARE = 0.5


class PeriodError(ValueError):
    """A --month or --since value that does not name a period."""


def local_zone(name: str | None) -> ZoneInfo | None:
    """Return the configured zone, or None for the machine's local time."""
    return zone_of(name)


def month_period(text: str, zone, now: float) -> tuple[float, float, str]:
    """Return (start, end, label) of a calendar month: "2026-11", "last" or "this"."""
    today = datetime.fromtimestamp(now, zone).date() if zone else datetime.fromtimestamp(now).date()
    if text == "this":
        year, month = today.year, today.month
    elif text == "last":
        year, month = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
    else:
        try:
            parsed = datetime.strptime(text, "%Y-%m")
        except ValueError:
            raise PeriodError(f"invalid month {text!r}; expected YYYY-MM such as 2026-11, 'last' or 'this'") from None
        year, month = parsed.year, parsed.month
    next_year, next_month = (year, month + 1) if month < 12 else (year + 1, 1)
    start = _local_midnight(date(year, month, 1), zone)
    end = _local_midnight(date(next_year, next_month, 1), zone)
    return start, end, f"{year:04d}-{month:02d}"


def _local_midnight(day: date, zone) -> float:
    moment = datetime(day.year, day.month, day.day, tzinfo=zone)
    return moment.timestamp() if zone else datetime(day.year, day.month, day.day).astimezone().timestamp()


def _local(epoch: float, zone) -> datetime:
    return datetime.fromtimestamp(epoch, zone) if zone else datetime.fromtimestamp(epoch).astimezone()


def percentile(values: list[float], percent: float) -> float | None:
    """Return the nearest-rank percentile of `values`, or None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


def duration_stats(values: list[float]) -> dict:
    return {
        "count": len(values),
        "median_seconds": statistics.median(values) if values else None,
        "p90_seconds": percentile(values, 90),
    }


def build_report(store: Store, config: Config, start: float, end: float, label: str, now: float) -> dict:
    """Compute the report for incidents opened in [start, end) as plain, JSON-ready data."""
    zone = local_zone(config.timezone)
    incidents = store.incidents_between(start, end)
    reviewed = store.reviewed_ids([incident.id for incident in incidents])

    by_host = Counter(incident.host for incident in incidents)
    by_rule = Counter(incident.rule for incident in incidents)
    by_hour = Counter(_local(incident.opened_at, zone).hour for incident in incidents)
    by_day = Counter(_local(incident.opened_at, zone).date() for incident in incidents)

    days = []
    day = _local(start, zone).date()
    shown_end = min(end, now)  # a period that runs into the future ("this month") stops at today
    last_day = _local(shown_end - 1, zone).date() if shown_end > start else day
    while day <= last_day:
        days.append({"date": day.isoformat(), "incidents": by_day.get(day, 0)})
        day += timedelta(days=1)

    series_groups = defaultdict(list)
    for incident in incidents:
        series_groups[(incident.host, incident.rule, incident.series)].append(incident)
    recurring = []
    for (host, rule, series), group in series_groups.items():
        if len(group) < 2:
            continue
        recurring.append({
            "host": host, "rule": rule, "series": series, "count": len(group),
            "incidents": [{"id": item.id, "opened_at": iso_utc(item.opened_at), "status": item.status,
                           "resolution": item.resolution} for item in group],
        })
    recurring.sort(key=lambda entry: (-entry["count"], entry["host"], entry["rule"], entry["series"]))

    resolved = [incident for incident in incidents if incident.status == RESOLVED]
    to_resolve = [incident.closed_at - incident.opened_at for incident in resolved]
    cleared_to_resolved = [incident.closed_at - incident.cleared_at for incident in resolved
                           if incident.cleared_at is not None and incident.cleared_at <= incident.closed_at]

    rules_by_name = {rule.name: rule for rule in config.rules}
    noisy = []
    for rule_name, total in sorted(by_rule.items()):
        ignored = sum(1 for incident in incidents if incident.rule == rule_name and incident.status == IGNORED)
        if ignored >= NOISY_MIN_INCIDENTS and ignored / total >= NOISY_IGNORED_SHARE:
            noisy.append({"rule": rule_name, "incidents": total, "ignored": ignored,
                          "suggestion": _noise_suggestion(rules_by_name.get(rule_name))})

    unreviewed = [{"id": incident.id, "host": incident.host, "rule": incident.rule, "title": incident.title,
                   "closed_at": iso_utc(incident.closed_at)}
                  for incident in resolved if incident.id not in reviewed]

    return {
        "period": {"label": label, "start": iso_utc(start), "end": iso_utc(end),
                   "start_local": _local(start, zone).strftime("%Y-%m-%d %H:%M %Z"),
                   "end_local": _local(end, zone).strftime("%Y-%m-%d %H:%M %Z"),
                   "so_far": end > now, "timezone": config.timezone or "local"},
        "generated_at": iso_utc(now),
        "generated_local": _local(now, zone).strftime("%Y-%m-%d %H:%M %Z"),
        "totals": {
            "opened": len(incidents),
            "resolved": len(resolved),
            "ignored": sum(1 for incident in incidents if incident.status == IGNORED),
            "still_open": sum(1 for incident in incidents if incident.status == OPEN),
        },
        "by_host": [{"host": host, "incidents": count} for host, count in _ranked(by_host)],
        "by_rule": [{"rule": rule, "incidents": count} for rule, count in _ranked(by_rule)],
        "by_hour": [{"hour": hour, "incidents": by_hour.get(hour, 0)} for hour in range(24)],
        "by_day": days,
        "recurring": recurring,
        "time_to_resolve": duration_stats(to_resolve),
        "cleared_to_resolved": duration_stats(cleared_to_resolved),
        "noisy_rules": noisy,
        "unreviewed": unreviewed,
        # Failed runs, and late or stuck jobs, of cron heartbeats: see siqd.heartbeats.failures_between.
        "heartbeat_failures": failures_between(store, start, end, zone),
    }


def _ranked(counter: Counter) -> list[tuple[str, int]]:
    return sorted(counter.items(), key=lambda item: (-item[1], item[0]))


def _noise_suggestion(rule) -> str:
    if rule is None or rule.metric is None:
        return "most of its incidents were ignored; check whether it should alert at all"
    threshold = format_value(rule.threshold, "%" if rule.metric.endswith("percent") else "")
    held = format_duration(rule.for_seconds) if rule.for_seconds else "0s"
    direction = "raise" if rule.comparison == "above" else "lower"
    return (f"most of its incidents were ignored: {direction} the threshold ({rule.comparison} {threshold}) "
            f"or lengthen 'for' ({held})")
