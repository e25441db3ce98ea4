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
fire stays pending instead, so a boot-time spike opens nothing; if it
still holds after the grace, it fires then, its start time unchanged.
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
