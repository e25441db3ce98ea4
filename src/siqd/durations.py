"""Parse and format durations such as "10s", "5m", "1h30m" and "2d"."""

import re

_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")

DURATION_FORM = 'a number with a unit, such as "30s", "5m", "1h30m" or "2d"'


class DurationError(ValueError):
    """A duration string that does not parse."""


def parse_duration(text: str) -> float:
    """Return the number of seconds in `text`; raise DurationError if it is not a duration.

    Units are ms, s, m, h, d and w; parts may be combined ("1h30m").
    Negative and empty durations are invalid.
    """
    if not isinstance(text, str):
        raise DurationError(f"expected {DURATION_FORM}, got {text!r}")
    compact = text.strip().lower()
    if not compact:
        raise DurationError(f"expected {DURATION_FORM}, got an empty string")
    position = 0
    total = 0.0
    for match in _PART.finditer(compact):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if position != len(compact):
        raise DurationError(f"expected {DURATION_FORM}, got {text!r}")
    return total


def format_duration(seconds: float, exact: bool = False) -> str:
    """Format seconds as a duration, largest units first.

    By default it shows the two largest units, rounded ("1h5m", "45s"), for
    people reading ages. With `exact`, every unit down to milliseconds is
    kept, so parse_duration(format_duration(x, exact=True)) == x to the
    millisecond.
    """
    if exact:
        remaining = int(round(max(seconds, 0) * 1000))
        units = (("w", 604_800_000), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1))
        parts = []
        for unit, size in units:
            count, remaining = divmod(remaining, size)
            if count:
                parts.append(f"{count}{unit}")
        return "".join(parts) or "0s"
    seconds = int(round(max(seconds, 0)))
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
        if len(parts) == 2:
            break
    return "".join(parts)
