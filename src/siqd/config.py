"""Load, validate and locate siq's TOML configuration.

Every problem becomes a ConfigError naming the file, the key and the
expected form; unknown keys are errors, not silently ignored.
"""

import os
import re
import stat
import tomllib
from siqd.records import Factory, Record
from pathlib import Path

from siqd import paths
from siqd.durations import DURATION_FORM, DurationError, format_duration, parse_duration
from siqd.metrics import CATALOG

SEVERITIES = ("info", "warning", "critical")
CONFIG_FILE_NAME = "siq.toml"

DEFAULT_SKIP_FSTYPES = [
    "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs", "devpts",
    "devtmpfs", "efivarfs", "fuse.gvfsd-fuse", "fuse.lxcfs", "fuse.portal", "fusectl",
    "hugetlbfs", "iso9660", "mqueue", "nsfs", "nfsd", "overlay", "proc", "pstore", "ramfs",
    "rpc_pipefs", "securityfs", "selinuxfs", "squashfs", "sysfs", "tracefs", "udf",
]
DEFAULT_SKIP_TMPFS_UNDER = ["/dev", "/run", "/sys"]


class ConfigError(Exception):
    """A configuration problem, formatted as one line: file: key: what is wrong."""

    def __init__(self, source: str, key: str, message: str):
        self.source = source
        self.key = key
        self.message = message
        where = f"{source}: {key}: " if key else f"{source}: "
        super().__init__(where + message)


class Rule(Record):
    name: str
    metric: str
    comparison: str  # "above" or "below"
    threshold: float
    clear: float  # the value the series must cross back past to clear
    for_seconds: float = 0.0
    severity: str = "warning"
    hosts: list[str] = Factory(lambda: ["*"])
    labels: dict[str, str] = Factory(dict)
    auto_resolve: bool = False
    remind_every: float | None = None  # notify again while open and breaching; None: never
    flap_max: int = 6  # more condition changes than this within flap_window is flapping
    flap_window: float = 1800.0
    notify: list[str] | None = None  # None means the default channels
    description: str = ""
    # A forecast rule predicts instead of compares: it breaches while a linear
    # fit over `window` reaches `predict` within `within`. Its evaluated value
    # is that time in seconds, so comparison is "below" and threshold `within`.
    predict: float | None = None
    window: float = 3600.0

    def breaches(self, value: float) -> bool:
        return value > self.threshold if self.comparison == "above" else value < self.threshold

    def clears(self, value: float) -> bool:
        return value < self.clear if self.comparison == "above" else value > self.clear


class DiskSettings(Record):
    skip_fstypes: list[str] = Factory(lambda: list(DEFAULT_SKIP_FSTYPES))
    skip_tmpfs_under: list[str] = Factory(lambda: list(DEFAULT_SKIP_TMPFS_UNDER))
    skip_mounts: list[str] = Factory(list)
    # Directories sized in a background thread (siqd.diskwatch); each is an absolute, normalized path.
    watch: list[str] = Factory(list)
    watch_every: float = 300.0
    watch_budget: float = 5.0  # seconds one scan of one path may take before it stops as partial
    watch_max_files: int = 200000  # files and directories one scan of one path may count
    watch_top: int = 10  # largest immediate subdirectories kept per path


class NotifySettings(Record):
    default: list[str] = Factory(list)
    channels: dict[str, list[str]] = Factory(dict)
    retry_initial: float = 30.0
    retry_max: float = 900.0
    give_up_after: float = 86400.0
    timeout: float = 10.0
    fallback: str | None = None  # channel that gets what another channel failed to deliver
    fallback_after: float = 900.0
    storm_threshold: int = 5  # more openings than this to one target within storm_window are grouped
    storm_window: float = 300.0


class Config(Record):
    path: Path | None
    host: str
    store: str
    interval: float = 10.0
    dashboard_url: str | None = None
    log_level: str = "info"
    timezone: str | None = None  # IANA name for reports; None is the machine's local time
    retention_raw: float = 48 * 3600.0
    retention_rollup: float = 90 * 86400.0
    startup_grace: float = 20.0
    stale_after: float | None = None  # None: 3 of the silent host's intervals, at least 60 s
    buffer_path: Path | None = None
    buffer_max_rounds: int = 8640
    disks: DiskSettings = Factory(DiskSettings)
    notify: NotifySettings = Factory(NotifySettings)
    rules: list[Rule] = Factory(list)
    checks: list = Factory(list)  # siqd.checks.Check: HTTP, TCP, process, systemd and plugin checks
    heartbeats: list = Factory(list)  # Heartbeat: cron jobs that must ping on schedule
    warnings: list[str] = Factory(list)
    web_listen: str | None = None  # "HOST:PORT" of the dashboard and /metrics; None: not served
    web_token: str | None = None  # bearer token every dashboard request must carry; a secret

    @property
    def source(self) -> str:
        return str(self.path) if self.path else "built-in defaults"


# --- glob validation --------------------------------------------------------


def glob_problem(pattern: str) -> str | None:
    """Return why `pattern` is not a usable fnmatch glob, or None if it is fine."""
    if not isinstance(pattern, str) or pattern == "":
        return "an empty glob matches nothing"
    index = 0
    while index < len(pattern):
        if pattern[index] == "[":
            end = index + 1
            if end < len(pattern) and pattern[end] == "!":
                end += 1
            if end < len(pattern) and pattern[end] == "]":
                end += 1
            close = pattern.find("]", end)
            if close == -1:
                return f"unclosed '[' at position {index + 1}"
            index = close
        index += 1
    return None


# --- reading tables ---------------------------------------------------------


class _Table:
    """Typed access to one TOML table that remembers which keys were read."""

    def __init__(self, data: dict, source: str, prefix: str):
        self.data = data
        self.source = source
        self.prefix = prefix
        self.seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def error(self, name: str, message: str) -> ConfigError:
        return ConfigError(self.source, self.key(name), message)

    def get(self, name: str, kind: type | tuple, form: str, default=None):
        self.seen.add(name)
        if name not in self.data:
            return default
        value = self.data[name]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise self.error(name, f"expected {form}, got {_describe(value)}")
        return value

    def string(self, name: str, default: str | None = None, required: bool = False) -> str | None:
        value = self.get(name, str, "a string", default)
        if required and value is None:
            raise self.error(name, "missing; expected a string" + self._misspelling_of(name))
        return value

    def _misspelling_of(self, name: str) -> str:
        """Name a key in the table that looks like a misspelling of the missing key `name`, if there is one."""
        import difflib

        close = difflib.get_close_matches(name, [key for key in self.data if key not in self.seen], n=1)
        return f" (found {close[0]!r}: is it misspelled?)" if close else ""

    def number(self, name: str, default: float | None = None) -> float | None:
        return self.get(name, float, "a number", default)

    def duration(self, name: str, default: float, minimum: float = 0.0) -> float:
        raw = self.get(name, str, DURATION_FORM, None)
        if raw is None:
            return default
        try:
            seconds = parse_duration(raw)
        except DurationError as error:
            raise self.error(name, str(error)) from None
        if seconds < minimum:
            raise self.error(name, f"must be at least {format_duration(minimum, exact=True)}, got {raw!r}")
        return seconds

    def string_list(self, name: str, default: list[str] | None = None) -> list[str] | None:
        value = self.get(name, list, "a list of strings", None)
        if value is None:
            return default
        for item in value:
            if not isinstance(item, str):
                raise self.error(name, f"expected a list of strings, found {_describe(item)}")
        return list(value)

    def glob_list(self, name: str, default: list[str] | None = None) -> list[str] | None:
        value = self.get(name, (list, str), "a glob or a list of globs", None)
        if value is None:
            return default
        globs = [value] if isinstance(value, str) else value
        for pattern in globs:
            if not isinstance(pattern, str):
                raise self.error(name, f"expected a list of globs, found {_describe(pattern)}")
            problem = glob_problem(pattern)
            if problem:
                raise self.error(name, f"invalid glob {pattern!r}: {problem}")
        return list(globs)

    def table(self, name: str) -> "_Table":
        value = self.get(name, dict, "a table", {})
        return _Table(value, self.source, f"{self.key(name)}.")

    def reject_unknown(self) -> None:
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            known = ", ".join(sorted(self.seen))
            raise ConfigError(self.source, self.key(unknown[0]), f"unknown key; known keys here: {known}")


def _describe(value: object) -> str:
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (int, float)):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


# --- sections ---------------------------------------------------------------


def _read_rule(table: _Table, channels: dict) -> Rule:
    name = table.string("name", required=True)
    if not name.strip():
        raise table.error("name", "must not be empty")
    metric = table.string("metric", required=True)
    if metric not in CATALOG:
        known = ", ".join(sorted(CATALOG))
        raise table.error("metric", f"unknown metric {metric!r}; known metrics: {known}")
    above = table.number("above")
    below = table.number("below")
    predict = table.number("predict")
    if sum(value is not None for value in (above, below, predict)) != 1:
        raise table.error("above", "set exactly one of 'above', 'below' or 'predict'")
    if predict is not None:
        return _read_forecast_rule(table, name, metric, predict, channels)
    comparison = "above" if above is not None else "below"
    threshold = above if above is not None else below

    clear_below = table.number("clear_below")
    clear_above = table.number("clear_above")
    if comparison == "above":
        if clear_above is not None:
            raise table.error("clear_above", "an 'above' rule clears with 'clear_below'")
        clear = threshold if clear_below is None else clear_below
        if clear > threshold:
            raise table.error("clear_below", f"must be at or below the threshold {threshold:g}, got {clear:g}")
    else:
        if clear_below is not None:
            raise table.error("clear_below", "a 'below' rule clears with 'clear_above'")
        clear = threshold if clear_above is None else clear_above
        if clear < threshold:
            raise table.error("clear_above", f"must be at or above the threshold {threshold:g}, got {clear:g}")

    rule = Rule(name=name, metric=metric, comparison=comparison, threshold=threshold, clear=clear,
                **_common_rule_fields(table, channels))
    table.reject_unknown()
    return rule


def _common_rule_fields(table: _Table, channels: dict) -> dict:
    """Read the keys that threshold and forecast rules share."""
    severity = table.string("severity", "warning")
    if severity not in SEVERITIES:
        raise table.error("severity", f"expected one of {', '.join(SEVERITIES)}, got {severity!r}")

    labels = _read_label_globs(table.table("labels"))

    notify = table.string_list("notify")
    for channel in notify or []:
        if channel not in channels:
            raise table.error("notify", f"unknown channel {channel!r}; define it under [notify.channels]")

    return {
        "for_seconds": table.duration("for", 0.0),
        "severity": severity,
        "hosts": table.glob_list("hosts", ["*"]),
        "labels": labels,
        "auto_resolve": table.get("auto_resolve", bool, "true or false", False),
        "remind_every": table.duration("remind_every", None, minimum=60.0),
        "flap_max": _positive_int(table, "flap_max", 6),
        "flap_window": table.duration("flap_window", 1800.0, minimum=60.0),
        "notify": notify,
        "description": table.string("description", ""),
    }


def _positive_int(table: _Table, name: str, default: int) -> int:
    value = table.get(name, int, "a whole number", default)
    if value < 1:
        raise table.error(name, f"must be at least 1, got {value}")
    return value


def _read_forecast_rule(table: _Table, name: str, metric: str, predict: float, channels: dict) -> Rule:
    within = table.duration("within", None, minimum=60.0)
    if within is None:
        raise table.error("within", 'missing; a predict rule needs it, e.g. within = "6h"')
    window = table.duration("window", 3600.0, minimum=300.0)
    rule = Rule(name=name, metric=metric, comparison="below", threshold=within, clear=within, predict=predict,
                window=window, **_common_rule_fields(table, channels))
    table.reject_unknown()
    return rule


def _read_label_globs(labels_table: _Table) -> dict[str, str]:
    labels = {}
    for label, pattern in labels_table.data.items():
        labels_table.seen.add(label)
        if not isinstance(pattern, str):
            raise labels_table.error(label, f"expected a glob string, got {_describe(pattern)}")
        problem = glob_problem(pattern)
        if problem:
            raise labels_table.error(label, f"invalid glob {pattern!r}: {problem}")
        labels[label] = pattern
    return labels


def _read_notify(table: _Table) -> NotifySettings:
    channels_table = table.table("channels")
    channels = {}
    for name, urls in channels_table.data.items():
        channels_table.seen.add(name)
        if isinstance(urls, str):
            urls = [urls]
        if not isinstance(urls, list) or not all(isinstance(url, str) for url in urls):
            raise channels_table.error(name, "expected a list of Apprise URLs")
        for url in urls:
            if "://" not in url:
                raise channels_table.error(name, f"invalid Apprise URL {mask_url(url)!r}: expected SCHEME://…")
        channels[name] = urls
    default = table.string_list("default", [])
    for name in default:
        if name not in channels:
            raise table.error("default", f"unknown channel {name!r}; define it under [notify.channels]")
    settings = NotifySettings(
        default=default,
        channels=channels,
        retry_initial=table.duration("retry_initial", 30.0, minimum=0.1),
        retry_max=table.duration("retry_max", 900.0, minimum=0.1),
        give_up_after=table.duration("give_up_after", 86400.0, minimum=1.0),
        timeout=table.duration("timeout", 10.0, minimum=0.5),
        fallback=table.string("fallback"),
        fallback_after=table.duration("fallback_after", 900.0, minimum=1.0),
        storm_threshold=_positive_int(table, "storm_threshold", 5),
        storm_window=table.duration("storm_window", 300.0, minimum=10.0),
    )
    if settings.fallback is not None and settings.fallback not in channels:
        raise table.error("fallback", f"unknown channel {settings.fallback!r}; define it under [notify.channels]")
    table.reject_unknown()
    return settings


def _read_disks(table: _Table) -> DiskSettings:
    settings = DiskSettings(
        skip_fstypes=table.string_list("skip_fstypes", list(DEFAULT_SKIP_FSTYPES)),
        skip_tmpfs_under=table.string_list("skip_tmpfs_under", list(DEFAULT_SKIP_TMPFS_UNDER)),
        skip_mounts=table.glob_list("skip_mounts", []),
        **_read_watch(table),
    )
    table.reject_unknown()
    return settings


WATCH_EVERY_MINIMUM = 30.0
WATCH_BUDGET_MINIMUM = 0.1


def _read_watch(table: _Table) -> dict:
    """Read the [disks] keys of directory watching: watch, watch_every, watch_budget, watch_max_files, watch_top."""
    paths = []
    for item in table.get("watch", list, "a list of absolute directory paths", []):
        if not isinstance(item, str):
            raise table.error("watch", f"expected a list of absolute directory paths, found {_describe(item)}")
        if not item.startswith("/"):
            raise table.error("watch", f"{item!r} is not an absolute path; write it from /, such as \"/var/log\"")
        path = os.path.normpath(item)
        if path in paths:
            raise table.error("watch", f"{item!r} is listed twice; remove one")
        paths.append(path)
    every = table.duration("watch_every", 300.0, minimum=WATCH_EVERY_MINIMUM)
    budget = table.duration("watch_budget", 5.0, minimum=WATCH_BUDGET_MINIMUM)
    if budget > every:
        raise table.error("watch_budget", f"must not be longer than watch_every ({format_duration(every, exact=True)})"
                                          f", got {format_duration(budget, exact=True)}")
    top = table.get("watch_top", int, "a whole number", 10)
    if top < 0:
        raise table.error("watch_top", f"must be 0 or more, got {top}")
    return {"watch": paths, "watch_every": every, "watch_budget": budget,
            "watch_max_files": _positive_int(table, "watch_max_files", 200000), "watch_top": top}


def watch_warnings(disks: DiskSettings, source: str) -> list[str]:
    """Return a warning for each watched path that is missing or not a directory on this machine.

    These are warnings, not errors, because such a path may appear later and
    siqctl may check the config on another machine than the watched host.
    """
    warnings = []
    for path in disks.watch:
        if not os.path.exists(path):
            warnings.append(f"{source}: disks.watch: {path} does not exist; siqd sizes it once it appears")
        elif not os.path.isdir(path):
            warnings.append(f"{source}: disks.watch: {path} is not a directory; siqd skips it, so list a "
                            "directory instead")
    return warnings


def _read_retention(table: _Table) -> dict:
    raw = table.duration("raw", 48 * 3600.0, minimum=3600.0)
    rollup = table.duration("rollup", 90 * 86400.0, minimum=86400.0)
    table.reject_unknown()
    return {"retention_raw": raw, "retention_rollup": rollup}


def _read_buffer(table: _Table) -> dict:
    path = table.string("path")
    max_rounds = table.get("max_rounds", int, "a whole number of rounds", 8640)
    if max_rounds < 1:
        raise table.error("max_rounds", f"must be at least 1, got {max_rounds}")
    table.reject_unknown()
    return {"buffer_path": Path(path).expanduser() if path else None, "buffer_max_rounds": max_rounds}


LISTEN_FORM = 'HOST:PORT with an IP address, such as "127.0.0.1:8765", "[::1]:8765" or "0.0.0.0:8765"'
# Token characters are safe in an Authorization header, a cookie and a query string.
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9._~+/=-]+")
TOKEN_MIN_LENGTH = 16


def split_host_port(text: str, form: str) -> tuple[str, int]:
    """Split "host:port" or "[v6]:port" into host and port; raise ValueError naming `form` when it is not."""
    host, colon, port_text = text.rpartition(":")
    if not colon or not host:
        raise ValueError(f"expected {form}, got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if ":" not in host:
            raise ValueError(f"brackets are for IPv6 addresses only, got {text!r}; expected {form}")
    elif ":" in host:
        raise ValueError(f"write an IPv6 address in brackets, such as \"[::1]:8765\", got {text!r}")
    if not host or any(character.isspace() for character in host):
        raise ValueError(f"invalid host in {text!r}; expected {form}")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"invalid port {port_text!r} in {text!r}; expected a number from 1 to 65535")
    return host, int(port_text)


def parse_listen(text: str) -> tuple[str, int]:
    """Split a listen address such as "127.0.0.1:8765" or "[::1]:8765" into host and port.

    The host must be an IP address or "localhost". Raises ValueError with the reason.
    """
    import ipaddress

    host, port = split_host_port(text, LISTEN_FORM)
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"invalid IP address {host!r} in {text!r}; expected {LISTEN_FORM}") from None
    return host, port


def is_loopback(host: str) -> bool:
    """Tell whether a listen host from parse_listen is reachable from this machine only."""
    import ipaddress

    return host == "localhost" or ipaddress.ip_address(host).is_loopback


def _read_web(table: _Table) -> dict:
    listen = table.string("listen")
    token = table.string("token")
    table.reject_unknown()
    if token is not None:
        if len(token) < TOKEN_MIN_LENGTH:
            raise table.error("token", f"too short ({len(token)} characters); use at least {TOKEN_MIN_LENGTH}, "
                                       "for example the output of: openssl rand -hex 24")
        if not TOKEN_PATTERN.fullmatch(token):
            raise table.error("token", "may contain only letters, digits and - . _ ~ + / =; "
                                       "for example the output of: openssl rand -hex 24")
    if listen is not None:
        try:
            host, _ = parse_listen(listen)
        except ValueError as error:
            raise table.error("listen", str(error)) from None
        if token is None and not is_loopback(host):
            raise table.error("listen", f"{listen!r} is reachable from other machines and web.token is not set; "
                                        "set web.token or listen on 127.0.0.1")
    return {"web_listen": listen, "web_token": token}


def parse_config(data: dict, source: str, path: Path | None = None) -> Config:
    """Build a Config from parsed TOML `data`; raise ConfigError on the first problem."""
    root = _Table(data, source, "")
    host = root.string("host")
    if host is None:
        host = default_host()
    elif not host.strip():
        raise root.error("host", "must not be empty; leave it out to use this machine's hostname")
    store = root.string("store")
    if store is not None:
        problem = store_problem(store)
        if problem:
            raise root.error("store", problem)
    dashboard_url = root.string("dashboard_url")
    if dashboard_url is not None and not dashboard_url.startswith(("http://", "https://")):
        raise root.error("dashboard_url", f"expected an http:// or https:// URL, got {dashboard_url!r}")
    log_level = root.string("log_level", "info")
    if log_level not in ("debug", "info", "warning", "error"):
        raise root.error("log_level", f"expected debug, info, warning or error, got {log_level!r}")

    timezone = root.string("timezone")
    if timezone is not None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise root.error("timezone", f"unknown time zone {timezone!r}; expected an IANA name such as "
                                         "'Europe/Berlin' or 'UTC'") from None

    notify = _read_notify(root.table("notify"))

    rules = []
    raw_rules = root.get("rule", list, "an array of tables ([[rule]])", [])
    names = set()
    for index, raw in enumerate(raw_rules):
        if not isinstance(raw, dict):
            raise ConfigError(source, f"rule[#{index + 1}]", "expected a table ([[rule]])")
        # Errors name the rule by its name when it has a usable one, else by
        # its position in the file, counting from 1.
        name = raw.get("name")
        label = name if isinstance(name, str) and name.strip() and "]" not in name else f"#{index + 1}"
        rule = _read_rule(_Table(raw, source, f"rule[{label}]."), notify.channels)
        if rule.name in names:
            raise ConfigError(source, f"rule[#{index + 1}].name", f"duplicate rule name {rule.name!r}")
        names.add(rule.name)
        rules.append(rule)

    config = Config(
        path=path,
        host=host.strip(),
        store=store or "",
        interval=root.duration("interval", 10.0, minimum=1.0),
        dashboard_url=dashboard_url.rstrip("/") if dashboard_url else None,
        log_level=log_level,
        timezone=timezone,
        **_read_retention(root.table("retention")),
        startup_grace=root.duration("startup_grace", 0.0),
        stale_after=root.duration("stale_after", None, minimum=1.0),
        **_read_buffer(root.table("buffer")),
        disks=_read_disks(root.table("disks")),
        notify=notify,
        rules=rules if "rule" in data else default_rules(),
        **_read_web(root.table("web")),
    )
    raw_checks = root.get("check", list, "an array of tables ([[check]])", [])
    if raw_checks:
        # Imported only for configs with checks, to keep siqd small without them.
        from siqd.checks.config import read_checks

        config.checks = read_checks(raw_checks, source, config)
    raw_heartbeats = root.get("heartbeat", list, "an array of tables ([[heartbeat]])", [])
    if raw_heartbeats:
        from siqd.heartbeats import read_heartbeats

        config.heartbeats = read_heartbeats(raw_heartbeats, source, config)
    root.reject_unknown()
    config.warnings.extend(watch_warnings(config.disks, source))
    if config.web_token is not None and config.web_listen is None:
        config.warnings.append(f"{source}: web.token is set but web.listen is not, so siqd serves no dashboard; "
                               'set web.listen = "127.0.0.1:8765" to turn it on')
    if not config.store:
        config.store = sqlite_location(paths.default_data_dir() / "siq.db")
    if path is not None:
        config.store = _anchor_store(config.store, path.parent)
        if config.buffer_path is not None and not config.buffer_path.is_absolute():
            config.buffer_path = (path.parent / config.buffer_path).resolve()
    if "startup_grace" not in data:
        config.startup_grace = 2 * config.interval
    if config.buffer_path is None:
        config.buffer_path = paths.default_data_dir() / f"buffer-{config.host}.db"
    return config


def load_config(path: Path | None) -> Config:
    """Read and validate the TOML file at `path`; None gives the built-in defaults."""
    if path is None:
        return parse_config({}, "built-in defaults")
    source = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(source, "", "file not found; create one with 'siqctl init'") from None
    except OSError as error:
        raise ConfigError(source, "", f"cannot read: {error.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(source, "", "not UTF-8 text") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(source, "", f"invalid TOML: {error}") from None
    config = parse_config(data, source, path)
    if any(url_has_secret(url) for urls in config.notify.channels.values() for url in urls):
        mode = path.stat().st_mode
        if mode & stat.S_IROTH:
            config.warnings.append(
                f"{source} contains notification URLs that look like they carry secrets (a password or "
                f"a token) and is readable by every user; "
                f"run: chmod o-r {source}"
            )
    secret_headers = [check.name for check in config.checks
                      if any(re.search(r"auth|cookie|token|key|secret|pass", header, re.IGNORECASE)
                             for header in getattr(check.options, "headers", None) or {})]
    if secret_headers and path.stat().st_mode & stat.S_IROTH:
        config.warnings.append(
            f"{source} sends credentials in the headers of check {secret_headers[0]!r} and is readable by "
            f"every user; run: chmod o-r {source}"
        )
    if config.web_token is not None and path.stat().st_mode & stat.S_IROTH:
        config.warnings.append(
            f"{source} contains web.token, the dashboard's secret, and is readable by every user; "
            f"run: chmod o-r {source}"
        )
    return config


def find_config_file(explicit: str | None = None) -> Path | None:
    """Return the config file to use: --config, then $SIQ_CONFIG, then the user and site locations.

    An explicit path (option or variable) is returned even if it does not
    exist, so that the error names it; otherwise None means "use defaults".
    """
    if explicit:
        return Path(explicit).expanduser()
    from_env = os.environ.get("SIQ_CONFIG")
    if from_env:
        return Path(from_env).expanduser()
    for candidate in paths.config_search_path():
        if candidate.is_file():
            return candidate
    return None


def default_host() -> str:
    """Return this machine's hostname (os.uname is gethostname without importing socket)."""
    return os.uname().nodename


# --- store locations --------------------------------------------------------


def store_problem(store: str) -> str | None:
    """Return why `store` is not a usable store location, or None."""
    if store.startswith(("postgresql://", "postgres://")):
        return None
    if store.startswith("sqlite:"):
        if not store.startswith("sqlite://"):
            return f"invalid SQLite location {store!r}; expected sqlite:///ABSOLUTE/PATH.db or a file path"
        if not store[len("sqlite://"):].strip("/"):
            return "expected sqlite:///PATH/TO/FILE.db, got no path"
        return None
    if "://" in store:
        return f"unsupported store {store.split('://')[0]!r}; expected sqlite:///PATH or postgresql://USER@HOST/DB"
    if not store.strip():
        return "must not be empty"
    return None


def sqlite_location(path: Path) -> str:
    """Return the store location of an SQLite file: "sqlite:///var/lib/siq/siq.db" for an absolute path."""
    text = str(path)
    return f"sqlite://{text}" if text.startswith("/") else f"sqlite:///./{text}"


def checked_store(store: str, source: str = "--store") -> str:
    """Validate a store location given on the command line; relative paths are taken from the working folder."""
    problem = store_problem(store)
    if problem:
        raise ConfigError(source, "", problem)
    return _anchor_store(store, Path.cwd())


def sqlite_path(store: str) -> Path | None:
    """Return the database file of an SQLite store location, or None for another kind."""
    if store.startswith("sqlite://"):
        rest = store[len("sqlite://"):]
        if rest.startswith("//"):  # sqlite:////abs/path, SQLAlchemy style
            rest = rest[1:]
        elif rest.startswith("/./") or rest.startswith("/../"):  # sqlite:///./rel.db
            rest = rest[1:]
        return Path(rest).expanduser()
    if "://" in store:
        return None
    return Path(store).expanduser()


def _anchor_store(store: str, base: Path) -> str:
    """Resolve a relative SQLite path against the config file's folder."""
    path = sqlite_path(store)
    if path is None or path.is_absolute():
        return store
    return sqlite_location((base / path).resolve())


# --- masking ----------------------------------------------------------------


def mask_url(url: str) -> str:
    """Hide the secrets of an Apprise URL: password, path tokens and query values.

    The scheme and host stay visible so a person can tell targets apart:
    "json://****@127.0.0.1:8080/****".
    """
    if "://" not in url:
        return "****"
    scheme, rest = url.split("://", 1)
    rest, _, query = rest.partition("?")
    authority, slash, path = rest.partition("/")
    userinfo, at, hostport = authority.rpartition("@")
    # The user part can be a secret too (Pushover's user key, a Telegram bot
    # token), so only the host stays, and only when it looks like a host name.
    host = hostport if at else authority
    shown_host = host if _looks_like_host(host) else "****"
    authority = f"****@{shown_host}" if at else shown_host
    masked = f"{scheme}://{authority}"
    if slash and path:
        masked += "/****"
    if query:
        keys = [part.split("=", 1)[0] for part in query.split("&") if part]
        masked += "?" + "&".join(f"{key}=****" for key in keys)
    return masked


def url_has_secret(url: str) -> bool:
    """Tell whether an Apprise URL looks like it carries a secret: user info, a token-like path or query value,
    or a token in place of a host name."""
    if "://" not in url:
        return False
    rest = url.split("://", 1)[1]
    rest, _, query = rest.partition("?")
    authority, _, path = rest.partition("/")
    if "@" in authority or not _looks_like_host(authority):
        return True
    values = [segment for segment in path.split("/")] + [part.partition("=")[2] for part in query.split("&")]
    return any(len(value) >= 8 for value in values)


def _looks_like_host(authority: str) -> bool:
    host = authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority
    if host in ("localhost",) or host.startswith("["):
        return True
    if "." in host and all(part.isalnum() or "-" in part for part in host.split(".") if part):
        return True
    return False


def masked_location(store: str) -> str:
    """Return a store location with any password (in the user info or a password= parameter) as ****."""
    masked = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1****@", store)
    return re.sub(r"([?&]password=)[^&]*", r"\1****", masked)


def location_secrets(store: str) -> list[str]:
    """Return the password strings in a store location, raw and percent-decoded, for scrubbing messages."""
    from urllib.parse import unquote

    found = re.findall(r"://[^:/@]*:([^@]*)@", store) + re.findall(r"[?&]password=([^&]*)", store)
    secrets = set()
    for secret in found:
        if secret:
            secrets.update({secret, unquote(secret)})
    return sorted(secrets, key=len, reverse=True)


def masked_channels(settings: NotifySettings) -> dict[str, list[str]]:
    return {name: [mask_url(url) for url in urls] for name, urls in settings.channels.items()}


# --- defaults and the starter file -------------------------------------------


def default_rule_tables() -> list[dict]:
    """Return the starter rules as TOML tables; `siqctl init` writes these."""
    return [
        {"name": "disk-full", "metric": "disk.used_percent", "above": 90, "clear_below": 85,
         "for": "5m", "severity": "critical",
         "description": "A full filesystem stops writes (databases, logs, uploads). "
                        "Check first: du -xh --max-depth=2 on the mount; logs and old releases."},
        {"name": "disk-filling", "metric": "disk.used_percent", "predict": 100, "within": "6h",
         "window": "1h", "severity": "warning",
         "description": "At the growth of the last hour this filesystem is full within 6 hours. "
                        "Check first: what is writing (iotop, growing logs, a stuck job)."},
        {"name": "inodes-full", "metric": "disk.inodes_used_percent", "above": 90, "clear_below": 85,
         "for": "5m", "severity": "critical",
         "description": "Without free inodes no file can be created, even with space left. "
                        "Check first: folders with many small files (sessions, caches, mail queues)."},
        {"name": "memory-high", "metric": "memory.used_percent", "above": 95, "clear_below": 90,
         "for": "10m", "severity": "warning",
         "description": "Little memory is available; the OOM killer may end a service next. "
                        "Check first: ps aux --sort=-rss | head, and recent deploys."},
        {"name": "swap-high", "metric": "swap.used_percent", "above": 80, "clear_below": 60,
         "for": "15m", "severity": "warning",
         "description": "Heavy swapping makes everything slow. "
                        "Check first: which processes grew (ps aux --sort=-rss) and vmstat 5."},
        {"name": "cpu-busy", "metric": "cpu.percent", "above": 95, "clear_below": 80,
         "for": "15m", "severity": "warning",
         "description": "All cores busy for a long time: requests queue up. "
                        "Check first: top -o %CPU; a runaway process or a traffic spike."},
        {"name": "load-high", "metric": "load.per_core_15m", "above": 2.0, "clear_below": 1.5,
         "for": "15m", "severity": "warning",
         "description": "More runnable or I/O-blocked tasks than cores can serve. "
                        "Check first: top for CPU, iostat -x 5 for disks waiting."},
    ]


def default_rules() -> list[Rule]:
    return [
        _read_rule(_Table(raw, "built-in defaults", f"rule[{index}]."), {})
        for index, raw in enumerate(default_rule_tables())
    ]


def starter_config_text(host: str, store: str) -> str:
    """Return the starter config that `siqctl init` writes, as TOML text."""
    import tomli_w

    body = {
        "host": host,
        "store": store,
        "interval": "10s",
        "notify": {"default": [], "channels": {}},
        "rule": default_rule_tables(),
    }
    header = (
        "# siq configuration. Check it with: siqctl config check\n"
        "#\n"
        "# To get notified, add Apprise URLs to a channel and name it as a default:\n"
        "#   [notify]\n"
        '#   default = ["team"]\n'
        "#   [notify.channels]\n"
        '#   team = ["mailto://user:password@mail.example.com?to=ops@example.com"]\n'
        "# This file then holds secrets: keep it readable by siq's users only.\n"
        "#\n"
        "# dashboard_url = \"http://monitor.internal:8765\"   # used for links in notifications\n"
        "#\n"
        "# siqd sizes watched directories and their largest subdirectories, so that\n"
        "# 'siqctl disk HOST' shows what grew over the last 6 hours:\n"
        "#   [disks]\n"
        "#   watch = [\"/var/log\", \"/var/lib/docker\"]   # absolute directory paths\n"
        "#   watch_every = \"5m\"         # how often each path is sized; at least 30s\n"
        "#   watch_budget = \"5s\"        # time one scan of one path may take\n"
        "#   watch_max_files = 200000   # files one scan of one path may count\n"
        "#   watch_top = 10             # largest subdirectories kept per path\n"
        "# A scan that reaches its time or file limit stops, and its sizes are marked partial.\n"
        "#\n"
        "# siqd serves a web dashboard and Prometheus /metrics when [web] listen is set:\n"
        "#   [web]\n"
        "#   listen = \"127.0.0.1:8765\"   # another address than loopback needs a token\n"
        "#   token = \"…\"                 # at least 16 characters, e.g. from: openssl rand -hex 24\n"
        "# Browsers open http://HOST:8765/?token=TOKEN once; scripts and Prometheus send the header\n"
        "# Authorization: Bearer TOKEN. A token is a secret, as notification URLs are.\n\n"
    )
    return header + tomli_w.dumps(body)


def effective_settings(config: Config) -> dict:
    """Return the effective settings as plain data, every notification URL masked."""
    rules = []
    for rule in config.rules:
        if rule.predict is not None:
            condition = {"predict": rule.predict, "within": format_duration(rule.threshold, exact=True),
                         "window": format_duration(rule.window, exact=True)}
        else:
            condition = {rule.comparison: rule.threshold,
                         ("clear_below" if rule.comparison == "above" else "clear_above"): rule.clear}
        entry = {
            "name": rule.name,
            "metric": rule.metric,
            **condition,
            "for": format_duration(rule.for_seconds, exact=True),
            "severity": rule.severity,
            "hosts": rule.hosts,
            "auto_resolve": rule.auto_resolve,
            "remind_every": format_duration(rule.remind_every, exact=True) if rule.remind_every else "off",
            "flap_max": rule.flap_max,
            "flap_window": format_duration(rule.flap_window, exact=True),
            "notify": rule.notify if rule.notify is not None else config.notify.default,
        }
        if rule.labels:
            entry["labels"] = rule.labels
        if rule.description:
            entry["description"] = rule.description
        rules.append(entry)
    return {
        "host": config.host,
        "store": masked_location(config.store),
        "interval": format_duration(config.interval, exact=True),
        "dashboard_url": config.dashboard_url or "",
        "log_level": config.log_level,
        "timezone": config.timezone or "local",
        "startup_grace": format_duration(config.startup_grace, exact=True),
        "stale_after": format_duration(config.stale_after, exact=True) if config.stale_after else
        "3 intervals of the silent host, at least 60s",
        "retention": {"raw": format_duration(config.retention_raw, exact=True),
                      "rollup": format_duration(config.retention_rollup, exact=True)},
        **({"buffer": {"path": str(config.buffer_path), "max_rounds": config.buffer_max_rounds}}
           if config.store.startswith("postgres") else {}),
        "disks": {
            "skip_fstypes": config.disks.skip_fstypes,
            "skip_tmpfs_under": config.disks.skip_tmpfs_under,
            "skip_mounts": config.disks.skip_mounts,
            "watch": config.disks.watch,
            "watch_every": format_duration(config.disks.watch_every, exact=True),
            "watch_budget": format_duration(config.disks.watch_budget, exact=True),
            "watch_max_files": config.disks.watch_max_files,
            "watch_top": config.disks.watch_top,
        },
        "notify": {
            "default": config.notify.default,
            "retry_initial": format_duration(config.notify.retry_initial, exact=True),
            "retry_max": format_duration(config.notify.retry_max, exact=True),
            "give_up_after": format_duration(config.notify.give_up_after, exact=True),
            "timeout": format_duration(config.notify.timeout, exact=True),
            "fallback": config.notify.fallback or "",
            "fallback_after": format_duration(config.notify.fallback_after, exact=True),
            "storm_threshold": config.notify.storm_threshold,
            "storm_window": format_duration(config.notify.storm_window, exact=True),
            "channels": masked_channels(config.notify),
        },
        "web": {"listen": config.web_listen or "off", "token": "****" if config.web_token else ""},
        "rule": rules,
        **({"check": _check_settings(config)} if config.checks else {}),
        **({"heartbeat": _heartbeat_settings(config)} if config.heartbeats else {}),
    }


def _check_settings(config: Config) -> list[dict]:
    from siqd.checks.config import check_settings

    return [check_settings(check) for check in config.checks]


def _heartbeat_settings(config: Config) -> list[dict]:
    from siqd.heartbeats import heartbeat_settings

    return [heartbeat_settings(heartbeat, config.notify.default) for heartbeat in config.heartbeats]
