"""Tests of `siqctl init`, `siqctl config check` and the config helpers they rely on."""

import subprocess
import json
import stat
import tomllib

import pytest

from siqd.config import glob_problem, mask_url
from siqd.durations import DurationError, format_duration, parse_duration

SECRET_URL = "json://user:s3cretpass@127.0.0.1:9/tok3nvalue"
WITH_CHANNEL = f'[notify]\ndefault = ["team"]\n[notify.channels]\nteam = ["{SECRET_URL}"]\n'
CPU_RULE = '[[rule]]\nname = "cpu"\nmetric = "cpu.percent"\nabove = 90\n'


def init(siq, *args):
    """Run `siqctl init` with a store in the test folder, so nothing lands in the real data folder."""
    return siq.siqctl("init", "--store", siq.store_url, *args)


def check_file(siq, text, mode=0o600):
    """Write `text` to bad.toml in the test folder and run `siqctl config check` on it."""
    path = siq.folder / "bad.toml"
    path.write_text(text)
    path.chmod(mode)
    return path, siq.siqctl("config", "check", str(path))


# --- siqctl init ---------------------------------------------------------------------------


def test_init_writes_file(siq):
    target = siq.folder / "new.toml"
    result = init(siq, "--path", str(target), "--host", "db-1")
    assert result.returncode == 0, result.stderr
    assert target.is_file()
    assert str(target) in result.stdout


def test_init_default_rules(siq):
    target = siq.folder / "new.toml"
    init(siq, "--path", str(target))
    data = tomllib.loads(target.read_text())
    names = [rule["name"] for rule in data["rule"]]
    assert "disk-full" in names
    assert "memory-high" in names
    assert len(names) == len(set(names))


def test_init_no_notification_targets(siq):
    target = siq.folder / "new.toml"
    init(siq, "--path", str(target))
    data = tomllib.loads(target.read_text())
    assert data["notify"]["default"] == []
    assert data["notify"]["channels"] == {}


def test_init_sets_host_and_store(siq):
    target = siq.folder / "new.toml"
    init(siq, "--path", str(target), "--host", "db-1")
    data = tomllib.loads(target.read_text())
    assert data["host"] == "db-1"
    assert data["store"] == siq.store_url


def test_init_creates_parent_folders(siq):
    target = siq.folder / "etc" / "siq" / "siq.toml"
    result = init(siq, "--path", str(target))
    assert result.returncode == 0, result.stderr
    assert target.is_file()


def test_init_file_not_world_readable(siq):
    target = siq.folder / "new.toml"
    init(siq, "--path", str(target))
    mode = target.stat().st_mode
    assert not mode & stat.S_IROTH
    assert not mode & stat.S_IWOTH


def test_init_output_passes_check(siq):
    target = siq.folder / "new.toml"
    init(siq, "--path", str(target))
    result = siq.siqctl("config", "check", str(target))
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr


def test_init_refuses_overwrite(siq):
    target = siq.folder / "new.toml"
    target.write_text("# mine\n")
    result = init(siq, "--path", str(target))
    assert result.returncode == 1
    assert str(target) in result.stderr
    assert "--force" in result.stderr
    assert target.read_text() == "# mine\n"


def test_init_force_overwrites(siq):
    target = siq.folder / "new.toml"
    target.write_text("# mine\n")
    target.chmod(0o600)
    result = init(siq, "--path", str(target), "--force")
    assert result.returncode == 0, result.stderr
    assert "[[rule]]" in target.read_text()


def test_init_force_tightens_mode(siq):
    target = siq.folder / "new.toml"
    target.write_text("# mine\n")
    target.chmod(0o644)
    init(siq, "--path", str(target), "--force")
    assert not target.stat().st_mode & stat.S_IROTH


def test_init_bad_store_exits_2(siq):
    target = siq.folder / "new.toml"
    result = siq.siqctl("init", "--path", str(target), "--store", "mysql://db/siq")
    assert result.returncode == 2
    assert "mysql" in result.stderr
    assert not target.exists()


# --- siqctl config check: valid files --------------------------------------------------------


def test_check_valid_prints_settings(siq):
    siq.write_config('interval = "30s"\n' + CPU_RULE)
    result = siq.siqctl("config", "check", str(siq.config_path))
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout
    assert 'interval = "30s"' in result.stdout
    assert 'name = "cpu"' in result.stdout


def test_check_defaults_to_siq_config(siq):
    siq.write_config('interval = "30s"\n')
    result = siq.siqctl("config", "check")
    assert result.returncode == 0, result.stderr
    assert str(siq.config_path) in result.stdout


def test_check_output_is_toml(siq):
    siq.write_config(CPU_RULE)
    result = siq.siqctl("config", "check", str(siq.config_path))
    settings = tomllib.loads(result.stdout)
    assert settings["host"] == "test-host"
    assert settings["rule"][0]["above"] == 90


def test_check_masks_url_secrets(siq):
    siq.write_config(WITH_CHANNEL)
    result = siq.siqctl("config", "check", str(siq.config_path))
    assert result.returncode == 0, result.stderr
    assert "s3cretpass" not in result.stdout
    assert "tok3nvalue" not in result.stdout
    assert "s3cretpass" not in result.stderr
    assert "tok3nvalue" not in result.stderr
    assert "127.0.0.1:9" in result.stdout


def test_check_json_fields(siq):
    siq.write_config('interval = "30s"\n' + CPU_RULE)
    data = siq.siqctl_json("config", "check", str(siq.config_path))
    assert data["valid"] is True
    assert data["file"] == str(siq.config_path)
    assert data["settings"]["interval"] == "30s"
    assert data["settings"]["host"] == "test-host"
    assert data["settings"]["rule"][0]["name"] == "cpu"
    assert data["settings"]["rule"][0]["above"] == 90


def test_check_json_masks_secrets(siq):
    siq.write_config(WITH_CHANNEL)
    result = siq.siqctl("config", "check", str(siq.config_path), "--json")
    assert result.returncode == 0, result.stderr
    channels = json.loads(result.stdout)["settings"]["notify"]["channels"]
    assert channels == {"team": [mask_url(SECRET_URL)]}
    assert "s3cretpass" not in result.stdout
    assert "tok3nvalue" not in result.stdout


def test_check_rule_defaults_applied(siq):
    siq.write_config(WITH_CHANNEL + CPU_RULE)
    rule = siq.siqctl_json("config", "check", str(siq.config_path))["settings"]["rule"][0]
    assert rule["severity"] == "warning"
    assert rule["for"] == "0s"
    assert rule["hosts"] == ["*"]
    assert rule["notify"] == ["team"]
    assert rule["clear_below"] == 90


def test_check_no_rules_uses_defaults(siq):
    siq.write_config("")
    rules = siq.siqctl_json("config", "check", str(siq.config_path))["settings"]["rule"]
    assert "disk-full" in [rule["name"] for rule in rules]


def test_check_json_exact_durations(siq):
    siq.write_config('interval = "1500ms"\n' + CPU_RULE + 'for = "1h30m45s"\n')
    settings = siq.siqctl_json("config", "check", str(siq.config_path))["settings"]
    assert parse_duration(settings["interval"]) == 1.5
    assert parse_duration(settings["rule"][0]["for"]) == 5445


# --- siqctl config check: world-readable files ---------------------------------------------


def test_check_warns_world_readable(siq):
    siq.write_config(WITH_CHANNEL)
    siq.config_path.chmod(0o644)
    result = siq.siqctl("config", "check", str(siq.config_path))
    assert result.returncode == 0, result.stderr
    assert "warning" in result.stderr
    assert str(siq.config_path) in result.stderr


def test_check_no_warning_private(siq):
    siq.write_config(WITH_CHANNEL)
    siq.config_path.chmod(0o600)
    result = siq.siqctl("config", "check", str(siq.config_path))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_check_no_warning_without_urls(siq):
    siq.write_config("")
    siq.config_path.chmod(0o644)
    result = siq.siqctl("config", "check", str(siq.config_path))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_world_readable_warns_other_commands(siq):
    siq.write_config(WITH_CHANNEL)
    siq.config_path.chmod(0o644)
    result = siq.siqctl("incidents", "list")
    assert result.returncode == 0, result.stderr
    assert "warning" in result.stderr
    assert "s3cretpass" not in result.stderr


# --- siqctl config check: errors --------------------------------------------------------------

RULE_HEAD = '[[rule]]\nname = "cpu"\nmetric = "cpu.percent"\n'

# (case id, config text, key the message must name)
BAD_CONFIGS = [
    ("unknown-top-key", "colour = \"blue\"\n", "colour"),
    ("unknown-rule-key", RULE_HEAD + "above = 90\nthreshold = 5\n", "rule[cpu].threshold"),
    ("interval-number", "interval = 5\n", "interval"),
    ("interval-words", 'interval = "5 minutes"\n', "interval"),
    ("interval-negative", 'interval = "-1s"\n', "interval"),
    ("interval-empty", 'interval = ""\n', "interval"),
    ("interval-below-minimum", 'interval = "500ms"\n', "interval"),
    ("for-words", RULE_HEAD + 'above = 90\nfor = "5 minutes"\n', "rule[cpu].for"),
    ("for-negative", RULE_HEAD + 'above = 90\nfor = "-1s"\n', "rule[cpu].for"),
    ("for-empty", RULE_HEAD + 'above = 90\nfor = ""\n', "rule[cpu].for"),
    ("for-number", RULE_HEAD + "above = 90\nfor = 300\n", "rule[cpu].for"),
    ("bad-glob", RULE_HEAD + 'above = 90\nhosts = ["db-[1"]\n', "rule[cpu].hosts"),
    ("bad-label-glob", RULE_HEAD.replace("cpu.percent", "disk.used_percent") + 'above = 90\nlabels = {mount = "/[a"}\n',
     "rule[cpu].labels.mount"),
    ("above-and-below", RULE_HEAD + "above = 90\nbelow = 10\n", "rule[cpu].above"),
    ("neither-above-nor-below", RULE_HEAD, "rule[cpu].above"),
    ("unknown-metric", '[[rule]]\nname = "cpu"\nmetric = "cpu.temperature"\nabove = 90\n', "rule[cpu].metric"),
    ("clear-past-threshold", RULE_HEAD + "above = 90\nclear_below = 95\n", "rule[cpu].clear_below"),
    ("bad-severity", RULE_HEAD + 'above = 90\nseverity = "urgent"\n', "rule[cpu].severity"),
    ("duplicate-rule", RULE_HEAD + "above = 90\n" + RULE_HEAD + "above = 80\n", "rule[#2].name"),
    ("unknown-default-channel", '[notify]\ndefault = ["team"]\n', "notify.default"),
    ("unknown-rule-channel", RULE_HEAD + 'above = 90\nnotify = ["team"]\n', "rule[cpu].notify"),
    ("url-without-scheme", '[notify.channels]\nteam = ["hooks.example.com/abc"]\n', "notify.channels.team"),
    ("bad-store", 'store = "mysql://db/siq"\n', "store"),
]


@pytest.mark.parametrize("text, key", [case[1:] for case in BAD_CONFIGS], ids=[case[0] for case in BAD_CONFIGS])
def test_check_bad_config(siq, text, key):
    path, result = check_file(siq, text)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert str(path) in result.stderr
    assert key in result.stderr
    assert result.stdout == ""


def test_check_bad_duration_says_form(siq):
    _, result = check_file(siq, 'interval = "5 minutes"\n')
    assert "5 minutes" in result.stderr
    assert '"5m"' in result.stderr


def test_check_bad_glob_names_pattern(siq):
    _, result = check_file(siq, RULE_HEAD + 'above = 90\nhosts = ["db-[1"]\n')
    assert "db-[1" in result.stderr


def test_check_unknown_metric_lists_known(siq):
    _, result = check_file(siq, '[[rule]]\nname = "cpu"\nmetric = "cpu.temperature"\nabove = 90\n')
    assert "cpu.percent" in result.stderr


def test_check_bad_url_masks_secret(siq):
    _, result = check_file(siq, '[notify.channels]\nteam = ["user:s3cretpass@hooks.example.com"]\n')
    assert result.returncode == 2
    assert "s3cretpass" not in result.stderr


def test_check_empty_host(siq):
    _, result = check_file(siq, 'host = ""\n')
    assert result.returncode == 2


def test_check_minimum_message_exact(siq):
    _, result = check_file(siq, '[notify]\nretry_initial = "50ms"\n')
    assert result.returncode == 2
    assert "at least 0s" not in result.stderr


def test_check_invalid_toml(siq):
    path, result = check_file(siq, 'host = "db-1\n')
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert str(path) in result.stderr
    assert "invalid TOML" in result.stderr
    assert "line 1" in result.stderr


def test_check_missing_file(siq):
    path = siq.folder / "missing.toml"
    result = siq.siqctl("config", "check", str(path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert str(path) in result.stderr
    assert "not found" in result.stderr


def test_check_not_utf8(siq):
    path = siq.folder / "binary.toml"
    path.write_bytes(b"host = \"\xff\xfe\"\n")
    result = siq.siqctl("config", "check", str(path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert str(path) in result.stderr


def test_bad_config_stops_other_commands(siq):
    siq.write_config('interval = "5 minutes"\n')
    result = siq.siqctl("incidents", "list")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "interval" in result.stderr


# --- mask_url ----------------------------------------------------------------------------


def test_mask_url_password_and_path():
    masked = mask_url(SECRET_URL)
    assert "s3cretpass" not in masked
    assert "tok3nvalue" not in masked
    assert masked == "json://****@127.0.0.1:9/****"


def test_mask_url_query_values():
    masked = mask_url("json://127.0.0.1:9/hook?token=abcd1234&to=ops@example.com")
    assert "abcd1234" not in masked
    assert "ops@example.com" not in masked
    assert masked.endswith("?token=****&to=****")


def test_mask_url_token_host():
    masked = mask_url("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ")
    assert "T1JJ3T3L2" not in masked
    assert "TIiajkdnlazkcOXrIdevi7FQ" not in masked
    assert masked.startswith("slack://")


def test_mask_url_keeps_hosts():
    assert mask_url("json://localhost:8080/tok3n") == "json://localhost:8080/****"
    assert mask_url("json://[::1]:8080/tok3n") == "json://[::1]:8080/****"
    assert mask_url("mailto://user:pw12@mail.example.com") == "mailto://****@mail.example.com"


def test_mask_url_at_in_password():
    masked = mask_url("json://user:p@ssword@127.0.0.1/x")
    assert "ssword" not in masked
    assert "127.0.0.1" in masked


def test_mask_url_without_scheme():
    assert mask_url("not a url with s3cret") == "****"


def test_mask_url_pushover_user_key():
    masked = mask_url("pover://uQiRzpo4DXghDmr9QzzfQu27cmVRsG@azGDORePK8gMaC0QOYAMyEEuzJnyUi")
    assert "uQiRzpo4DXghDmr9QzzfQu27cmVRsG" not in masked


# --- parse_duration and format_duration ----------------------------------------------------


@pytest.mark.parametrize("text, seconds", [
    ("10s", 10), ("5m", 300), ("1h30m", 5400), ("2d", 172800), ("1w", 604800), ("500ms", 0.5),
    ("1.5h", 5400), ("0s", 0), (" 5M ", 300), ("1h1s", 3601),
])
def test_parse_duration_valid(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["5 minutes", "-1s", "", "   ", "5", "s", "5x", "1h 30m", "5mm", "m5"])
def test_parse_duration_invalid(text):
    with pytest.raises(DurationError):
        parse_duration(text)


def test_parse_duration_non_string():
    with pytest.raises(DurationError):
        parse_duration(5)


def test_parse_duration_error_quotes_input():
    with pytest.raises(DurationError, match="5 minutes"):
        parse_duration("5 minutes")


@pytest.mark.parametrize("seconds, text", [
    (0, "0s"), (45, "45s"), (60, "1m"), (300, "5m"), (3900, "1h5m"), (5400, "1h30m"), (86400, "1d"),
    (90000, "1d1h"), (-5, "0s"),
])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize("text", ["10s", "5m", "1h30m", "2d", "1d1h"])
def test_duration_round_trip(text):
    assert format_duration(parse_duration(text)) == text


# --- glob_problem --------------------------------------------------------------------------


@pytest.mark.parametrize("pattern", ["*", "db-*", "db-[12]", "db-[!3]", "[]]", "[!]]", "[[]", "db-]", "web-?"])
def test_glob_problem_valid(pattern):
    assert glob_problem(pattern) is None


@pytest.mark.parametrize("pattern", ["db-[1", "[", "[!", "a[]", ""])
def test_glob_problem_invalid(pattern):
    assert glob_problem(pattern) is not None


def test_glob_problem_names_position():
    assert "4" in glob_problem("db-[1")


def test_shipped_example_is_valid(siq):
    from pathlib import Path

    example = Path(__file__).parent.parent / "examples" / "siq.toml"
    result = siq.siqctl("config", "check", str(example))
    assert result.returncode == 0, result.stderr


def test_check_rejects_unknown_apprise_scheme(siq):
    siq.write_config('[notify.channels]\nteam = ["jsn://user:s3cretpass@127.0.0.1:1/tok3nvalue"]\n')
    result = siq.siqctl("config", "check")
    assert result.returncode == 2
    assert "notify.channels.team" in result.stderr
    assert "s3cretpass" not in result.stderr
    assert "tok3nvalue" not in result.stderr


def test_no_warning_for_url_without_secret(siq):
    siq.write_config('[notify.channels]\nteam = ["json://127.0.0.1:8080/x"]\n')
    siq.config_path.chmod(0o644)
    result = siq.siqctl("config", "check", str(siq.config_path))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_url_has_secret_cases():
    from siqd.config import url_has_secret

    assert url_has_secret("json://user:pw@127.0.0.1/x")
    assert url_has_secret("slack://T0000/B0000/XXXXXXXXXXXXXXXX")
    assert url_has_secret("ntfy://127.0.0.1/topic?token=tk_abcdefgh123")
    assert not url_has_secret("json://127.0.0.1:8080/hook")
    assert not url_has_secret("mailto://mail.example.com?to=a@b.c")


def test_init_writes_where_siqctl_reads(siq, tmp_path):
    from conftest import BIN

    target = tmp_path / "from-env" / "siq.toml"
    env = dict(siq.env(), SIQ_CONFIG=str(target))
    result = subprocess.run([str(BIN / "siqctl"), "init"], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert target.exists()
    flagged = tmp_path / "from-flag.toml"
    result = subprocess.run([str(BIN / "siqctl"), "--config", str(flagged), "init"], capture_output=True, text=True,
                            env=env)
    assert result.returncode == 0, result.stderr
    assert flagged.exists()
    assert f"siqd run --config {flagged}" in result.stdout


def test_missing_key_names_likely_misspelling():
    from siqd.config import ConfigError, parse_config

    with pytest.raises(ConfigError) as caught:
        parse_config({"rule": [{"name": "cpu", "metrc": "cpu.percent", "above": 90}]}, "siq.toml")
    assert str(caught.value) == ("siq.toml: rule[cpu].metric: missing; expected a string "
                                 "(found 'metrc': is it misspelled?)")


def test_world_readable_check_credentials_warn(tmp_path):
    from siqd.config import load_config

    path = tmp_path / "siq.toml"
    path.write_text('[[check]]\nname = "api"\ntype = "http"\nurl = "http://127.0.0.1:9/"\n'
                    'headers = { Authorization = "Bearer abcdefgh12345678" }\n')
    path.chmod(0o644)
    assert any("headers of check 'api'" in warning for warning in load_config(path).warnings)
    path.chmod(0o600)
    assert load_config(path).warnings == []
