"""Rule evaluation: pure functions from (rule, series state, value, now) to a new state.

Per (rule, series) the state is one of:

1. ok (no state kept): the value does not breach the threshold.
2. pending since T: the value has breached at every reading since T, but for
   less than the rule's `for`. Any reading that does not breach ends it.
3. firing since T: the breach held for `for`; an incident is open (or was).
   It ends only when the value crosses back past the clear threshold
   (hysteresis), not merely when it stops breaching.

A missing reading (None) is "unknown": it changes nothing.

Until `hold_until` (the end of the start-up grace), a breach that would
fire stays pending instead, so a boot-time spike opens nothing. If the
breach continues after the grace, it fires then, its start time unchanged.
"""

import fnmatch
from siqd.records import Record

from siqd.config import Rule

SILENT_HOST_RULE = "host-silent"

PENDING = "pending"
FIRING = "firing"

FIRE = "fire"
CLEAR = "clear"


class SeriesState(Record):
    state: str  # PENDING or FIRING
    since: float  # when the breach started
    value: float | None = None


class Transition(Record):
    kind: str  # FIRE or CLEAR
    started_at: float
    value: float


def silent_host_rule(config) -> Rule:
    """Return the built-in rule behind host-silent incidents; its threshold is set per host."""
    return Rule(name=SILENT_HOST_RULE, metric="host.silent_seconds", comparison="above", threshold=60.0,
                clear=60.0, severity="critical", notify=None,
                description="siqd on this host stopped reporting: the host, its network or siqd is down")


# A forecast needs this many readings, covering this share of its window, and a
# fit at least this good; two noisy points are no trend.
FORECAST_MIN_POINTS = 6
FORECAST_MIN_COVERAGE = 0.8
FORECAST_MIN_R2 = 0.6


def forecast_eta(points: list[tuple[float, float]], target: float, now: float, window: float) -> float | None:
    """Return seconds until a least-squares line over the last `window` reaches `target`.

    Returns None while the window is not full enough to judge (unknown: it
    neither breaches nor clears) and infinity when there is no real upward
    trend, which clears a forecast incident.
    """
    recent = [(ts, value) for ts, value in points if now - window <= ts <= now]
    if len(recent) < FORECAST_MIN_POINTS or recent[-1][0] - recent[0][0] < FORECAST_MIN_COVERAGE * window:
        return None
    count = len(recent)
    mean_t = sum(ts for ts, _ in recent) / count
    mean_v = sum(value for _, value in recent) / count
    var_t = sum((ts - mean_t) ** 2 for ts, _ in recent)
    var_v = sum((value - mean_v) ** 2 for _, value in recent)
    if var_t == 0:
        return None
    cov = sum((ts - mean_t) * (value - mean_v) for ts, value in recent)
    slope = cov / var_t
    if slope <= 0 or var_v == 0 or cov * cov / (var_t * var_v) < FORECAST_MIN_R2:
        return float("inf")
    fitted_now = mean_v + slope * (now - mean_t)
    return max((target - fitted_now) / slope, 0.0)


def rule_matches(rule: Rule, host: str, metric: str, labels: dict[str, str]) -> bool:
    """Tell whether `rule` watches this series: same metric, host and label globs match."""
    if rule.metric != metric:
        return False
    if not any(fnmatch.fnmatchcase(host, pattern) for pattern in rule.hosts):
        return False
    for key, pattern in rule.labels.items():
        if key not in labels or not fnmatch.fnmatchcase(labels[key], pattern):
            return False
    return True


def evaluate(rule: Rule, state: SeriesState | None, value: float | None, now: float,
             hold_until: float | None = None) -> tuple[SeriesState | None, Transition | None]:
    """Return the series' next state and the transition it makes, if any."""
    if value is None:
        return state, None

    if state is None:
        if not rule.breaches(value):
            return None, None
        state = SeriesState(PENDING, now, value)

    if state.state == PENDING:
        if not rule.breaches(value):
            return None, None
        held_long_enough = now - state.since >= rule.for_seconds
        if held_long_enough and (hold_until is None or now >= hold_until):
            return SeriesState(FIRING, state.since, value), Transition(FIRE, state.since, value)
        return SeriesState(PENDING, state.since, value), None

    if rule.clears(value):
        return None, Transition(CLEAR, state.since, value)
    return SeriesState(FIRING, state.since, value), None
