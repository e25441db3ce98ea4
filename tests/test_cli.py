"""Tests of the incident commands through the real siqctl entry point."""

import getpass
import time

import pytest

from siqd.config import load_config
from siqd.incidents import Incidents

STABLE_FIELDS = ("id", "status", "severity", "host", "rule", "labels", "title", "opened_at", "closed_at",
                 "closed_by", "resolution")
DISK_RULE = ('[[rule]]\nname = "disk-full"\nmetric = "disk.used_percent"\nabove = 90\nclear_below = 85\n'
             'severity = "critical"\n')


def open_incident(siq, host="web-1", title="deploy failed", *args) -> int:
    """Open a manual incident with siqctl and return its id."""
    return siq.siqctl_json("open", "--host", host, "--title", title, *args)["id"]


def fire_disk_rule(siq, host="db-1", mount="/") -> int:
    """Open a rule incident in the test store as siqd does when disk-full fires, and return its id."""
    config = load_config(siq.config_path)
    rule = next(rule for rule in config.rules if rule.name == "disk-full")
    store = siq.store()
    try:
        now = time.time()
        outcome = Incidents(store, config).fire(rule, host, {"mount": mount}, "%", 93.5, now - 300, now)
    finally:
        store.close()
    return outcome.incident.id


def backdate(siq, incident_id: int, seconds: float) -> None:
    """Move an incident's opening time `seconds` into the past."""
    store = siq.store()
    with store.transaction():
        store.execute("UPDATE incidents SET opened_at = opened_at - ?, started_at = started_at - ? WHERE id = ?",
                      (seconds, seconds, incident_id))
    store.close()


def listed_ids(siq, *args) -> list[int]:
    return [incident["id"] for incident in siq.siqctl_json("incidents", "list", *args)]


def channel_config(receiver) -> str:
    return f'[notify]\ndefault = ["team"]\n[notify.channels]\nteam = ["{receiver.url()}"]\n'


# --- open --------------------------------------------------------------------------------------


def test_open_creates_incident(siq):
    result = siq.siqctl("open", "--host", "web-1", "--title", "deploy failed")
    assert result.returncode == 0, result.stderr
    assert "#1" in result.stdout
    incident = siq.siqctl_json("incidents", "show", "1")
    assert incident["host"] == "web-1"
    assert incident["title"] == "deploy failed"
    assert incident["status"] == "open"
    assert incident["severity"] == "warning"
    assert incident["rule"] == "manual"


def test_open_with_severity(siq):
    incident_id = open_incident(siq, "web-1", "deploy failed", "--severity", "critical")
    assert siq.siqctl_json("incidents", "show", str(incident_id))["severity"] == "critical"


def test_open_default_host_from_config(siq):
    result = siq.siqctl("open", "--title", "backup failed")
    assert result.returncode == 0, result.stderr
    assert siq.siqctl_json("incidents", "show", "1")["host"] == "test-host"


def test_open_repeat_joins_open(siq):
    first = open_incident(siq, "web-1", "deploy failed")
    result = siq.siqctl("open", "--host", "web-1", "--title", "deploy failed", "-m", "second try failed too")
    assert result.returncode == 0, result.stderr
    assert f"#{first}" in result.stdout
    assert listed_ids(siq, "--status", "all") == [first]
    events = siq.siqctl_json("incidents", "show", str(first))["events"]
    assert len(events) == 2
    assert events[1]["text"] == "second try failed too"


def test_open_other_host_is_new(siq):
    first = open_incident(siq, "web-1", "deploy failed")
    second = open_incident(siq, "web-2", "deploy failed")
    assert second != first


def test_open_other_title_is_new(siq):
    first = open_incident(siq, "web-1", "deploy failed")
    second = open_incident(siq, "web-1", "backup failed")
    assert second != first


def test_open_after_resolve_is_new(siq):
    first = open_incident(siq, "web-1", "deploy failed")
    siq.siqctl("resolve", str(first), "-m", "rolled back", check=True)
    second = open_incident(siq, "web-1", "deploy failed")
    assert second != first
    assert siq.siqctl_json("incidents", "show", str(second))["previous_id"] == first


def test_open_previous_skips_other_titles(siq):
    first = open_incident(siq, "web-1", "deploy failed")
    siq.siqctl("resolve", str(first), "-m", "rolled back", check=True)
    other = open_incident(siq, "web-1", "backup failed")
    siq.siqctl("resolve", str(other), "-m", "freed space", check=True)
    repeat = open_incident(siq, "web-1", "deploy failed")
    assert siq.siqctl_json("incidents", "show", str(repeat))["previous_id"] == first


def test_open_bad_severity_exits_2(siq):
    result = siq.siqctl("open", "--host", "web-1", "--title", "deploy failed", "--severity", "urgent")
    assert result.returncode == 2
    assert "urgent" in result.stderr
    assert listed_ids(siq, "--status", "all") == []


def test_open_empty_title_exits_1(siq):
    result = siq.siqctl("open", "--host", "web-1", "--title", "  ")
    assert result.returncode == 1
    assert "title" in result.stderr


def test_open_missing_title_exits_2(siq):
    result = siq.siqctl("open", "--host", "web-1")
    assert result.returncode == 2


def test_open_empty_host_exits_2(siq):
    result = siq.siqctl("open", "--host", "", "--title", "deploy failed")
    assert result.returncode == 2


# --- incidents list ------------------------------------------------------------------------------


def test_list_default_open_only(siq):
    resolved = open_incident(siq, "web-1", "deploy failed")
    still_open = open_incident(siq, "web-2", "deploy failed")
    siq.siqctl("resolve", str(resolved), "-m", "rolled back", check=True)
    assert listed_ids(siq) == [still_open]


def test_list_table_shows_incident(siq):
    open_incident(siq, "web-1", "deploy failed")
    result = siq.siqctl("incidents", "list")
    assert result.returncode == 0, result.stderr
    assert "web-1" in result.stdout
    assert "deploy failed" in result.stdout


def test_list_empty_message(siq):
    result = siq.siqctl("incidents", "list")
    assert result.returncode == 0, result.stderr
    assert "No open incidents" in result.stdout


def test_list_empty_json(siq):
    assert siq.siqctl_json("incidents", "list") == []


def test_list_status_filters(siq):
    resolved = open_incident(siq, "web-1", "a")
    ignored = open_incident(siq, "web-1", "b")
    still_open = open_incident(siq, "web-1", "c")
    siq.siqctl("resolve", str(resolved), "-m", "fixed", check=True)
    siq.siqctl("ignore", str(ignored), "-m", "planned", check=True)
    assert listed_ids(siq, "--status", "open") == [still_open]
    assert listed_ids(siq, "--status", "resolved") == [resolved]
    assert listed_ids(siq, "--status", "ignored") == [ignored]
    assert listed_ids(siq, "--status", "closed") == [ignored, resolved]
    assert listed_ids(siq, "--status", "all") == [still_open, ignored, resolved]


def test_list_bad_status_exits_2(siq):
    result = siq.siqctl("incidents", "list", "--status", "pending")
    assert result.returncode == 2
    assert "pending" in result.stderr


def test_list_host_glob(siq):
    database_incident = open_incident(siq, "db-1", "backup failed")
    open_incident(siq, "web-1", "deploy failed")
    assert listed_ids(siq, "--host", "db-*") == [database_incident]
    assert listed_ids(siq, "--host", "cache-*") == []


def test_list_rule_glob(siq):
    siq.write_config(DISK_RULE)
    rule_incident = fire_disk_rule(siq)
    manual = open_incident(siq, "web-1", "deploy failed")
    assert listed_ids(siq, "--rule", "disk-*") == [rule_incident]
    assert listed_ids(siq, "--rule", "manual") == [manual]


def test_list_since(siq):
    old = open_incident(siq, "web-1", "old")
    new = open_incident(siq, "web-1", "new")
    backdate(siq, old, 2 * 3600)
    assert listed_ids(siq, "--since", "1h") == [new]
    assert listed_ids(siq, "--since", "3h") == [new, old]


def test_list_bad_since_exits_2(siq):
    result = siq.siqctl("incidents", "list", "--since", "5 minutes")
    assert result.returncode == 2
    assert "5 minutes" in result.stderr
    assert "Traceback" not in result.stderr


def test_list_limit(siq):
    open_incident(siq, "web-1", "a")
    newest = open_incident(siq, "web-1", "b")
    assert listed_ids(siq, "--limit", "1") == [newest]


def test_list_json_stable_fields(siq):
    open_incident(siq, "web-1", "deploy failed", "--severity", "critical")
    listed = siq.siqctl_json("incidents", "list")
    assert isinstance(listed, list)
    assert len(listed) == 1
    for name in STABLE_FIELDS:
        assert name in listed[0], name


def test_list_json_values(siq):
    incident_id = open_incident(siq, "web-1", "deploy failed", "--severity", "critical")
    incident = siq.siqctl_json("incidents", "list")[0]
    assert incident["id"] == incident_id
    assert incident["status"] == "open"
    assert incident["severity"] == "critical"
    assert incident["host"] == "web-1"
    assert incident["rule"] == "manual"
    assert incident["title"] == "deploy failed"
    assert incident["opened_at"].endswith("Z")
    assert incident["closed_at"] is None
    assert incident["closed_by"] is None
    assert incident["resolution"] is None


def test_list_json_rule_labels(siq):
    siq.write_config(DISK_RULE)
    fire_disk_rule(siq, "db-1", "/var")
    incident = siq.siqctl_json("incidents", "list")[0]
    assert incident["rule"] == "disk-full"
    assert incident["labels"] == {"mount": "/var"}
    assert incident["severity"] == "critical"


# --- incidents show ---------------------------------------------------------------------------------


def test_show_text(siq):
    incident_id = open_incident(siq, "web-1", "deploy failed")
    result = siq.siqctl("incidents", "show", str(incident_id))
    assert result.returncode == 0, result.stderr
    assert f"#{incident_id}" in result.stdout
    assert "deploy failed" in result.stdout
    assert "Timeline" in result.stdout


def test_show_json_events_and_notifications(siq):
    incident_id = open_incident(siq, "web-1", "deploy failed")
    siq.siqctl("comment", str(incident_id), "looking at it", check=True)
    incident = siq.siqctl_json("incidents", "show", str(incident_id))
    assert incident["id"] == incident_id
    assert [event["kind"] for event in incident["events"]] == ["opened", "comment"]
    assert incident["notifications"] == []


def test_show_json_stable_fields(siq):
    incident_id = open_incident(siq, "web-1", "deploy failed")
    incident = siq.siqctl_json("incidents", "show", str(incident_id))
    for name in STABLE_FIELDS:
        assert name in incident, name


def test_show_unknown_id_exits_1(siq):
    result = siq.siqctl("incidents", "show", "999")
    assert result.returncode == 1
    assert "incident 999 not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_show_non_numeric_exits_2(siq):
    result = siq.siqctl("incidents", "show", "abc")
    assert result.returncode == 2


# --- resolve, ignore, reopen, comment ---------------------------------------------------------


def test_resolve_records_note(siq):
    incident_id = open_incident(siq)
    result = siq.siqctl("resolve", str(incident_id), "-m", "rolled back the deploy", "--by", "alice")
    assert result.returncode == 0, result.stderr
    incident = siq.siqctl_json("incidents", "show", str(incident_id))
    assert incident["status"] == "resolved"
    assert incident["resolution"] == "rolled back the deploy"
    assert incident["closed_by"] == "alice"
    assert incident["closed_at"] is not None
    assert incident["events"][-1]["kind"] == "resolved"


def test_resolve_default_actor(siq):
    incident_id = open_incident(siq)
    siq.siqctl("resolve", str(incident_id), "-m", "rolled back", check=True)
    incident = siq.siqctl_json("incidents", "show", str(incident_id))
    assert incident["closed_by"] == getpass.getuser()
    assert incident["events"][-1]["actor"] == getpass.getuser()


def test_resolve_twice_exits_1(siq):
    incident_id = open_incident(siq)
    siq.siqctl("resolve", str(incident_id), "-m", "rolled back", check=True)
    result = siq.siqctl("resolve", str(incident_id), "-m", "again")
    assert result.returncode == 1
    assert "already resolved" in result.stderr
    assert siq.siqctl_json("incidents", "show", str(incident_id))["resolution"] == "rolled back"


def test_resolve_empty_note_exits_1(siq):
    incident_id = open_incident(siq)
    result = siq.siqctl("resolve", str(incident_id), "-m", "")
    assert result.returncode == 1
    assert "note" in result.stderr
    assert siq.siqctl_json("incidents", "show", str(incident_id))["status"] == "open"


def test_resolve_blank_note_exits_1(siq):
    incident_id = open_incident(siq)
    result = siq.siqctl("resolve", str(incident_id), "-m", "   ")
    assert result.returncode == 1


def test_resolve_missing_message_exits_2(siq):
    incident_id = open_incident(siq)
    result = siq.siqctl("resolve", str(incident_id))
    assert result.returncode == 2
    assert siq.siqctl_json("incidents", "show", str(incident_id))["status"] == "open"


def test_resolve_unknown_id_exits_1(siq):
    result = siq.siqctl("resolve", "999", "-m", "rolled back")
    assert result.returncode == 1
    assert "incident 999 not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_resolve_non_numeric_exits_2(siq):
    result = siq.siqctl("resolve", "abc", "-m", "rolled back")
    assert result.returncode == 2


def test_resolve_json_output(siq):
    incident_id = open_incident(siq)
    data = siq.siqctl_json("resolve", str(incident_id), "-m", "rolled back")
    assert data["id"] == incident_id
    assert data["status"] == "resolved"
    assert data["notifications_queued"] == 0


def test_ignore_records_reason(siq):
    incident_id = open_incident(siq)
    result = siq.siqctl("ignore", str(incident_id), "-m", "planned failover test", "--by", "bob")
    assert result.returncode == 0, result.stderr
    incident = siq.siqctl_json("incidents", "show", str(incident_id))
    assert incident["status"] == "ignored"
    assert incident["resolution"] == "planned failover test"
    assert incident["closed_by"] == "bob"
    assert incident["events"][-1]["kind"] == "ignored"


def test_ignore_empty_reason_exits_1(siq):
    incident_id = open_incident(siq)
    result = siq.siqctl("ignore", str(incident_id), "-m", "")
    assert result.returncode == 1


def test_ignore_missing_message_exits_2(siq):
    incident_id = open_incident(siq)
    result = siq.siqctl("ignore", str(incident_id))
    assert result.returncode == 2


def test_ignore_resolved_exits_1(siq):
    incident_id = open_incident(siq)
    siq.siqctl("resolve", str(incident_id), "-m", "rolled back", check=True)
    result = siq.siqctl("ignore", str(incident_id), "-m", "never mind")
    assert result.returncode == 1
    assert siq.siqctl_json("incidents", "show", str(incident_id))["status"] == "resolved"


def test_ignore_unknown_id_exits_1(siq):
    result = siq.siqctl("ignore", "999", "-m", "planned")
    assert result.returncode == 1
    assert "incident 999 not found" in result.stderr


def test_reopen_resolved(siq):
    incident_id = open_incident(siq)
    siq.siqctl("resolve", str(incident_id), "-m", "rolled back", check=True)
    result = siq.siqctl("reopen", str(incident_id), "--by", "carol")
    assert result.returncode == 0, result.stderr
    incident = siq.siqctl_json("incidents", "show", str(incident_id))
    assert incident["status"] == "open"
    assert incident["closed_at"] is None
    assert incident["closed_by"] is None
    assert incident["resolution"] is None
    assert incident["events"][-1]["kind"] == "reopened"
    assert incident["events"][-1]["actor"] == "carol"
    assert "rolled back" in incident["events"][-1]["text"]


def test_reopen_then_resolve(siq):
    incident_id = open_incident(siq)
    siq.siqctl("resolve", str(incident_id), "-m", "rolled back", check=True)
    siq.siqctl("reopen", str(incident_id), check=True)
    result = siq.siqctl("resolve", str(incident_id), "-m", "fixed the migration")
    assert result.returncode == 0, result.stderr
    assert siq.siqctl_json("incidents", "show", str(incident_id))["resolution"] == "fixed the migration"


def test_reopen_open_exits_1(siq):
    incident_id = open_incident(siq)
    result = siq.siqctl("reopen", str(incident_id))
    assert result.returncode == 1
    assert "already open" in result.stderr


def test_reopen_with_open_twin_exits_1(siq):
    first = open_incident(siq)
    siq.siqctl("resolve", str(first), "-m", "rolled back", check=True)
    second = open_incident(siq)
    result = siq.siqctl("reopen", str(first))
    assert result.returncode == 1
    assert f"incident {second}" in result.stderr
    assert siq.siqctl_json("incidents", "show", str(first))["status"] == "resolved"


def test_reopen_unknown_id_exits_1(siq):
    result = siq.siqctl("reopen", "999")
    assert result.returncode == 1
    assert "incident 999 not found" in result.stderr


def test_comment_adds_event(siq):
    incident_id = open_incident(siq)
    result = siq.siqctl("comment", str(incident_id), "checked: /var/log/app is 15 GB", "--by", "dave")
    assert result.returncode == 0, result.stderr
    event = siq.siqctl_json("incidents", "show", str(incident_id))["events"][-1]
    assert event["kind"] == "comment"
    assert event["text"] == "checked: /var/log/app is 15 GB"
    assert event["actor"] == "dave"


def test_comment_default_actor(siq):
    incident_id = open_incident(siq)
    siq.siqctl("comment", str(incident_id), "looking", check=True)
    event = siq.siqctl_json("incidents", "show", str(incident_id))["events"][-1]
    assert event["actor"] == getpass.getuser()


def test_comment_keeps_status(siq):
    incident_id = open_incident(siq)
    siq.siqctl("resolve", str(incident_id), "-m", "rolled back", check=True)
    siq.siqctl("comment", str(incident_id), "root cause: bad migration", check=True)
    assert siq.siqctl_json("incidents", "show", str(incident_id))["status"] == "resolved"


def test_comment_empty_exits_1(siq):
    incident_id = open_incident(siq)
    result = siq.siqctl("comment", str(incident_id), "")
    assert result.returncode == 1


def test_comment_missing_text_exits_2(siq):
    incident_id = open_incident(siq)
    result = siq.siqctl("comment", str(incident_id))
    assert result.returncode == 2


def test_comment_unknown_id_exits_1(siq):
    result = siq.siqctl("comment", "999", "looking")
    assert result.returncode == 1
    assert "incident 999 not found" in result.stderr


def test_by_sets_opening_actor(siq):
    incident_id = open_incident(siq, "web-1", "deploy failed", "--by", "ci")
    event = siq.siqctl_json("incidents", "show", str(incident_id))["events"][0]
    assert event["actor"] == "ci"


def test_empty_by_exits_2(siq):
    incident_id = open_incident(siq)
    result = siq.siqctl("comment", str(incident_id), "looking", "--by", " ")
    assert result.returncode == 2


@pytest.mark.parametrize("command", [["resolve", "-m", "x"], ["ignore", "-m", "x"], ["reopen"], ["comment", "x"]])
def test_action_non_numeric_exits_2(siq, command):
    result = siq.siqctl(command[0], "12a", *command[1:])
    assert result.returncode == 2


# --- notifications ------------------------------------------------------------------------------


def test_open_resolve_notify_channel(siq, receiver):
    siq.write_config(channel_config(receiver))
    opened = siq.siqctl("open", "--host", "web-1", "--title", "deploy failed")
    assert opened.returncode == 0, opened.stderr
    assert "notifying 1 target" in opened.stdout
    resolved = siq.siqctl("resolve", "1", "-m", "rolled back the deploy")
    assert resolved.returncode == 0, resolved.stderr
    messages = receiver.wait_for(2)
    assert len(messages) == 2
    assert "opened" in messages[0]["title"]
    assert "resolved" in messages[1]["title"]
    assert "rolled back the deploy" in messages[1]["message"]


def test_notifications_listed_in_show(siq, receiver):
    siq.write_config(channel_config(receiver))
    incident_id = open_incident(siq)
    receiver.wait_for(1)
    notifications = siq.siqctl_json("incidents", "show", str(incident_id))["notifications"]
    assert len(notifications) == 1
    assert notifications[0]["channel"] == "team"
    assert notifications[0]["kind"] == "opened"
    assert "?cto=****" in notifications[0]["target"]


def test_repeat_open_sends_nothing(siq, receiver):
    siq.write_config(channel_config(receiver))
    incident_id = open_incident(siq)
    receiver.wait_for(1)
    open_incident(siq)
    notifications = siq.siqctl_json("incidents", "show", str(incident_id))["notifications"]
    assert len(notifications) == 1


def test_followup_without_opening_channel(siq, receiver):
    incident_id = open_incident(siq)
    siq.write_config(channel_config(receiver))
    result = siq.siqctl("resolve", str(incident_id), "-m", "rolled back")
    assert result.returncode == 0, result.stderr
    assert "notifying" not in result.stdout
    assert siq.siqctl_json("incidents", "show", str(incident_id))["notifications"] == []
    assert receiver.wait_for(1, timeout=3) == []


def test_list_missing_store_exits_1(siq, tmp_path):
    missing = tmp_path / "typo" / "siq.db"
    result = siq.siqctl("--store", f"sqlite:///{missing}", "incidents", "list")
    assert result.returncode == 1
    assert f"store {missing} does not exist" in result.stderr
    assert not missing.parent.exists()


def test_huge_id_exits_2(siq):
    result = siq.siqctl("incidents", "show", "99999999999999999999")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_list_recurring_series(siq):
    for note in ("rotated logs", "rotated logs again"):
        siq.siqctl("open", "--host", "db-1", "--title", "disk full", check=True)
        incident_id = str(siq.siqctl_json("incidents", "list")[0]["id"])
        siq.siqctl("resolve", incident_id, "-m", note, check=True)
    siq.siqctl("open", "--host", "db-1", "--title", "disk full", check=True)
    siq.siqctl("open", "--host", "db-1", "--title", "only once", check=True)
    rows = siq.siqctl_json("incidents", "list", "--recurring")
    assert [(row["host"], row["rule"], row["incidents"]) for row in rows] == [("db-1", "manual", 3)]
    assert rows[0]["last_resolution"] == "rotated logs again"
    assert rows[0]["latest_status"] == "open"
    text = siq.siqctl("incidents", "list", "--recurring").stdout
    assert "rotated logs again" in text


def test_reopened_series_links_previous(siq):
    siq.siqctl("open", "--host", "db-1", "--title", "disk full", check=True)
    siq.siqctl("resolve", "1", "-m", "rotated logs", check=True)
    siq.siqctl("open", "--host", "db-1", "--title", "disk full", check=True)
    shown = siq.siqctl_json("incidents", "show", "2")
    assert shown["previous"]["id"] == 1
    assert shown["previous"]["resolution"] == "rotated logs"
    assert "Last time:  #1, resolved with 'rotated logs'" in siq.siqctl("incidents", "show", "2").stdout
