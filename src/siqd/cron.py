"""Five-field cron expressions (minute hour day-of-month month day-of-week) for recurring silences.

Fields take `*`, numbers, ranges (`1-5`), lists (`1,15`) and steps (`*/15`,
`0-30/10`). Day of week runs 0-7 with 0 and 7 both Sunday. As in cron,
when both day fields are restricted, a day matches if either does.
"""

from datetime import datetime

_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))


class CronError(ValueError):
    """An expression that is not five valid cron fields."""


class CronExpression:
    def __init__(self, text: str):
        parts = text.split()
        if len(parts) != 5:
            raise CronError(f"invalid cron expression {text!r}: expected 5 fields "
                            "(minute hour day-of-month month day-of-week), e.g. '0 2 * * *'")
        self.text = text
        sets = [_parse_field(part, name, low, high) for part, (name, low, high) in zip(parts, _FIELDS)]
        self.minutes, self.hours, self.days, self.months, weekdays = sets
        self.weekdays = {day % 7 for day in weekdays}
        self.day_restricted = parts[2] != "*"
        self.weekday_restricted = parts[4] != "*"

    def matches(self, moment: datetime) -> bool:
        if moment.minute not in self.minutes or moment.hour not in self.hours or moment.month not in self.months:
            return False
        day_ok = moment.day in self.days
        weekday_ok = (moment.isoweekday() % 7) in self.weekdays
        if self.day_restricted and self.weekday_restricted:
            return day_ok or weekday_ok
        return day_ok and weekday_ok


def _parse_field(text: str, name: str, low: int, high: int) -> set[int]:
    values: set[int] = set()
    for item in text.split(","):
        body, _, step_text = item.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if body == "*":
                start, end = low, high
            elif "-" in body:
                start, end = (int(part) for part in body.split("-", 1))
            else:
                start = end = int(body)
        except ValueError:
            hint = " (use numbers: 0 or 7 is Sunday, 1 Monday)" if name == "day of week" else \
                " (use numbers 1-12)" if name == "month" else ""
            raise CronError(f"invalid {name} field {text!r} in cron expression{hint}") from None
        if step < 1 or start < low or end > high or start > end:
            raise CronError(f"invalid {name} field {text!r}: values must be within {low}-{high}")
        values.update(range(start, end + 1, step))
    return values


def shortest_gap(expression: CronExpression, start: float, zone, days: int = 400) -> float | None:
    """Return the shortest time between two consecutive matches over `days` days, or None if it
    matches less than twice (such as only on 31 February)."""
    from datetime import timedelta

    moment = (datetime.fromtimestamp(start, zone) if zone else datetime.fromtimestamp(start)).replace(
        tzinfo=None, second=0, microsecond=0)
    previous, shortest = None, None
    for day in range(days):
        date = moment + timedelta(days=day)
        if date.month not in expression.months:
            continue
        for hour in sorted(expression.hours):
            for minute in sorted(expression.minutes):
                candidate = date.replace(hour=hour, minute=minute)
                if candidate < moment or not expression.matches(candidate):
                    continue
                if previous is not None:
                    gap = (candidate - previous).total_seconds()
                    shortest = gap if shortest is None else min(shortest, gap)
                previous = candidate
        if shortest is not None and shortest <= 60:
            break
    return shortest


def window_containing(expression: CronExpression, duration: float, now: float, zone) -> tuple[float, float] | None:
    """Return the [start, end) of the window that contains `now`: it starts at a cron match and lasts `duration`.

    Matches are looked for in local wall-clock minutes. A match at a time
    that does not exist (the hour skipped when DST starts) starts its window
    at the end of the gap, as Vixie cron runs such jobs then.
    """
    from datetime import timedelta

    local_now = (datetime.fromtimestamp(now, zone) if zone else datetime.fromtimestamp(now)).replace(tzinfo=None)
    minute = local_now.replace(second=0, microsecond=0)
    # Walk back far enough to cover the duration even across a DST change.
    for back in range(int(duration // 60) + 62):
        candidate = minute - timedelta(minutes=back)
        if not expression.matches(candidate):
            continue
        start = _to_epoch(candidate, zone)
        if start <= now < start + duration:
            return start, start + duration
        if start + duration <= now and back * 60 > duration + 3600:
            break
    return None


def _to_epoch(local: datetime, zone) -> float:
    """Convert a local wall-clock time to epoch seconds; a time in a DST gap maps to the end of the gap."""
    if zone is None:
        return local.timestamp()
    first = local.replace(tzinfo=zone, fold=0)
    second = local.replace(tzinfo=zone, fold=1)
    if first.utcoffset() != second.utcoffset() and first.timestamp() > second.timestamp():
        # A nonexistent time: fold=0 reads it with the old offset, past the gap.
        # The gap ends where the later reading of the same wall time lands.
        return _gap_end(local, zone)
    return first.timestamp()


def _gap_end(local: datetime, zone) -> float:
    from datetime import timedelta

    probe = local.replace(minute=0) + timedelta(hours=1)
    return probe.replace(tzinfo=zone, fold=1).timestamp()
