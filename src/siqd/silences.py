"""Silences: maintenance windows that mute notifications, never the record.

A silence matches incidents by host glob, rule glob and label globs. It is
active from its start until its end, or, when recurring, for `duration`
after each time its cron expression matches (in the config's time zone).
"""

import fnmatch

from siqd.cron import CronExpression, window_containing
from siqd.store.base import Store


def silence_window(silence: dict, now: float, zone) -> tuple[float, float] | None:
    """Return the [start, end) during which `silence` is active at `now`, or None if it is not."""
    if silence["ended_at"] is not None and silence["ended_at"] <= now:
        return None
    if now < silence["starts_at"]:
        return None
    if silence["cron"]:
        window = window_containing(CronExpression(silence["cron"]), silence["duration"], now, zone)
        if window is None:
            return None
        start, end = window
        return max(start, silence["starts_at"]), end
    if silence["ends_at"] is not None and now >= silence["ends_at"]:
        return None
    return silence["starts_at"], silence["ends_at"]


def silence_matches(silence: dict, host: str, rule: str, labels: dict[str, str]) -> bool:
    if not fnmatch.fnmatchcase(host, silence["host_glob"]) or not fnmatch.fnmatchcase(rule, silence["rule_glob"]):
        return False
    return all(key in labels and fnmatch.fnmatchcase(labels[key], pattern)
               for key, pattern in silence["labels"].items())


def active_silence(store: Store, host: str, rule: str, labels: dict[str, str], now: float, zone) -> dict | None:
    """Return the first active silence that matches, or None."""
    for silence in store.silences():
        if silence_matches(silence, host, rule, labels) and silence_window(silence, now, zone) is not None:
            return silence
    return None


def is_active(store: Store, silence_id: int, now: float, zone) -> bool:
    silence = store.get_silence(silence_id)
    return silence is not None and silence_window(silence, now, zone) is not None
