"""Checks on what users notice: HTTP(S), TCP, processes, systemd units and Nagios plugins.

A check runs every `every` in a worker thread of its own (see runner.py)
and produces a Result: a status, the reason in words and the kind's own
measures. The daemon turns the latest fresh result into samples of the
`check.*` metrics, so checks go through the same rules, incidents and
notifications as host metrics. Each check has an implicit rule of its name
on `check.status`.

This package is imported only when the config has [[check]] tables. Each
kind's module (and what it imports: http.client, ssl, subprocess) is
loaded only when a check of that kind is configured.
"""

import importlib
import time

from siqd.records import Factory, Record

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATUS_WORDS = {OK: "ok", WARNING: "warning", CRITICAL: "critical", UNKNOWN: "unknown"}

# The module of each check type. Each module has read_options(table), settings(options) and run(check).
KIND_MODULES = {
    "http": "siqd.checks.http",
    "tcp": "siqd.checks.tcp",
    "process": "siqd.checks.process",
    "systemd": "siqd.checks.systemd",
    "command": "siqd.checks.plugin",
}


class Check(Record):
    name: str
    kind: str  # a key of KIND_MODULES
    every: float  # seconds between the starts of two runs
    timeout: float  # seconds one run may take
    options: Record  # the kind's own settings, e.g. siqd.checks.http.HttpOptions
    for_seconds: float = 0.0
    severity: str = "critical"
    alert_on: str = "critical"  # "warning": warnings open incidents too
    notify: list[str] | None = None
    description: str = ""
    auto_resolve: bool = False
    remind_every: float | None = None


class Result(Record):
    status: int  # OK, WARNING, CRITICAL or UNKNOWN
    reason: str  # "HTTP 503 in 120 ms (expected 200-399)"
    duration: float = 0.0  # seconds the run took
    # The kind's measures as (metric, labels besides "check", value, unit).
    measures: list[tuple[str, dict, float, str]] = Factory(list)
    finished_at: float = 0.0  # epoch seconds; the runner sets it


def kind_module(kind: str):
    """Import and return the module that reads and runs checks of `kind`."""
    return importlib.import_module(KIND_MODULES[kind])


def run_check(check: Check) -> Result:
    """Run one check and return its result.

    Each kind's run function turns the failures it expects into a result, so
    an exception here is a bug. The runner reports it as unknown.
    """
    started = time.monotonic()
    result = kind_module(check.kind).run(check)
    if not result.duration:
        result.duration = time.monotonic() - started
    return result


def format_elapsed(seconds: float) -> str:
    """Format a short duration for reasons: "0.4 ms", "120 ms", "1.2 s"."""
    if seconds < 0.001:
        return f"{seconds * 1000:.1f} ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.1f} s"


def format_timeout(seconds: float) -> str:
    """Format a configured timeout as it was written: "10s", "500ms"."""
    from siqd.durations import format_duration

    return format_duration(seconds, exact=True)
