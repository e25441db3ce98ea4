"""systemd unit checks: the unit is active, as `systemctl show` reports it.

A machine that was not booted with systemd (a container, a chroot) has no
unit states to read. There the check reports "unknown: systemd not
available", which writes no status sample, so it opens and clears nothing.
"""

import os
import re
import shutil
import time

from siqd.checks import CRITICAL, OK, UNKNOWN, WARNING, Result, format_timeout
from siqd.records import Record

# sd_booted(3): the system runs systemd exactly when this folder exists.
SYSTEMD_RUNTIME_DIR = "/run/systemd/system"
PROPERTIES = ("LoadState", "ActiveState", "SubState", "Result")
# Unit names as systemd.unit(5) allows them, with an optional type suffix ("nginx" means nginx.service).
UNIT_NAME = re.compile(r"[A-Za-z0-9:_.\\@-]+")
TRANSITIONAL_STATES = ("activating", "deactivating", "reloading", "refreshing")


class SystemdOptions(Record):
    unit: str


def read_options(table) -> SystemdOptions:
    unit = table.string("unit", required=True)
    if not UNIT_NAME.fullmatch(unit) or unit.startswith("-"):
        raise table.error("unit", f"invalid unit name {unit!r}; expected e.g. \"nginx.service\" or \"cron\"")
    return SystemdOptions(unit=unit)


def settings(options: SystemdOptions) -> dict:
    return {"unit": options.unit}


def parse_show(output: str) -> dict[str, str]:
    """Parse `systemctl show --property=…` output ("Key=value" lines) into a dict."""
    properties = {}
    for line in output.splitlines():
        key, equals, value = line.partition("=")
        if equals and key.strip():
            properties[key.strip()] = value.strip()
    return properties


def judge(unit: str, properties: dict[str, str]) -> Result:
    """Turn a unit's properties into a status: active is ok, starting or reloading a warning, else critical."""
    load = properties.get("LoadState", "")
    active = properties.get("ActiveState", "")
    sub = properties.get("SubState", "")
    if load == "not-found":
        return Result(CRITICAL, f"unit {unit} not found")
    if load == "masked":
        return Result(CRITICAL, f"unit {unit} is masked")
    if not active:
        return Result(UNKNOWN, f"systemctl reported no ActiveState for {unit}")
    state = f"{active} ({sub})" if sub else active
    if active == "active":
        return Result(OK, f"{unit} is {state}")
    if active in TRANSITIONAL_STATES:
        return Result(WARNING, f"{unit} is {state}")
    result = properties.get("Result", "")
    if active == "failed" and result and result != "success":
        return Result(CRITICAL, f"{unit} is {state}, result {result}")
    return Result(CRITICAL, f"{unit} is {state}")


def systemd_available() -> str | None:
    """Return why unit states cannot be read here, or None when they can."""
    if not os.path.isdir(SYSTEMD_RUNTIME_DIR):
        return "systemd not available"
    if shutil.which("systemctl") is None:
        return "systemd not available (no systemctl on PATH)"
    return None


def run(check) -> Result:
    from siqd.checks.plugin import run_argv

    unit = check.options.unit
    started = time.monotonic()
    missing = systemd_available()
    if missing:
        return Result(UNKNOWN, missing, time.monotonic() - started)
    command = ["systemctl", "show", "--no-pager", f"--property={','.join(PROPERTIES)}", "--", unit]
    try:
        returncode, stdout, stderr = run_argv(command, check.timeout)
    except OSError as error:
        return Result(UNKNOWN, f"cannot run systemctl: {error.strerror or error}", time.monotonic() - started)
    elapsed = time.monotonic() - started
    if returncode is None:
        return Result(UNKNOWN, f"systemctl did not answer within {format_timeout(check.timeout)}", elapsed)
    if returncode != 0:
        first = next((line.strip() for line in stderr.splitlines() if line.strip()), f"exit code {returncode}")
        return Result(UNKNOWN, f"systemctl failed: {first}", elapsed)
    result = judge(unit, parse_show(stdout))
    result.duration = elapsed
    return result
