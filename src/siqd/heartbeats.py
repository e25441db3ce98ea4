"""Cron heartbeats: jobs that report each run to siq, and the state siqd derives from those reports.

A job pings the store through `siqctl heartbeat NAME` or `siqctl run NAME
-- CMD`: a "start" ping when a wrapped run begins, then "success" or
"failure". Each round, siqd on the heartbeat's host turns the latest pings
into one `heartbeat.status` sample per heartbeat (0 on time, 2 late,
failed or stuck), with a reason text. The heartbeat's implicit rule turns
that sample into an incident, like any other rule.

The state decision (`decide_status`) is a pure function of the heartbeat,
its pings, when siqd began watching it, and the time now.
"""

import logging
import re
from datetime import date, datetime, timedelta

from siqd.cron import CronExpression, _to_epoch
from siqd.durations import format_duration
from siqd.records import Record

METRIC = "heartbeat.status"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
NAME_FORM = "letters, digits, '.', '_' and '-', starting with a letter or digit, at most 100 characters"

START, SUCCESS, FAILURE = "start", "success", "failure"
PING_KINDS = (START, SUCCESS, FAILURE)

# States, from the best to the worst. The last three open the heartbeat's incident.
WAITING = "waiting"  # no run recorded yet, and none is due
ON_TIME = "on time"
RUNNING = "running"
LATE = "late"
FAILED = "failed"
STUCK = "stuck"
PROBLEM_STATES = (LATE, FAILED, STUCK)

# The default grace is this share of the period (for cron, of the shortest gap
# between two runs), kept between the two bounds.
GRACE_SHARE = 0.1
GRACE_MIN = 60.0
GRACE_MAX = 3600.0
# A run up to this long before a cron time counts as that time's run, so that
# clocks a little apart on two machines do not make a job late.
EARLY_TOLERANCE = 60.0
# Schedules are searched this many days back and ahead; a 29 February
# schedule matches once in four years.
SEARCH_DAYS = 4 * 366 + 2
# The decision reads this many of a heartbeat's newest pings.
PINGS_READ = 50
# Times in reasons show seconds when runs are due more often than this.
SECONDS_SHOWN_BELOW = 3600.0


class Heartbeat(Record):
    name: str
    host: str  # the host the job runs on; its siqd evaluates the heartbeat
    period: float | None  # seconds between runs; None for a cron heartbeat
    cron: str | None  # five-field expression in the config's timezone; None for a period heartbeat
    grace: float  # how late a run may start before the heartbeat is late
    max_runtime: float | None = None  # None: the period, or for cron the gap from a run's cron time to the next
    severity: str = "critical"
    notify: list[str] | None = None  # None means the default channels
    description: str = ""
    auto_resolve: bool = False

    def expression(self) -> CronExpression | None:
        return CronExpression(self.cron) if self.cron else None

    def nominal_gap(self) -> float:
        """Return the period, or for cron the shortest gap between two runs (see shortest_daily_gap)."""
        return self.period if self.period is not None else shortest_daily_gap(self.expression())

    def schedule_text(self) -> str:
        """Describe the schedule: "every 1d" or "cron '0 3 * * *'"."""
        if self.period is not None:
            return f"every {format_duration(self.period, exact=True)}"
        return f"cron '{self.cron}'"


class Ping(Record):
    ts: float
    kind: str  # START, SUCCESS or FAILURE
    run_id: str | None = None  # ties a run's start to its end; None for `siqctl heartbeat`
    exit_code: int | None = None  # negative: the command was killed by that signal
    duration: float | None = None  # seconds, for the end of a run
    output: str = ""  # the tail of a run's output
    message: str = ""  # the -m text, or how siqctl run was interrupted

    @classmethod
    def from_row(cls, row: dict) -> "Ping":
        return cls(**{name: row[name] for name in cls._field_names})


class HeartbeatStatus(Record):
    state: str  # WAITING, ON_TIME, RUNNING, LATE, FAILED or STUCK
    text: str  # the reason: the incident title of a problem, the clearing note otherwise
    last_ran: float | None = None  # when the latest run started (a plain ping: when it was sent)
    last_end: Ping | None = None  # the latest success or failure
    running_since: float | None = None

    @property
    def value(self) -> float:
        """Return the heartbeat.status value: 2 for a problem, 0 otherwise."""
        return 2.0 if self.state in PROBLEM_STATES else 0.0


# -- configuration ---------------------------------------------------------------------------


def shortest_daily_gap(expression: CronExpression) -> float:
    """Return the shortest gap in seconds between two runs that the minute and hour fields allow.

    It assumes consecutive days both match. A schedule restricted to some
    days can have longer real gaps, which only makes the default grace
    shorter than 10% of them.
    """
    times = sorted(hour * 60 + minute for hour in expression.hours for minute in expression.minutes)
    if len(times) == 1:
        return 86400.0
    gaps = [later - earlier for earlier, later in zip(times, times[1:])]
    gaps.append(1440 - times[-1] + times[0])
    return min(gaps) * 60.0


def default_grace(nominal_gap: float) -> float:
    return min(max(GRACE_SHARE * nominal_gap, GRACE_MIN), GRACE_MAX)


def heartbeat_rule(heartbeat: Heartbeat):
    """Return the implicit rule that turns a heartbeat's status into an incident."""
    import glob

    from siqd.config import Rule

    description = heartbeat.description or (
        f"The cron job {heartbeat.name} on {heartbeat.host} reports each run to siq "
        f"({heartbeat.schedule_text()}). Check first: its crontab entry, its output in cron's mail or log, "
        "and 'siqctl heartbeats'."
    )
    return Rule(name=heartbeat.name, metric=METRIC, comparison="above", threshold=1.0, clear=1.0,
                for_seconds=0.0, severity=heartbeat.severity, hosts=[glob.escape(heartbeat.host)],
                labels={"heartbeat": heartbeat.name}, auto_resolve=heartbeat.auto_resolve,
                notify=heartbeat.notify, description=description)


def watch_text(heartbeat: Heartbeat, timezone: str | None) -> str:
    """Return the host event text that records when siqd began watching a heartbeat with this schedule.

    A changed schedule or time zone gives a new text, so siqd watches the
    changed heartbeat as a new one.
    """
    zone = f" ({timezone})" if heartbeat.cron and timezone else ""
    return (f"began watching heartbeat {heartbeat.name}: {heartbeat.schedule_text()}{zone}, "
            f"grace {format_duration(heartbeat.grace, exact=True)}")


def read_heartbeats(raw_heartbeats: list, source: str, config) -> list[Heartbeat]:
    """Read every [[heartbeat]] table, then append each heartbeat's implicit rule to config.rules.

    A heartbeat's name is also its rule's name, so it must differ from every
    rule, check and other heartbeat.
    """
    from siqd.config import ConfigError, _Table
    from siqd.rules import SILENT_HOST_RULE

    names_in_use = {rule.name: "rule" for rule in config.rules}
    names_in_use.update({check.name: "check" for check in config.checks})
    names_in_use[SILENT_HOST_RULE] = "rule"
    heartbeats = []
    for index, raw in enumerate(raw_heartbeats):
        if not isinstance(raw, dict):
            raise ConfigError(source, f"heartbeat[#{index + 1}]", "expected a table ([[heartbeat]])")
        name = raw.get("name")
        label = name if isinstance(name, str) and NAME_PATTERN.fullmatch(name) else f"#{index + 1}"
        heartbeat = read_heartbeat(_Table(raw, source, f"heartbeat[{label}]."), config)
        if heartbeat.name in names_in_use:
            raise ConfigError(source, f"heartbeat[#{index + 1}].name",
                              f"{heartbeat.name!r} is already the name of a {names_in_use[heartbeat.name]}; a "
                              "heartbeat's name is also its rule's name, so choose another")
        names_in_use[heartbeat.name] = "heartbeat"
        heartbeats.append(heartbeat)
    config.rules.extend(heartbeat_rule(heartbeat) for heartbeat in heartbeats)
    return heartbeats


def read_heartbeat(table, config) -> Heartbeat:
    """Read one [[heartbeat]] table; `config` gives the default host, the time zone and the channels."""
    import time

    from siqd.config import SEVERITIES
    from siqd.cron import CronError
    from siqd.timefmt import zone_of

    name = table.string("name", required=True)
    if not NAME_PATTERN.fullmatch(name):
        raise table.error("name", f"invalid heartbeat name {name!r}; use {NAME_FORM}")
    period = table.duration("period", None, minimum=1.0)
    cron = table.string("cron")
    if (period is None) == (cron is None):
        raise table.error("period", "set exactly one of 'period' (such as \"1d\") "
                                    "or 'cron' (such as \"0 3 * * *\")")
    if cron is not None:
        try:
            expression = CronExpression(cron)
        except CronError as error:
            raise table.error("cron", str(error)) from None
        if next_fire(expression, time.time(), zone_of(config.timezone)) is None:
            raise table.error("cron", f"{cron!r} matches no time in the next four years")
        nominal = shortest_daily_gap(expression)
    else:
        nominal = period
    grace = table.duration("grace", default_grace(nominal), minimum=1.0)
    host = table.string("host", config.host)
    if not host.strip():
        raise table.error("host", "must not be empty; leave it out for the config's host")
    severity = table.string("severity", "critical")
    if severity not in SEVERITIES:
        raise table.error("severity", f"expected one of {', '.join(SEVERITIES)}, got {severity!r}")
    notify = table.string_list("notify")
    for channel in notify or []:
        if channel not in config.notify.channels:
            raise table.error("notify", f"unknown channel {channel!r}; define it under [notify.channels]")
    heartbeat = Heartbeat(
        name=name, host=host.strip(), period=period, cron=cron, grace=grace,
        max_runtime=table.duration("max_runtime", None, minimum=1.0), severity=severity, notify=notify,
        description=table.string("description", ""),
        auto_resolve=table.get("auto_resolve", bool, "true or false", False),
    )
    table.reject_unknown()
    return heartbeat


def heartbeat_settings(heartbeat: Heartbeat, default_channels: list[str]) -> dict:
    """Return a heartbeat's effective settings, as `siqctl config check` prints them."""
    entry = {"name": heartbeat.name, "host": heartbeat.host}
    if heartbeat.period is not None:
        entry["period"] = format_duration(heartbeat.period, exact=True)
    else:
        entry["cron"] = heartbeat.cron
    entry["grace"] = format_duration(heartbeat.grace, exact=True)
    entry["max_runtime"] = format_duration(heartbeat.max_runtime, exact=True) if heartbeat.max_runtime else (
        "the period" if heartbeat.period is not None else "the gap between two cron times")
    entry["severity"] = heartbeat.severity
    entry["auto_resolve"] = heartbeat.auto_resolve
    entry["notify"] = heartbeat.notify if heartbeat.notify is not None else default_channels
    if heartbeat.description:
        entry["description"] = heartbeat.description
    return entry


# -- cron times ----------------------------------------------------------------------------


def _local_naive(epoch: float, zone) -> datetime:
    moment = datetime.fromtimestamp(epoch, zone) if zone else datetime.fromtimestamp(epoch)
    return moment.replace(tzinfo=None)


def _day_matches(expression: CronExpression, day: date) -> bool:
    if day.month not in expression.months:
        return False
    probe = datetime(day.year, day.month, day.day, min(expression.hours), min(expression.minutes))
    return expression.matches(probe)


# Candidates further than this from the searched moment in wall-clock time are
# skipped without converting them. A DST change moves the clock by at most 2 hours.
_DST_SLACK = timedelta(hours=2)


def previous_fire(expression: CronExpression, moment: float, zone) -> float | None:
    """Return the latest cron time at or before `moment` (epoch seconds), or None within SEARCH_DAYS.

    Times are local wall-clock times in `zone` (None: the machine's). A time
    skipped by a DST change runs at the end of the gap, as in cron.window_containing.
    """
    local = _local_naive(moment, zone)
    for offset in range(SEARCH_DAYS):
        day = local.date() - timedelta(days=offset)
        if not _day_matches(expression, day):
            continue
        for hour in sorted(expression.hours, reverse=True):
            for minute in sorted(expression.minutes, reverse=True):
                candidate = datetime(day.year, day.month, day.day, hour, minute)
                if candidate > local + _DST_SLACK:
                    continue
                fire = _to_epoch(candidate, zone)
                if fire <= moment:
                    return fire
    return None


def next_fire(expression: CronExpression, moment: float, zone) -> float | None:
    """Return the first cron time after `moment` (epoch seconds), or None within SEARCH_DAYS."""
    local = _local_naive(moment, zone)
    for offset in range(SEARCH_DAYS):
        day = local.date() + timedelta(days=offset)
        if not _day_matches(expression, day):
            continue
        for hour in sorted(expression.hours):
            for minute in sorted(expression.minutes):
                candidate = datetime(day.year, day.month, day.day, hour, minute)
                if candidate < local - _DST_SLACK:
                    continue
                fire = _to_epoch(candidate, zone)
                if fire > moment:
                    return fire
    return None


def max_runtime(heartbeat: Heartbeat, started: float, zone) -> float:
    """Return how long a run that started at `started` may take before it counts as stuck."""
    if heartbeat.max_runtime is not None:
        return heartbeat.max_runtime
    if heartbeat.period is not None:
        return heartbeat.period
    expression = heartbeat.expression()
    scheduled = previous_fire(expression, started + EARLY_TOLERANCE, zone) or started
    following = next_fire(expression, scheduled, zone)
    return following - scheduled if following is not None else heartbeat.nominal_gap()


# -- the state decision ------------------------------------------------------------------------


def _aware(epoch: float, zone) -> datetime:
    return datetime.fromtimestamp(epoch, zone) if zone else datetime.fromtimestamp(epoch).astimezone()


def _format_time(epoch: float, zone, seconds: bool) -> str:
    """Format a time in the config's zone with the zone's abbreviation: "2026-12-04 03:00 CET"."""
    return _aware(epoch, zone).strftime("%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z")


def _expected_at(due: float, now: float, zone, seconds: bool) -> str:
    """Format a cron time as "03:00 CET", with its date when it was not today."""
    if _aware(due, zone).date() == _aware(now, zone).date():
        return _aware(due, zone).strftime("%H:%M:%S %Z" if seconds else "%H:%M %Z")
    return _format_time(due, zone, seconds)


def signal_name(number: int) -> str:
    import signal

    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def exit_text(exit_code: int | None) -> str:
    """Describe an exit code as stored: "exit 3", "killed by SIGTERM", or "" when there is none."""
    if exit_code is None:
        return ""
    if exit_code < 0:
        return f"killed by {signal_name(-exit_code)}"
    return f"exit {exit_code}"


def run_time_text(seconds: float) -> str:
    """Format how long a run took: "42s", "1h5m", or milliseconds below a second."""
    return format_duration(seconds) if seconds >= 1 else f"{seconds * 1000:.0f}ms"


def last_output_line(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def failure_detail(ping: Ping) -> str:
    """Describe a failed run: "exit 3, disk full" (the exit, then the message or last output line)."""
    parts = [part for part in (exit_text(ping.exit_code), ping.message.strip() or last_output_line(ping.output))
             if part]
    return ", ".join(parts)


def _ran_at(ping: Ping, starts: dict[str, float]) -> float:
    """Return when the run that a ping reports started: its start ping, or its end minus its duration."""
    if ping.kind == START:
        return ping.ts
    if ping.run_id and ping.run_id in starts:
        return starts[ping.run_id]
    return ping.ts - (ping.duration or 0.0)


def decide_status(heartbeat: Heartbeat, pings: list[Ping], watched_since: float | None, now: float,
                  zone) -> HeartbeatStatus:
    """Decide a heartbeat's state from its newest pings.

    `watched_since` is when siqd began watching the heartbeat (None: not
    yet, which counts as now), so a new heartbeat is late only one period
    and its grace after that, not at once. The newest pings decide:

    - stuck: the newest run started, has not ended, and is older than max_runtime;
    - late: no run started within the period and grace (for cron: none since
      the last cron time whose grace has passed), and none is running;
    - failed: the newest end is a failure; a later success clears it.
    """
    name = heartbeat.name
    seconds = heartbeat.nominal_gap() < SECONDS_SHOWN_BELOW
    ordered = sorted(pings, key=lambda ping: ping.ts)
    starts = {ping.run_id: ping.ts for ping in ordered if ping.kind == START and ping.run_id}
    ends = [ping for ping in ordered if ping.kind in (SUCCESS, FAILURE)]
    ended_runs = {ping.run_id for ping in ends if ping.run_id}
    last_end = ends[-1] if ends else None
    last_ran = max((_ran_at(ping, starts) for ping in ordered), default=None)

    # A run is in progress when the newest start has no end and no run that
    # started later has ended (that would mean this one was abandoned).
    latest_start = next((ping for ping in reversed(ordered) if ping.kind == START), None)
    settled = max((_ran_at(ping, starts) for ping in ends), default=None)
    running = None
    if latest_start is not None and latest_start.run_id not in ended_runs and \
            (settled is None or latest_start.ts > settled):
        running = latest_start

    status = dict(last_ran=last_ran, last_end=last_end, running_since=running.ts if running else None)

    if running is not None:
        limit = max_runtime(heartbeat, running.ts, zone)
        if now - running.ts > limit:
            # The limit, not the time so far: the incident title then reads the same whenever it opens.
            text = (f"{name} started at {_format_time(running.ts, zone, seconds)} and has not finished "
                    f"after {format_duration(limit)}")
            return HeartbeatStatus(STUCK, text, **status)
    else:
        late = _lateness(heartbeat, last_ran, watched_since if watched_since is not None else now, now, zone,
                         seconds)
        if late is not None:
            return HeartbeatStatus(LATE, late, **status)

    if last_end is not None and last_end.kind == FAILURE:
        detail = failure_detail(last_end)
        return HeartbeatStatus(FAILED, f"{name} failed: {detail}" if detail else f"{name} failed", **status)
    if running is not None:
        return HeartbeatStatus(RUNNING, f"running since {_format_time(running.ts, zone, True)}", **status)
    if last_ran is None:
        if watched_since is None:
            return HeartbeatStatus(WAITING, f"no run recorded; siqd on {heartbeat.host} has not started "
                                            "watching it", **status)
        return HeartbeatStatus(WAITING, f"no run recorded yet; watched since "
                                        f"{_format_time(watched_since, zone, True)}", **status)
    text = f"last ran {_format_time(last_ran, zone, True)}"
    if last_end is not None and last_end.duration is not None and _ran_at(last_end, starts) == last_ran:
        text += f", took {run_time_text(last_end.duration)}"
    return HeartbeatStatus(ON_TIME, text, **status)


def _lateness(heartbeat: Heartbeat, last_ran: float | None, watched_since: float, now: float, zone,
              seconds: bool) -> str | None:
    """Return the reason a heartbeat is late, or None when it is not."""
    grace = format_duration(heartbeat.grace)
    if last_ran is not None:
        since = _format_time(last_ran, zone, seconds)
    else:
        since = f"siqd began watching it at {_format_time(watched_since, zone, seconds)}"
    if heartbeat.period is not None:
        reference = last_ran if last_ran is not None and last_ran >= watched_since else watched_since
        if now <= reference + heartbeat.period + heartbeat.grace:
            return None
        return (f"{heartbeat.name} has not run since {since} "
                f"(expected every {format_duration(heartbeat.period)}, grace {grace})")
    due = previous_fire(heartbeat.expression(), now - heartbeat.grace, zone)
    if due is None or due < watched_since:
        return None  # no cron time has passed its grace since siqd began watching
    if last_ran is not None and last_ran >= due - EARLY_TOLERANCE:
        return None
    return (f"{heartbeat.name} has not run since {since} "
            f"(expected at {_expected_at(due, now, zone, seconds)}, grace {grace})")


# -- in siqd ----------------------------------------------------------------------------------


class HeartbeatWatch:
    """Produce each round's heartbeat.status samples for the heartbeats of the daemon's host."""

    def __init__(self):
        from siqd.log import RepeatFilter

        self._watched: dict[tuple[str, str, str], float] = {}  # (host, name, watch text): since
        self._errors = RepeatFilter()

    def samples(self, store, config, now: float) -> list:
        """Return one heartbeat.status sample per heartbeat of this host, or none if the store fails.

        A store failure leaves every heartbeat unknown for the round: no
        sample means no change. An unreachable store is logged by the round
        itself; other store errors are logged here, rate-limited.
        """
        from siqd.collect.host import Sample
        from siqd.log import get_logger, log_event
        from siqd.store import StoreError, StoreUnavailable
        from siqd.timefmt import zone_of

        mine = [heartbeat for heartbeat in config.heartbeats if heartbeat.host == config.host]
        if not mine:
            return []
        zone = zone_of(config.timezone)
        found = []
        try:
            for heartbeat in mine:
                since = self._watched_since(store, heartbeat, config.timezone, now)
                rows = store.latest_heartbeat_pings(heartbeat.host, heartbeat.name, PINGS_READ)
                status = decide_status(heartbeat, [Ping.from_row(row) for row in rows], since, now, zone)
                found.append(Sample(METRIC, {"heartbeat": heartbeat.name}, status.value, text=status.text))
        except StoreUnavailable:
            return []
        except StoreError as error:
            should_log, suppressed = self._errors.should_log("heartbeats", now)
            if should_log:
                log_event(get_logger("heartbeats"), logging.ERROR, "heartbeats_unknown", error=error,
                          suppressed=suppressed or None)
            return []
        self._errors.forget("heartbeats")
        return found

    def _watched_since(self, store, heartbeat: Heartbeat, timezone: str | None, now: float) -> float:
        """Return when siqd began watching the heartbeat, recording it in the host's events the first time."""
        from siqd.log import get_logger, log_event

        text = watch_text(heartbeat, timezone)
        key = (heartbeat.host, heartbeat.name, text)
        if key in self._watched:
            return self._watched[key]
        since = store.heartbeat_watched_since(heartbeat.host, text)
        if since is None:
            with store.transaction():
                store.add_host_event(heartbeat.host, now, "heartbeat", text)
            since = now
            log_event(get_logger("heartbeats"), logging.INFO, "heartbeat_watched", host=heartbeat.host,
                      heartbeat=heartbeat.name, schedule=heartbeat.schedule_text(),
                      grace=format_duration(heartbeat.grace, exact=True))
        self._watched[key] = since
        return since


# -- for siqctl and the report ------------------------------------------------------------------


def overview(store, config, now: float) -> list[dict]:
    """Return each configured heartbeat with its last run, last result, state and open incident.

    It reads only: a heartbeat that no siqd watches yet shows as waiting.
    """
    from siqd.timefmt import iso_utc, zone_of

    zone = zone_of(config.timezone)
    rows = []
    for heartbeat in config.heartbeats:
        since = store.heartbeat_watched_since(heartbeat.host, watch_text(heartbeat, config.timezone))
        pings = [Ping.from_row(row) for row in store.latest_heartbeat_pings(heartbeat.host, heartbeat.name,
                                                                             PINGS_READ)]
        status = decide_status(heartbeat, pings, since, now, zone)
        incident = store.find_open_incident(heartbeat.host, heartbeat.name, f"heartbeat={heartbeat.name}")
        end = status.last_end
        rows.append({
            "name": heartbeat.name,
            "host": heartbeat.host,
            "schedule": heartbeat.schedule_text(),
            "grace_seconds": heartbeat.grace,
            "state": status.state,
            "reason": status.text,
            "last_run": iso_utc(status.last_ran),
            "running_since": iso_utc(status.running_since),
            "last_result": None if end is None else {
                "result": end.kind,
                "at": iso_utc(end.ts),
                "exit_code": end.exit_code,
                "duration_seconds": end.duration,
                "detail": failure_detail(end) if end.kind == FAILURE else end.message,
            },
            "watched_since": iso_utc(since),
            "incident": incident.id if incident is not None else None,
            "_last_run_epoch": status.last_ran,
        })
    return rows


def failures_between(store, start: float, end: float, zone) -> list[dict]:
    """Return the heartbeat problems of [start, end), oldest first: failed runs, and late or stuck jobs.

    Failed runs come from the failure pings, so each one counts; their
    reason is the -m text or the last output line, and the exit code is
    apart. Late and stuck jobs leave no ping, so they come from the incidents
    of heartbeat rules, one entry per opening or return of the condition.
    """
    from siqd.timefmt import iso_utc

    found = []
    for row in store.heartbeat_pings_between(start, end, FAILURE):
        ping = Ping.from_row(row)
        found.append({"name": row["name"], "host": row["host"], "kind": FAILED, "at": iso_utc(ping.ts),
                      "exit_code": ping.exit_code, "reason": ping.message.strip() or last_output_line(ping.output),
                      "incident": None,
                      "_ts": ping.ts})
    for row in store.heartbeat_incident_events(start, end):
        reason = _reason_of_event(row["text"]) or row["reason"] or ""
        if " has not run since " in reason:
            kind = LATE
        elif " has not finished after " in reason:
            kind = STUCK
        else:
            continue  # a failure, already listed from its ping
        found.append({"name": row["rule"], "host": row["host"], "kind": kind, "at": iso_utc(row["ts"]),
                      "exit_code": None, "reason": reason, "incident": row["incident_id"], "_ts": row["ts"]})
    found.sort(key=lambda entry: entry["_ts"])
    for entry in found:
        entry["at_local"] = _format_time(entry.pop("_ts"), zone, False)
    return found


def _reason_of_event(text: str) -> str:
    """Return the reason in an "opened: …, breaching since …" or "condition returned: …" event text."""
    if text.startswith("opened: "):
        body = text[len("opened: "):]
        cut = body.rfind(", breaching since ")
        return body[:cut] if cut != -1 else body
    if text.startswith("condition returned: "):
        return text[len("condition returned: "):]
    return ""
