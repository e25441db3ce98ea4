"""Incidents: opening them from rule transitions, and the actions people take on them.

Every change is one store transaction that records the incident, its
timeline event and the notifications it causes together (the outbox
pattern): a notification exists if and only if its event does.
"""

from siqd.records import Record

from siqd.config import Config, Rule
from siqd.durations import format_duration
from siqd.metrics import format_value
from siqd.notify import messages
from siqd.notify.outbox import enqueue_followup, enqueue_opening
from siqd.store.base import IGNORED, OPEN, RESOLVED, Incident, Store, StoreError, series_key
from siqd.silences import active_silence, is_active
from siqd.timefmt import local_time, zone_of

DAEMON_ACTOR = "siqd"
MANUAL_RULE = "manual"

REVIEW_QUESTIONS = ("trigger", "cause", "fix", "sooner")
REVIEW_LABELS = {
    "trigger": "Trigger",
    "cause": "Root cause",
    "fix": "Fix",
    "sooner": "Detect sooner",
}
REVIEW_PROMPTS = {
    "trigger": "What triggered it?",
    "cause": "What was the root cause?",
    "fix": "What fixed it?",
    "sooner": "Could we have detected it sooner, and how?",
}


class IncidentError(StoreError):
    """An action that cannot apply to the incident as it is (already resolved, empty note, …)."""


class Outcome(Record):
    incident: Incident
    created: bool = False
    queued: int = 0  # notifications queued by this change
    changed: bool = True  # False when the incident already showed this (nothing was written)


class Incidents:
    """Incident changes over a store; the config names the channels that notifications go to."""

    def __init__(self, store: Store, config: Config):
        self.store = store
        self.config = config

    # -- from rules ---------------------------------------------------------------------

    def fire(self, rule: Rule, host: str, labels: dict[str, str], unit: str, value: float,
             started_at: float, now: float, reason: str = "") -> Outcome:
        """Open an incident for a breach that held for the rule's `for`.

        `reason` is a check's own account of the failure ("HTTP 503 in 120 ms");
        it becomes the title and the timeline text in place of value and threshold.

        If the series already has an open incident (the condition cleared and
        came back before anyone resolved it), the breach goes on that
        incident's timeline instead. A second incident is never opened.
        """
        key = series_key(labels)
        with self.store.transaction():
            self._lock_series(host, rule.name, key)
            existing = self.store.find_open_incident(host, rule.name, key)
            if existing is not None and existing.cleared_at is None:
                # Already open and firing: another daemon noticed first, or this
                # daemon lost its rule state. Nothing new happened.
                return Outcome(existing, created=False, changed=False)
            if existing is not None:
                text = f"condition returned: {reason}" if reason else \
                    (f"condition returned: {format_value(value, unit)} {rule.comparison} "
                     f"{format_value(rule.threshold, unit)}")
                event_id = self.store.add_event(existing.id, now, "breach", DAEMON_ACTOR, text, value)
                self.store.update_incident(existing.id, cleared_at=None, updated_at=now, reason=reason or None)
                incident = self.store.get_incident(existing.id)
                queued = self._change_notice(incident, rule, "breach", event_id, text, now)
                return Outcome(incident, created=False, queued=queued)

            # "Last time": the same series if it had incidents, else the rule on this host.
            previous = self.store.last_closed_incident(host, rule.name, key) or \
                self.store.last_closed_incident(host, rule.name)
            if rule.predict is not None:
                from siqd.metrics import unit_of

                # A forecast stores the predicted value as its threshold and the
                # time until it is reached as its value.
                comparison, threshold, unit = "forecast", rule.predict, unit_of(rule.metric)
                title = messages.describe_forecast(host, rule.name, labels, value, rule.predict, unit)
            else:
                comparison, threshold = rule.comparison, rule.threshold
                title = f"{host} {rule.name}: {reason}" if reason else \
                    messages.describe_incident(host, rule.name, labels, rule.metric, value, rule.comparison,
                                               rule.threshold, unit)
            incident_id = self.store.create_incident(
                host=host, rule=rule.name, series=key, metric=rule.metric, labels=labels, title=title,
                severity=rule.severity, status=OPEN, source="rule", value=value, threshold=threshold,
                comparison=comparison, unit=unit, for_seconds=rule.window if rule.predict is not None
                else rule.for_seconds, started_at=started_at, opened_at=now,
                previous_id=previous.id if previous else None, reason=reason or None,
            )
            incident = self.store.get_incident(incident_id)
            text = f"opened: {messages.condition_text(incident)}, breaching since {local_time(started_at)}"
            event_id = self.store.add_event(incident_id, now, "opened", DAEMON_ACTOR, text, value)
            channels = rule.notify if rule.notify is not None else self.config.notify.default
            detail = f"Why it matters: {rule.description}" if rule.description else ""
            queued = self._opening(incident, event_id, channels, "opened", detail, previous, now)
            return Outcome(incident, created=True, queued=queued)

    def clear(self, rule: Rule, host: str, labels: dict[str, str], unit: str, value: float,
              now: float, text: str | None = None, reason: str = "") -> Outcome | None:
        """Record that a firing series crossed back past its clear threshold.

        The incident stays open for a person to resolve unless the rule sets
        auto_resolve. If a person already closed it, the clearing is still
        recorded on its timeline, without a notification.
        """
        key = series_key(labels)
        with self.store.transaction():
            self._lock_series(host, rule.name, key)
            incident = self.store.find_open_incident(host, rule.name, key)
            if incident is None:
                incident = self._latest_uncleared(host, rule.name, key)
                if incident is None:
                    return None
            if text is not None:
                pass  # the caller's own words (host-silent: when the host reported again)
            elif reason:
                text = f"condition cleared: {reason}"
            elif rule.predict is not None:
                text = (f"forecast cleared: {rule.metric} no longer reaches {format_value(rule.predict, incident.unit)}"
                        f" within {format_duration(rule.threshold)}")
                value = None if value == float("inf") else value
            else:
                text = (f"condition cleared: {format_value(value, unit)} "
                        f"{'below' if rule.comparison == 'above' else 'above'} {format_value(rule.clear, unit)}")
            event_id = self.store.add_event(incident.id, now, "cleared", DAEMON_ACTOR, text, value)
            self.store.update_incident(incident.id, cleared_at=now, updated_at=now)
            incident = self.store.get_incident(incident.id)
            if incident.status != OPEN:
                return Outcome(incident)
            if incident.silenced_by is not None and is_active(self.store, incident.silenced_by, now,
                                                             zone_of(self.config.timezone)):
                silence = self.store.get_silence(incident.silenced_by)
                self._close(incident, IGNORED, f"cleared during silence #{silence['id']}: {silence['reason']}",
                            DAEMON_ACTOR, now)
                return Outcome(self.store.get_incident(incident.id))
            queued = 0
            if not rule.auto_resolve:
                queued += self._change_notice(incident, rule, "cleared", event_id,
                                              text + "; resolve it with a note of the fix: "
                                              f"siqctl resolve {incident.id} -m '…'", now)
            else:
                queued += self._close(incident, RESOLVED, "condition cleared (auto_resolve)", DAEMON_ACTOR, now)
            return Outcome(self.store.get_incident(incident.id), queued=queued)

    def _latest_uncleared(self, host: str, rule: str, key: str) -> Incident | None:
        candidates = self.store.rows(
            "SELECT id FROM incidents WHERE host = ? AND rule = ? AND series = ? AND cleared_at IS NULL "
            "ORDER BY id DESC LIMIT 1",
            (host, rule, key),
        )
        return self.store.get_incident(candidates[0]["id"]) if candidates else None

    def _change_notice(self, incident: Incident, rule: Rule, kind: str, event_id: int, text: str,
                       now: float) -> int:
        """Queue the notice of a condition change, unless the series is flapping.

        The change that makes it more than `flap_max` changes within
        `flap_window` sends one "flapping" notice instead. Later changes send
        nothing until the series has been stable for the window.
        """
        changes, _ = self.store.state_changes(incident.id, now - rule.flap_window)
        if incident.flapping_since is not None:
            return 0
        if changes > rule.flap_max:
            self.store.update_incident(incident.id, flapping_since=now)
            flapping = self.store.get_incident(incident.id)
            note = (f"Flapping: the condition changed {changes} times in {format_duration(rule.flap_window)}; "
                    f"notifications are held until it is stable for {format_duration(rule.flap_window)}")
            self.store.add_event(incident.id, now, "flapping", DAEMON_ACTOR, note)
            return self._followup(flapping, "flapping", event_id, note, now)
        return self._followup(incident, kind, event_id, text, now)

    def end_flapping(self, incident: Incident, rule: Rule, now: float) -> int:
        """End the hold of a series stable for its flap window, with one notice of its current state."""
        with self.store.transaction():
            self.store.update_incident(incident.id, flapping_since=None, updated_at=now)
            state = "the condition has cleared" if incident.cleared_at is not None else "the condition still holds"
            text = f"stable again for {format_duration(rule.flap_window)}: {state}"
            event_id = self.store.add_event(incident.id, now, "stable", DAEMON_ACTOR, text)
            return self._followup(self.store.get_incident(incident.id), "stable", event_id, text.capitalize(), now)

    def release_silenced(self, incident: Incident, now: float) -> int:
        """Notify an incident whose silence ended while it still holds, with its true start time.

        If another silence covers it now, it moves to that one; if its
        condition has cleared meanwhile, it is released without a notice.
        """
        with self.store.transaction():
            self._lock_series(incident.host, incident.rule, incident.series)
            incident = self.store.get_incident(incident.id, for_update=True)
            silence_id = incident.silenced_by
            if incident.status != OPEN or silence_id is None:
                return 0  # another daemon released it first
            other = active_silence(self.store, incident.host, incident.rule, incident.labels, now,
                                   zone_of(self.config.timezone))
            if other is not None:
                self.store.update_incident(incident.id, silenced_by=other["id"], updated_at=now)
                self.store.add_event(incident.id, now, "silenced", DAEMON_ACTOR,
                                     f"silence #{silence_id} ended; still held by silence #{other['id']}: "
                                     f"{other['reason']}")
                return 0
            self.store.update_incident(incident.id, silenced_by=None, updated_at=now)
            if incident.cleared_at is not None:
                self.store.add_event(incident.id, now, "unsilenced", DAEMON_ACTOR,
                                     f"silence #{silence_id} ended; the condition had already cleared")
                return 0
            text = f"silence #{silence_id} ended; the condition still holds"
            event_id = self.store.add_event(incident.id, now, "unsilenced", DAEMON_ACTOR, text)
            incident = self.store.get_incident(incident.id)
            channels = self.config.notify.default
            rule = next((rule for rule in self.config.rules if rule.name == incident.rule), None)
            if rule is not None and rule.notify is not None:
                channels = rule.notify
            previous = self.store.get_incident(incident.previous_id) if incident.previous_id else None
            return self._opening(incident, event_id, channels, "opened",
                                 f"Held back by silence #{silence_id} until its window ended.", previous, now,
                                 check_silence=False)

    def remind(self, incident: Incident, now: float) -> int:
        """Queue a reminder that the incident is still open and breaching; return how many were queued."""
        from siqd.durations import format_duration

        with self.store.transaction():
            text = f"still firing, open for {format_duration(now - incident.opened_at)}"
            event_id = self.store.add_event(incident.id, now, "reminder", DAEMON_ACTOR, text)
            return self._followup(incident, "reminder", event_id, text.capitalize(), now)

    # -- from people and scripts ------------------------------------------------------------

    def open_manual(self, host: str, title: str, severity: str, actor: str, text: str, now: float) -> Outcome:
        """Open an incident by hand (from a script or CI); a repeat of an open one joins its timeline."""
        title = title.strip()
        if not title:
            raise IncidentError("the title must not be empty; say what is wrong: --title 'nightly backup failed'")
        labels = {"title": title}
        key = series_key(labels)
        with self.store.transaction():
            self._lock_series(host, MANUAL_RULE, key)
            existing = self.store.find_open_incident(host, MANUAL_RULE, key)
            if existing is not None:
                self.store.add_event(existing.id, now, "repeat", actor, text or "reported again")
                self.store.update_incident(existing.id, updated_at=now)
                return Outcome(self.store.get_incident(existing.id), created=False)
            previous = self.store.last_closed_incident(host, MANUAL_RULE, key)
            incident_id = self.store.create_incident(
                host=host, rule=MANUAL_RULE, series=key, metric=None, labels=labels, title=title,
                severity=severity, status=OPEN, source="manual", unit="", started_at=now, opened_at=now,
                previous_id=previous.id if previous else None,
            )
            event_id = self.store.add_event(incident_id, now, "opened", actor, text or "opened by hand")
            incident = self.store.get_incident(incident_id)
            queued = self._opening(incident, event_id, self.config.notify.default, "opened", text, previous, now)
            return Outcome(incident, created=True, queued=queued)

    def resolve(self, incident_id: int, note: str, actor: str, now: float) -> Outcome:
        if not note.strip():
            raise IncidentError(
                f"a resolution note is required; say what fixed it: siqctl resolve {incident_id} -m 'rotated logs'"
            )
        with self.store.transaction():
            incident = self._open_incident(incident_id, "resolve")
            queued = self._close(incident, RESOLVED, note.strip(), actor, now)
            return Outcome(self.store.get_incident(incident_id), queued=queued)

    def ignore(self, incident_id: int, reason: str, actor: str, now: float) -> Outcome:
        if not reason.strip():
            raise IncidentError(
                f"a reason is required; say why it needs no fix: siqctl ignore {incident_id} -m 'planned restart'"
            )
        with self.store.transaction():
            incident = self._open_incident(incident_id, "ignore")
            queued = self._close(incident, IGNORED, reason.strip(), actor, now)
            return Outcome(self.store.get_incident(incident_id), queued=queued)

    def reopen(self, incident_id: int, actor: str, text: str, now: float) -> Outcome:
        with self.store.transaction():
            incident = self.store.get_incident(incident_id, for_update=True)
            self._lock_series(incident.host, incident.rule, incident.series)
            if incident.status == OPEN:
                raise IncidentError(f"incident {incident_id} is already open")
            other = self.store.find_open_incident(incident.host, incident.rule, incident.series)
            if other is not None:
                raise IncidentError(
                    f"incident {incident_id} cannot be reopened: incident {other.id} is open for the same "
                    f"host, rule and series; comment there instead: siqctl comment {other.id} '…'"
                )
            self.store.update_incident(incident_id, status=OPEN, closed_at=None, closed_by=None, resolution=None,
                                       updated_at=now)
            event_text = f"reopened (was {incident.status}: {incident.resolution})" + (f": {text}" if text else "")
            event_id = self.store.add_event(incident_id, now, "reopened", actor, event_text)
            incident = self.store.get_incident(incident_id)
            queued = self._followup(incident, "reopened", event_id, f"Reopened by {actor}" + (f": {text}" if text else ""), now)
            return Outcome(incident, queued=queued)

    def comment(self, incident_id: int, text: str, actor: str, now: float) -> Outcome:
        if not text.strip():
            raise IncidentError(f"the comment is empty; write it as: siqctl comment {incident_id} 'checked the logs'")
        with self.store.transaction():
            self.store.get_incident(incident_id, for_update=True)
            self.store.add_event(incident_id, now, "comment", actor, text.strip())
            self.store.update_incident(incident_id, updated_at=now)
            return Outcome(self.store.get_incident(incident_id))

    def review(self, incident_id: int, answers: dict[str, str | None], actor: str, now: float) -> Outcome:
        """Write or edit an incident's review; a value of None keeps the stored one."""
        with self.store.transaction():
            self.store.get_incident(incident_id, for_update=True)
            current = self.store.get_review(incident_id)
            merged = {}
            for question in REVIEW_QUESTIONS:
                given = answers.get(question)
                merged[question] = (given if given is not None else (current or {}).get(question, "")).strip()
            if current is None and not any(merged.values()):
                raise IncidentError(f"the review of incident {incident_id} is empty; answer at least one question")
            changed = [q for q in REVIEW_QUESTIONS if current is None or merged[q] != current[q]]
            self.store.save_review(incident_id, merged, actor, now)
            if current is None:
                text = "review written"
            elif changed:
                text = "review edited: " + ", ".join(REVIEW_LABELS[q].lower() for q in changed)
            else:
                text = "review saved unchanged"
            self.store.add_event(incident_id, now, "review", actor, text)
            self.store.update_incident(incident_id, updated_at=now)
            return Outcome(self.store.get_incident(incident_id))

    # -- shared steps ---------------------------------------------------------------------

    def _lock_series(self, host: str, rule: str, key: str) -> None:
        """Make other writers on this (host, rule, series) wait until this transaction ends.

        With PostgreSQL, two daemons may notice the same thing at once. The
        lock makes the second one find the first one's incident instead of
        failing on the one-open-incident constraint.
        """
        self.store.lock_key(f"incident\x1f{host}\x1f{rule}\x1f{key}")

    def _open_incident(self, incident_id: int, action: str) -> Incident:
        """Return the incident, locked for this transaction; raise unless it is open."""
        incident = self.store.get_incident(incident_id, for_update=True)
        if incident.status != OPEN:
            raise IncidentError(
                f"incident {incident_id} is already {incident.status} by {incident.closed_by} at "
                f"{local_time(incident.closed_at)}; to {action} it again, first run: siqctl reopen {incident_id}"
            )
        return incident

    def _close(self, incident: Incident, status: str, note: str, actor: str, now: float) -> int:
        self.store.update_incident(incident.id, status=status, closed_at=now, closed_by=actor, resolution=note,
                                   updated_at=now)
        kind = "resolved" if status == RESOLVED else "ignored"
        event_id = self.store.add_event(incident.id, now, kind, actor, note)
        closed = self.store.get_incident(incident.id)
        label = "Resolution" if status == RESOLVED else "Reason"
        return self._followup(closed, kind, event_id, f"{label} ({actor}): {note}", now)

    def _opening(self, incident: Incident, event_id: int, channels: list[str], kind: str, detail: str,
                 previous: Incident | None, now: float, check_silence: bool = True) -> int:
        if check_silence:
            silence = active_silence(self.store, incident.host, incident.rule, incident.labels, now,
                                     zone_of(self.config.timezone))
            if silence is not None:
                self.store.update_incident(incident.id, silenced_by=silence["id"])
                self.store.add_event(incident.id, now, "silenced", DAEMON_ACTOR,
                                     f"notifications held by silence #{silence['id']}: {silence['reason']}")
                return 0
        body = messages.incident_body(incident, kind, detail, self.config.dashboard_url, previous)
        return enqueue_opening(self.store, self.config, incident, event_id, channels, kind,
                               messages.notify_type(kind, incident), messages.incident_title(incident, kind), body, now)

    def _followup(self, incident: Incident, kind: str, event_id: int, detail: str, now: float) -> int:
        body = messages.incident_body(incident, kind, detail, self.config.dashboard_url, None)
        return enqueue_followup(self.store, incident, event_id, kind, messages.notify_type(kind, incident),
                                messages.incident_title(incident, kind), body, now)
