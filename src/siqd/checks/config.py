"""Read [[check]] tables into Check records and their implicit rules.

siqd.config calls read_checks only when the file has [[check]] tables, so
a config without checks never imports this package.
"""

import re

from siqd.checks import KIND_MODULES, Check, kind_module
from siqd.config import SEVERITIES, Config, ConfigError, Rule, _Table, masked_location
from siqd.durations import format_duration
from siqd.rules import SILENT_HOST_RULE

# Check names become the label value `check=NAME` and the implicit rule's
# name, so they keep to characters that need no quoting in either.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
NAME_MAX_LENGTH = 100
DEFAULT_EVERY = 60.0
DEFAULT_TIMEOUT = 10.0
ALERT_LEVELS = ("critical", "warning")
# The implicit rule compares check.status (0 ok, 1 warning, 2 critical) with these.
CRITICAL_THRESHOLD = 1.5
WARNING_THRESHOLD = 0.5
# Words that mark a header's value as a secret, which `siqctl config check` masks.
SECRET_HEADER_WORDS = ("authorization", "cookie", "token", "key", "secret", "password", "auth")


def read_checks(raw_checks: list, source: str, config: Config) -> list[Check]:
    """Read every [[check]] table, then append each check's implicit rule to config.rules.

    Check names must differ from each other and from every rule's name,
    because the implicit rule carries the check's name.
    """
    checks = []
    used_names = {rule.name for rule in config.rules} | {SILENT_HOST_RULE}
    for index, raw in enumerate(raw_checks):
        if not isinstance(raw, dict):
            raise ConfigError(source, f"check[#{index + 1}]", "expected a table ([[check]])")
        name = raw.get("name")
        label = name if isinstance(name, str) and NAME_PATTERN.fullmatch(name) else f"#{index + 1}"
        check = read_check(_Table(raw, source, f"check[{label}]."), config.notify.channels)
        if check.name in used_names:
            owner = "check" if check.name in {other.name for other in checks} else "rule"
            raise ConfigError(source, f"check[#{index + 1}].name",
                              f"{check.name!r} is already the name of a {owner}; a check's name is also its "
                              "rule's name, so choose another")
        used_names.add(check.name)
        checks.append(check)
    config.rules.extend(implicit_rule(check) for check in checks)
    return checks


def read_check(table: _Table, channels: dict) -> Check:
    """Read one [[check]] table: the common keys here, the type's own keys in its module."""
    name = table.string("name", required=True)
    if len(name) > NAME_MAX_LENGTH or not NAME_PATTERN.fullmatch(name):
        raise table.error("name", f"invalid check name {name!r}; use letters, digits, '.', '_' and '-', "
                                  f"starting with a letter or digit, at most {NAME_MAX_LENGTH} characters")
    kind = table.string("type", required=True)
    if kind not in KIND_MODULES:
        raise table.error("type", f"unknown check type {kind!r}; expected one of {', '.join(KIND_MODULES)}")

    every = table.duration("every", DEFAULT_EVERY, minimum=1.0)
    # The default timeout leaves room for the next run when `every` is short.
    timeout = table.duration("timeout", min(DEFAULT_TIMEOUT, every / 2))
    if timeout <= 0:
        raise table.error("timeout", "must be more than 0s")
    if timeout >= every:
        raise table.error("timeout", f"must be below every ({format_duration(every, exact=True)}), "
                                     f"got {format_duration(timeout, exact=True)}")
    severity = table.string("severity", "critical")
    if severity not in SEVERITIES:
        raise table.error("severity", f"expected one of {', '.join(SEVERITIES)}, got {severity!r}")
    alert_on = table.string("alert_on", "critical")
    if alert_on not in ALERT_LEVELS:
        raise table.error("alert_on", f"expected \"critical\" or \"warning\", got {alert_on!r}")
    notify = table.string_list("notify")
    for channel in notify or []:
        if channel not in channels:
            raise table.error("notify", f"unknown channel {channel!r}; define it under [notify.channels]")

    check = Check(
        name=name,
        kind=kind,
        every=every,
        timeout=timeout,
        options=kind_module(kind).read_options(table),
        for_seconds=table.duration("for", every),
        severity=severity,
        alert_on=alert_on,
        notify=notify,
        description=table.string("description", ""),
        auto_resolve=table.get("auto_resolve", bool, "true or false", False),
        remind_every=table.duration("remind_every", None, minimum=60.0),
    )
    table.reject_unknown()
    return check


def implicit_rule(check: Check) -> Rule:
    """Return the rule that opens an incident when the check stays critical (or warning) for `for`."""
    threshold = WARNING_THRESHOLD if check.alert_on == "warning" else CRITICAL_THRESHOLD
    return Rule(name=check.name, metric="check.status", comparison="above", threshold=threshold, clear=threshold,
                for_seconds=check.for_seconds, severity=check.severity, labels={"check": check.name},
                auto_resolve=check.auto_resolve, remind_every=check.remind_every, notify=check.notify,
                description=check.description)


def header_is_secret(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in SECRET_HEADER_WORDS)


def check_settings(check: Check) -> dict:
    """Return a check's effective settings as TOML-ready data, header secrets and URL passwords masked."""
    entry = {
        "name": check.name,
        "type": check.kind,
        "every": format_duration(check.every, exact=True),
        "timeout": format_duration(check.timeout, exact=True),
        "for": format_duration(check.for_seconds, exact=True),
        "severity": check.severity,
        "alert_on": check.alert_on,
    }
    if check.notify is not None:
        entry["notify"] = check.notify
    if check.description:
        entry["description"] = check.description
    for key, value in kind_module(check.kind).settings(check.options).items():
        if key == "headers":
            value = {name: "****" if header_is_secret(name) else text for name, text in value.items()}
        elif key == "url":
            value = masked_location(value)
        entry[key] = value
    return entry
