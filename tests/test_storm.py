"""Incident storms: many openings at once reach each channel as one grouped notification."""

import time
import tomllib

from siqd.config import parse_config
from siqd.incidents import Incidents


def open_many(siq, receiver, count: int, threshold: int = 3) -> None:
    text = (f'[notify]\ndefault = ["team"]\nstorm_threshold = {threshold}\nstorm_window = "5m"\n'
            f'[notify.channels]\nteam = ["{receiver.url()}"]\n')
    siq.write_config(text)
    config = parse_config(tomllib.loads(f'host = "test-host"\n{text}'), "test")
    store = siq.store()
    incidents = Incidents(store, config)
    now = time.time()
    for number in range(count):
        incidents.open_manual(f"web-{number:02d}", "host unreachable", "critical", "ci", "", now)
    store.close()


def test_storm_sends_one_grouped_message(siq, receiver):
    open_many(siq, receiver, 12)
    result = siq.siqd("deliver")
    assert result.returncode == 0, result.stderr
    messages = receiver.wait_for(1)
    time.sleep(0.5)
    assert len(receiver.messages) == 1
    assert messages[0]["title"] == "[STORM] 12 incidents opened in the last 5m"
    assert messages[0]["message"].count("host unreachable") == 12
    assert len(siq.siqctl_json("incidents", "list")) == 12
    store = siq.store()
    assert store.scalar("SELECT COUNT(*) FROM notifications WHERE status = 'sent'") == 12
    store.close()


def test_few_openings_go_one_by_one(siq, receiver):
    open_many(siq, receiver, 3)
    assert siq.siqd("deliver").returncode == 0
    messages = receiver.wait_for(3)
    assert len(messages) == 3
    assert not [message for message in messages if message["title"].startswith("[STORM]")]
