"""The outbox: notifications are rows committed with the incident event that caused them.

Each row is one message to one Apprise URL of a channel. The row names the
URL by a fingerprint, never by the URL itself, so no secret reaches the
store. The delivery worker looks the URL up in the current config.
"""

try:
    # The built-in SHA-256 avoids hashlib, which maps OpenSSL's libcrypto and
    # adds about 4 MB to the daemon's resident memory.
    from _sha2 import sha256  # Python 3.12 and newer
except ImportError:
    try:
        from _sha256 import sha256  # Python 3.11
    except ImportError:
        from hashlib import sha256

from siqd.config import Config, mask_url
from siqd.store.base import Incident, Store


def target_fingerprint(url: str) -> str:
    return sha256(url.encode("utf-8")).hexdigest()[:16]


def retry_delay(attempts: int, initial: float, maximum: float) -> float:
    """Return the wait before the next try after `attempts` failures: doubling, capped."""
    return min(initial * 2 ** max(attempts - 1, 0), maximum)


def enqueue_opening(store: Store, config: Config, incident: Incident, event_id: int, channels: list[str],
                    kind: str, notify_type: str, title: str, body: str, now: float) -> int:
    """Queue an opening notice to every URL of `channels`; return how many rows were queued."""
    queued = 0
    for channel in channels:
        for url in config.notify.channels.get(channel, []):
            store.enqueue_notification(
                incident_id=incident.id, event_id=event_id, channel=channel,
                target=target_fingerprint(url), target_masked=mask_url(url), kind=kind,
                notify_type=notify_type, title=title, body=body, created_at=now, next_attempt_at=now,
            )
            queued += 1
    return queued


def enqueue_followup(store: Store, incident: Incident, event_id: int, kind: str, notify_type: str,
                     title: str, body: str, now: float) -> int:
    """Queue a follow-up to the targets that were sent the opening notice, and to no others."""
    queued = 0
    for target in store.opening_targets(incident.id):
        store.enqueue_notification(
            incident_id=incident.id, event_id=event_id, channel=target["channel"], target=target["target"],
            target_masked=target["target_masked"], kind=kind, notify_type=notify_type, title=title, body=body,
            created_at=now, next_attempt_at=now,
        )
        queued += 1
    return queued
