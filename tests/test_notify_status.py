"""Failed deliveries are visible, and a channel that keeps failing hands its notices to the fallback."""

import time

from conftest import JsonReceiver


def wait_for_attempt(siq, timeout: float = 20.0) -> None:
    store = siq.store()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not store.scalar("SELECT MAX(attempts) FROM notifications"):
        time.sleep(0.1)
    store.close()


def test_status_lists_failing_with_error(siq):
    down = JsonReceiver()  # never started
    siq.write_config(f'[notify]\ndefault = ["team"]\n[notify.channels]\nteam = ["{down.url()}"]\n')
    siq.siqctl("open", "--title", "backup failed", check=True)
    wait_for_attempt(siq)
    rows = siq.siqctl_json("notify", "status")
    assert [(row["incident_id"], row["channel"], row["status"]) for row in rows] == [(1, "team", "pending")]
    assert "connection refused" in rows[0]["last_error"].lower()
    text = siq.siqctl("notify", "status").stdout
    assert "connection refused" in text.lower()


def test_status_when_all_delivered(siq, receiver):
    siq.write_config(f'[notify]\ndefault = ["team"]\n[notify.channels]\nteam = ["{receiver.url()}"]\n')
    siq.siqctl("open", "--title", "backup failed", check=True)
    receiver.wait_for(1)
    time.sleep(0.5)
    assert siq.siqctl_json("notify", "status") == []
    assert "No notification is failing" in siq.siqctl("notify", "status").stdout


def test_failing_channel_falls_back_once(siq, receiver):
    down = JsonReceiver()
    siq.write_config(f'[notify]\ndefault = ["team"]\nfallback = "pager"\nfallback_after = "1s"\n'
                     f'retry_initial = "1s"\n[notify.channels]\nteam = ["{down.url()}"]\n'
                     f'pager = ["{receiver.url()}"]\n')
    siq.siqctl("open", "--title", "backup failed", check=True)
    wait_for_attempt(siq)
    time.sleep(1.5)
    assert siq.siqd("deliver").returncode in (0, 1)
    messages = receiver.wait_for(1)
    assert len(messages) == 1
    assert messages[0]["title"].endswith("(via fallback)")
    assert "has been failing" in messages[0]["message"]
    time.sleep(1.5)
    siq.siqd("deliver")
    time.sleep(0.5)
    assert len(receiver.messages) == 1
    rows = siq.siqctl_json("notify", "status")
    assert [row["forwarded_to_fallback"] for row in rows] == [True]


def test_unknown_fallback_channel_is_config_error(siq):
    siq.write_config('[notify]\nfallback = "pager"\n')
    result = siq.siqctl("config", "check")
    assert result.returncode == 2
    assert "notify.fallback: unknown channel 'pager'" in result.stderr
