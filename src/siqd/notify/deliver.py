"""Deliver due notifications from the outbox through Apprise.

A row is claimed atomically before sending, so two workers (the daemon's
and a siqctl process) never send the same row at once. A crash between
sending and recording sends the row again. Every message ends with its
notification id, so a receiver can drop the duplicate.
"""

import logging
import queue
import re
import threading
import time
from dataclasses import dataclass, field

from siqd.config import Config
from siqd.durations import format_duration
from siqd.log import get_logger, log_event
from siqd.notify.outbox import retry_delay, target_fingerprint
from siqd.store.base import Notification, Store

logger = get_logger("notify")

INFO, WARNING, ERROR, DEBUG = logging.INFO, logging.WARNING, logging.ERROR, logging.DEBUG


@dataclass
class DeliveryReport:
    sent: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    given_up: list[int] = field(default_factory=list)


_SOCKET_REASON = re.compile(r"\[Errno -?\d+\] ([^\"'\)]+)|(Read timed out|timed out)")


class _CaptureApprise:
    """Collect what Apprise logs during one send: it reports failures only there.

    Apprise calls it with each log entry of this one notify() call, whatever
    thread the plugin ran in. Its warning reports that a send failed. The
    reason (connection refused, a timeout) is only in a debug line that
    starts with "Socket Exception".
    """

    def __init__(self):
        self.messages: list[str] = []
        self.reasons: list[str] = []

    def __call__(self, entry, service=None) -> None:
        message = entry.message
        if entry.level in ("WARNING", "ERROR", "CRITICAL"):
            self.messages.append(message)
        elif "Exception" in message:
            match = _SOCKET_REASON.search(message)
            if match:
                self.reasons.append((match.group(1) or match.group(2)).strip().lower())

    def error_text(self, fallback: str) -> str:
        text = "; ".join(dict.fromkeys(self.messages)) or fallback
        if self.reasons:  # the reason first: it is what a person acts on
            text = f"{self.reasons[0]} ({text.rstrip('.')})"
        return text


def scrub(text: str, url: str) -> str:
    """Remove a URL and its secret parts (password, path segments, query values) from `text`."""
    from urllib.parse import unquote, urlsplit

    secrets = {url}
    try:
        parts = urlsplit(url)
        if parts.password:
            secrets.update({parts.password, unquote(parts.password)})
        secrets.update(segment for segment in parts.path.split("/") if len(segment) >= 4)
        secrets.update(value for _, _, value in (p.partition("=") for p in parts.query.split("&")) if len(value) >= 4)
        if parts.hostname and "." not in parts.hostname and parts.hostname != "localhost":
            secrets.add(parts.hostname)  # tokens in the host part, e.g. slack://TOKEN/…
    except ValueError:
        pass
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, "****")
    return text


def send_message(url: str, title: str, body: str, notify_type: str, timeout: float) -> str | None:
    """Send one message to one Apprise URL; return None on success or the error text, secrets removed."""
    import apprise

    capture = _CaptureApprise()
    # Apprise's logger drops debug lines before the capture gets them, and the
    # reason is in one. Its lines go to the delivery record, not to stderr.
    apprise_logger = logging.getLogger("apprise")
    apprise_logger.setLevel(logging.DEBUG)
    apprise_logger.propagate = False
    try:
        sender = apprise.Apprise()
        if not sender.add(url):
            return "invalid Apprise URL; check it with 'siqctl config check'"
        result = sender.notify(body=body, title=title, notify_type=notify_type, timeout=timeout,
                               log_callback=capture, log_level=logging.DEBUG)
    except Exception as error:  # Apprise plugins raise assorted errors; each is a failed delivery
        return scrub(f"{type(error).__name__}: {error}", url)
    if result:
        return None
    return scrub(capture.error_text(f"delivery failed ({getattr(result, 'status', result)})"), url)


def send(url: str, notification: Notification, timeout: float) -> str | None:
    """Send an outbox notification; its body ends with its id so receivers can drop duplicates."""
    body = f"{notification.body}\n\n(siq notification {notification.id})"
    return send_message(url, notification.title, body, notification.notify_type, timeout)


def unusable_targets(channels: dict[str, list[str]]) -> list[tuple[str, str]]:
    """Return (channel, masked URL) for each URL that Apprise does not accept."""
    import apprise

    from siqd.config import mask_url

    unusable = []
    for channel, urls in channels.items():
        for url in urls:
            if not apprise.Apprise().add(url):
                unusable.append((channel, mask_url(url)))
    return unusable


def forward_to_fallback(store: Store, config: Config, now: float) -> int:
    """Copy, once, the undelivered notices of a target failing for `fallback_after` to the fallback channel.

    One broken webhook must not hide an outage: the fallback channel gets
    each notice the failing target did not, marked as forwarded.
    """
    from siqd.config import mask_url

    settings = config.notify
    if settings.fallback is None or not settings.channels.get(settings.fallback):
        return 0
    copied = 0
    for notification in store.fallback_candidates(now - settings.fallback_after, settings.fallback):
        with store.transaction():
            if not store.mark_fallback(notification.id, now):
                continue  # another worker copied it
            note = (f"Forwarded to the fallback channel: channel {notification.channel} "
                    f"({notification.target_masked}) has been failing: {notification.last_error or 'not delivered'}")
            for url in settings.channels[settings.fallback]:
                store.enqueue_notification(
                    incident_id=notification.incident_id, event_id=notification.event_id,
                    channel=settings.fallback, target=target_fingerprint(url), target_masked=mask_url(url),
                    kind=notification.kind, notify_type=notification.notify_type,
                    title=f"{notification.title} (via fallback)", body=f"{notification.body}\n\n{note}",
                    created_at=now, next_attempt_at=now,
                )
                copied += 1
        log_event(logger, WARNING, "fallback_forwarded", notification=notification.id,
                  incident=notification.incident_id, channel=notification.channel, fallback=settings.fallback)
    return copied


def send_storm_groups(store: Store, config: Config, clock, report: DeliveryReport) -> None:
    """Send due opening notices as one grouped message per target during an incident storm.

    A storm is more than `storm_threshold` opening notices to one target
    within `storm_window` (a switch failure takes 12 hosts away). The target
    then gets one message listing the due openings instead of one each. Every
    incident is still recorded, and each notice is marked as sent in the group.
    """
    settings = config.notify
    now = clock()
    due = [note for note in store.due_notifications(now, limit=1000) if note.kind == "opened"]
    by_target: dict[str, list[Notification]] = {}
    for note in due:
        by_target.setdefault(note.target, []).append(note)
    urls = {target_fingerprint(url): url for urls_of_channel in settings.channels.values() for url in urls_of_channel}
    for target, notes in by_target.items():
        url = urls.get(target)
        if url is None or len(notes) < 2:
            continue
        if store.openings_to_target(target, now - settings.storm_window) <= settings.storm_threshold:
            continue
        claimed = []
        for note in notes:
            with store.transaction():
                if store.claim_notification(note.id, clock(), 120.0):
                    claimed.append(note)
        if not claimed:
            continue
        title = f"[STORM] {len(claimed)} incidents opened in the last {format_duration(settings.storm_window)}"
        lines = [f"{len(claimed)} incidents opened at once; each is recorded. Newest last:"]
        for note in claimed:
            lines.append(f"- {note.title}")
        lines.append("List them: siqctl incidents list")
        body = "\n".join(lines) + "\n\n(siq notifications " + ", ".join(str(note.id) for note in claimed) + ")"
        started = clock()
        error = send_message(url, title, body, "failure", settings.timeout)
        finished = clock()
        for note in claimed:
            _record(store, note, error, started, finished, settings, report, grouped=len(claimed))


def deliver_due(store: Store, config: Config, clock=time.time, deadline: float | None = None,
                lease: float = 120.0) -> DeliveryReport:
    """Send every due notification once; failures are rescheduled with backoff.

    Stops early when `deadline` (a clock value) passes; what is left stays
    in the outbox for the next run.
    """
    report = DeliveryReport()
    forward_to_fallback(store, config, clock())
    send_storm_groups(store, config, clock, report)
    urls = {
        target_fingerprint(url): url for urls_of_channel in config.notify.channels.values() for url in urls_of_channel
    }
    settings = config.notify
    seen: set[int] = set()
    while deadline is None or clock() < deadline:
        batch = [n for n in store.due_notifications(clock()) if n.id not in seen]
        if not batch:
            break
        claimed = []
        for notification in batch:
            seen.add(notification.id)
            if notification.target not in urls and clock() - notification.created_at < settings.give_up_after:
                # On a shared store this target may be another host's channel:
                # leave it to a worker whose config has the URL.
                continue
            if deadline is not None and clock() >= deadline:
                break
            with store.transaction():
                if store.claim_notification(notification.id, clock(), lease):
                    claimed.append(notification)
        _deliver_batch(store, claimed, urls, settings, clock, report)
    return report


def _deliver_batch(store: Store, batch: list[Notification], urls: dict[str, str], settings, clock,
                   report: DeliveryReport) -> None:
    """Send a batch with one thread per target, so a target that hangs delays no other target.

    Each target still gets its notifications one at a time, in order. The
    threads only send; attempts are recorded here, on the store's thread,
    as each send finishes.
    """
    by_target: dict[str, list[Notification]] = {}
    for notification in batch:
        by_target.setdefault(notification.target, []).append(notification)
    results: queue.Queue = queue.Queue()

    def send_in_order(notifications: list[Notification]) -> None:
        for notification in notifications:
            url = urls.get(notification.target)
            started = clock()
            if url is None:
                error = "target no longer in the config (its URL was changed or removed)"
            else:
                try:
                    error = send(url, notification, settings.timeout)
                except Exception as unexpected:  # recorded as a failed attempt; the loop below waits for it
                    error = scrub(f"{type(unexpected).__name__}: {unexpected}", url)
            results.put((notification, url, error, started, clock()))

    threads = [threading.Thread(target=send_in_order, args=(group,), daemon=True, name="siq-send")
               for group in by_target.values()]
    for thread in threads:
        thread.start()
    for _ in range(len(batch)):
        notification, url, error, started, finished = results.get()
        _record(store, notification, error, started, finished, settings, report, url_known=url is not None)
    for thread in threads:
        thread.join()


def _record(store: Store, notification: Notification, error: str | None, started: float, now: float, settings,
            report: DeliveryReport, url_known: bool = True, grouped: int = 0) -> None:
    """Record one delivery attempt and schedule a retry or give up."""
    attempts = notification.attempts + 1
    fields = dict(notification=notification.id, incident=notification.incident_id, channel=notification.channel,
                  target=notification.target_masked, kind=notification.kind, attempt=attempts,
                  grouped=grouped or None)
    if error is None:
        with store.transaction():
            store.record_attempt(notification.id, now, True, None, now - started, None, False)
        report.sent.append(notification.id)
        log_event(logger, INFO if attempts > 1 else DEBUG, "delivery_sent", **fields)
        return
    give_up = not url_known or error.startswith("invalid Apprise URL") or \
        now - notification.created_at >= settings.give_up_after
    next_at = None if give_up else now + retry_delay(attempts, settings.retry_initial, settings.retry_max)
    with store.transaction():
        store.record_attempt(notification.id, now, False, error, now - started, next_at, give_up)
    if give_up:
        report.given_up.append(notification.id)
        log_event(logger, ERROR, "delivery_given_up", **fields, error=error)
    else:
        report.failed.append(notification.id)
        # Each attempt runs in a new worker process, so repeats are thinned here by attempt number:
        # attempts 1, 2, 4, 8, … log a warning and the others a debug line.
        level = WARNING if attempts & (attempts - 1) == 0 else DEBUG
        log_event(logger, level, "delivery_failed", **fields, error=error, retry_in=f"{next_at - now:.0f}s")
