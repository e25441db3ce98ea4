"""Config fuzzing: whatever a config file holds, loading it gives a Config or one clean ConfigError line."""

import subprocess

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import BIN
from siqd.config import ConfigError, load_config, parse_config

TOP_KEYS = ["host", "store", "interval", "dashboard_url", "log_level", "timezone", "startup_grace", "stale_after"]
TABLE_KEYS = {
    "notify": ["default", "channels", "retry_initial", "retry_max", "give_up_after", "timeout", "fallback",
               "fallback_after", "storm_threshold", "storm_window"],
    "disks": ["skip_fstypes", "skip_tmpfs_under", "skip_mounts", "watch", "watch_every", "watch_budget",
              "watch_max_files", "watch_top"],
    "retention": ["raw", "rollup"],
    "buffer": ["path", "max_rounds"],
    "web": ["listen", "token"],
}
ARRAY_KEYS = {
    "rule": ["name", "metric", "above", "below", "predict", "within", "window", "clear_below", "clear_above", "for",
             "severity", "hosts", "labels", "auto_resolve", "remind_every", "flap_max", "flap_window", "notify",
             "description"],
    "check": ["name", "type", "every", "timeout", "for", "severity", "alert_on", "notify", "description", "url",
              "method", "expect_status", "max_latency", "body_contains", "body_regex", "headers",
              "follow_redirects", "tls_warn_days", "ca_file", "address", "process", "cmdline", "min", "max", "unit",
              "command"],
    "heartbeat": ["name", "period", "cron", "grace", "max_runtime", "host", "severity", "notify", "description"],
}

# Values near what the keys expect, and values that are plainly wrong.
plausible_text = st.sampled_from([
    "", " ", "5m", "10s", "0s", "-1s", "1h30m", "2x", "90", "disk.used_percent", "cpu.percent", "nope.metric",
    "critical", "warning", "info", "above", "*", "[", "web-*", "127.0.0.1:8765", "[::1]:8765", "0.0.0.0:80",
    "localhost:99999", "http://127.0.0.1:9/", "https://127.0.0.1:9/x", "json://127.0.0.1:9", "sqlite:///tmp/x.db",
    "sqlite:relative", "postgresql://siq@127.0.0.1/siq", "mysql://x", "Europe/Berlin", "Mars/Olympus", "0 3 * * *",
    "61 * * * *", "/usr/lib/nagios/plugins/check_tcp", "/no/such/plugin", "200-299", "2xx", "(unclosed", "ops",
    "a" * 300, "ünïcödé", "tcp", "http", "process", "systemd", "command", "bogus",
])
scalar = st.one_of(plausible_text, st.text(max_size=20), st.integers(-10**6, 10**6),
                   st.floats(allow_nan=True, allow_infinity=True), st.booleans())
value = st.recursive(scalar, lambda children: st.one_of(st.lists(children, max_size=4),
                                                        st.dictionaries(st.text(max_size=8), children, max_size=4)),
                     max_leaves=8)


def table_of(keys: list[str]) -> st.SearchStrategy:
    return st.dictionaries(st.sampled_from(keys + ["unknown_key"]), value, max_size=6)


config_data = st.fixed_dictionaries({}, optional={
    **{key: value for key in TOP_KEYS},
    **{name: st.one_of(table_of(keys), value) for name, keys in TABLE_KEYS.items()},
    **{name: st.one_of(st.lists(st.one_of(table_of(keys), value), max_size=3), value)
       for name, keys in ARRAY_KEYS.items()},
    "extra": value,
})


def assert_clean(error: ConfigError, source: str) -> None:
    text = str(error)
    assert "\n" not in text, text
    assert text.startswith(source), text
    assert "Traceback" not in text


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config_data)
def test_any_config_data_loads_or_fails_cleanly(data):
    try:
        parse_config(data, "fuzz.toml")
    except ConfigError as error:
        assert_clean(error, "fuzz.toml")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_file_bytes_load_or_fail_cleanly(tmp_path, raw):
    path = tmp_path / "siq.toml"
    path.write_bytes(raw)
    try:
        load_config(path)
    except ConfigError as error:
        assert_clean(error, str(path))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(config_data)
def test_config_check_command_never_shows_a_traceback(tmp_path, data):
    import tomli_w

    def printable(item):
        """TOML cannot hold every Python value (no NaN keys, no None); keep what it can."""
        if isinstance(item, dict):
            return {str(key): printable(val) for key, val in item.items()}
        if isinstance(item, list):
            return [printable(val) for val in item]
        return item

    path = tmp_path / "siq.toml"
    try:
        path.write_text(tomli_w.dumps(printable(data)))
    except (TypeError, ValueError):
        return  # not expressible as TOML; the parse_config property covers the data
    path.chmod(0o600)
    result = subprocess.run([str(BIN / "siqctl"), "config", "check", str(path)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode in (0, 2), result.stderr
    assert "Traceback" not in result.stderr
    if result.returncode == 2:
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, result.stderr
