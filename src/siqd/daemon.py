"""The siqd loop: sample, store, evaluate rules, open and update incidents, deliver notifications.

Each round is one store transaction for the samples and rule states, so a
crash loses at most the round in progress. Deliveries run in a separate
process: Apprise loads every plugin on first use, which would otherwise
stay in the daemon's memory for good, and a receiver that hangs must not
delay sampling.
"""

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time

from siqd import __version__
from siqd.background import BackgroundWork
from siqd.buffer import OutageBuffer, transition_record
from siqd.collect.host import Counters, HostCollector, Sample
from siqd.config import Config, ConfigError, load_config
from siqd.hostview import stale_after
from siqd.incidents import Incidents
from siqd.log import RepeatFilter, get_logger, log_event
from siqd.rules import (
    CLEAR, FIRE, SILENT_HOST_RULE, SeriesState, evaluate, forecast_eta, rule_matches, silent_host_rule,
)
from siqd.timefmt import local_time, zone_of
from siqd.store import Store, StoreError, StoreFull, StoreUnavailable, series_key

logger = get_logger("daemon")

INFO, WARNING, ERROR = logging.INFO, logging.WARNING, logging.ERROR

# How long to measure CPU and byte rates when there is no earlier reading.
PRIME_SECONDS = 1.0
# Counters saved by `siqd run --once` are used by the next run only if this fresh.
SAVED_COUNTERS_MAX_AGE = 900.0
# Old raw samples deleted per round, so retention never stalls a round.
RETENTION_BATCH = 5000
# A delivery worker running longer than this is stopped; its claims expire and
# the next worker retries.
DELIVERY_WORKER_LIMIT = 300.0
# Raw samples are rolled up into buckets of this many seconds (min, avg, max), a
# bucket once it ended this long ago, at most this many buckets per round.
ROLLUP_SECONDS = 300.0
ROLLUP_LATENESS = 60.0
ROLLUP_BUCKETS_PER_ROUND = 12
# A pending series with no reading for this many rounds is forgotten.
VANISHED_AFTER_ROUNDS = 5
# Reconnection attempts to an unreachable store back off up to this many seconds.
MAX_RECONNECT_DELAY = 60.0
# A full local disk is retried sooner than a lost database server.
MAX_DISK_FULL_DELAY = 10.0
# SQLite page cache of the daemon's own connection, in KiB.
DAEMON_CACHE_KIB = 1024
# Rounds kept in memory while an SQLite store's disk is full: an hour at the default interval.
MEMORY_BUFFER_ROUNDS = 360


class Daemon(BackgroundWork):
    def __init__(self, config: Config, store: Store, clock=time.time):
        self.config = config
        self.store = store
        self.clock = clock
        self.collector = HostCollector(config.disks)
        self.incidents = Incidents(store, config)
        self.states: dict[tuple[str, str], SeriesState] = {}
        self.stop_requested = threading.Event()
        self.reload_requested = False
        self.worker: subprocess.Popen | None = None
        self.worker_started = 0.0
        self._errors = RepeatFilter()
        # Set when the store could not be reached at start: migrate and load states on the first write.
        self.store_ready = True
        self.states_loaded = False
        self.outage_since: float | None = None
        self.outage_attempts = 0
        self.next_store_attempt = 0.0
        # When each (rule, series) last had a reading; see _forget_vanished.
        self.last_reading: dict[tuple[str, str], float] = {}
        # Recent readings per (metric, series) for forecast rules.
        self.history: dict[tuple[str, str], list[tuple[float, float]]] = {}
        # No rule opens an incident before this time (see start_grace).
        self.hold_until: float | None = None
        self.buffer: OutageBuffer | None = None
        self.web = None  # the dashboard server (siqd.web.server.Dashboard) while [web] listen is set
        self.watcher = None  # siqd.diskwatch.DiskWatcher while [disks] watch lists paths
        self.checks = None  # siqd.checks.runner.CheckRunner while [[check]] tables are configured
        self.prune_check_results = True  # drop stored results of removed checks at the next save
        self.heartbeats = None  # siqd.heartbeats.HeartbeatWatch once [[heartbeat]] tables are configured
        # A full disk under an SQLite store: rounds wait in memory, and the space
        # reserved beside the database makes room to record that the disk is full.
        self.reserve = None
        self.disk_full_since: float | None = None
        self.url_check = None  # the child process checking notification URLs as siqd starts
        if store.kind != "sqlite":
            self.buffer = OutageBuffer(config.buffer_path, config.buffer_max_rounds)
        else:
            from siqd.reserve import Reserve

            self.reserve = Reserve(store.path)
            # The loop appends rows and reads a few recent ones, so a 1 MiB page cache does;
            # SQLite's default of 2 MB would take about a tenth of siqd's memory.
            store.execute(f"PRAGMA cache_size = -{DAEMON_CACHE_KIB}")

    # -- state ----------------------------------------------------------------------------

    def load_states(self) -> None:
        """Restore pending and firing series from the store, so a restart keeps `for` windows.

        States already in memory (evaluated while the store was unreachable)
        are newer than the stored ones and win.
        """
        known = {rule.name for rule in self.config.rules}
        loaded: dict[tuple[str, str], SeriesState] = {}
        stale = []
        for row in self.store.load_rule_states(self.config.host):
            if row["rule"] not in known:
                stale.append(row)
                continue
            loaded[(row["rule"], row["series"])] = SeriesState(row["state"], row["since"], row["value"])
            self.last_reading.setdefault((row["rule"], row["series"]), row["updated_at"])
        if stale:
            with self.store.transaction():
                for row in stale:
                    self.store.delete_rule_state(self.config.host, row["rule"], row["series"])
        if self.states_loaded:
            self.states = loaded
        else:
            self.states = {**loaded, **{key: state for key, state in self.states.items() if key[0] in known}}
        self.states_loaded = True

    def prime_collector(self, use_saved: bool) -> None:
        """Get a first counter reading: the one a previous `--once` saved, or a fresh one."""
        if use_saved:
            try:
                saved = self.store.load_collector_state(self.config.host)
            except StoreUnavailable:
                saved = None
            if saved is not None and self.clock() - saved[0] <= SAVED_COUNTERS_MAX_AGE:
                try:
                    self.collector.previous = Counters.from_json(saved[1])
                    return
                except (ValueError, KeyError, TypeError):
                    pass
        self.collector.prime()
        self.stop_requested.wait(PRIME_SECONDS)

    # -- one round ----------------------------------------------------------------------

    def run_round(self, save_counters: bool = False) -> list[Sample]:
        """Take one round of samples, store them and act on the rules; return the samples.

        If the store is unreachable and a buffer is configured, the round goes
        to the buffer, and buffered rounds are written first once it is back.
        """
        samples = self.collector.collect()
        if self.watcher is not None:
            samples += self.watcher.samples()
        now = self.clock()
        if self.checks is not None:
            samples += self.checks.samples(now)  # the latest results only: a round never waits on a check
        if self.config.heartbeats and self.outage_since is None:  # in an outage the pings cannot be read
            if self.heartbeats is None:
                from siqd.heartbeats import HeartbeatWatch

                self.heartbeats = HeartbeatWatch()
            samples += self.heartbeats.samples(self.store, self.config, now)
        changes, transitions = self.decide(samples, now)
        if self.buffer is not None and (self.outage_since is not None or len(self.buffer)):
            if not self.flush_buffer():
                self.buffer_round(now, samples, transitions)
                return samples
        try:
            self.write_round(now, samples, changes, transitions, save_counters)
        except StoreUnavailable as error:
            if not self.can_buffer(error):
                raise
            self.start_outage(error)
            self.buffer_round(now, samples, transitions)
            return samples
        try:
            self.save_check_results()
            self.watch_hosts(now)
            self.send_reminders(now)
            self.release_silences(now)
            self.end_flapping(now)
        except StoreUnavailable as error:
            if not self.can_buffer(error):
                raise
            self.start_outage(error)  # the round itself is stored; the next one is buffered
        return samples

    def decide(self, samples: list[Sample], now: float) -> tuple[list, list[dict]]:
        """Evaluate every rule on its series and update the in-memory states.

        Returns the state changes to persist, as (key, state or None), and
        the transitions to apply, in order. Nothing is written here.
        """
        changes, transitions = [], []
        host = self.config.host
        self._remember(samples, now)
        for rule in self.config.rules:
            for sample in samples:
                if not rule_matches(rule, host, sample.metric, sample.labels):
                    continue
                key = (rule.name, series_key(sample.labels))
                before = self.states.get(key)
                value = sample.value
                if rule.predict is not None:
                    value = forecast_eta(self.history.get((sample.metric, key[1]), []), rule.predict, now,
                                         rule.window)
                    sample = Sample(sample.metric, sample.labels, value if value is not None else 0.0, "s")
                after, transition = evaluate(rule, before, value, now, self.hold_until)
                if after is None:
                    self.states.pop(key, None)
                    if before is not None:
                        changes.append((key, None))
                else:
                    self.states[key] = after
                    # A pending row is rewritten every round, so its updated_at is the
                    # last reading and a restarted daemon can find vanished series.
                    if before is None or before.state != after.state or before.since != after.since \
                            or after.state == "pending":
                        changes.append((key, after))
                if after is not None:
                    self.last_reading[key] = now
                else:
                    self.last_reading.pop(key, None)
                if transition is not None:
                    transitions.append(transition_record(rule.name, sample, transition))
        changes.extend(self._forget_vanished(now))
        return changes, transitions

    def _forget_vanished(self, now: float) -> list:
        """Drop pending series that got no reading for VANISHED_AFTER_ROUNDS rounds (a mount went away).

        A missed round or two is unknown and changes nothing. A series gone
        for longer must not resume an old `for` window when it comes back.
        Firing series stay, because their incident is open.
        """
        limit = VANISHED_AFTER_ROUNDS * self.config.interval
        # Watched directories get a reading once per scan, every watch_every.
        scan_limit = max(limit, VANISHED_AFTER_ROUNDS * self.config.disks.watch_every)
        scanned_rules = {rule.name for rule in self.config.rules if rule.metric.startswith("dir.")}
        gone = []
        for key, state in list(self.states.items()):
            last = self.last_reading.setdefault(key, now)
            if state.state == "pending" and now - last > (scan_limit if key[0] in scanned_rules else limit):
                del self.states[key]
                self.last_reading.pop(key, None)
                gone.append((key, None))
        return gone

    def _remember(self, samples: list[Sample], now: float) -> None:
        """Keep recent readings of the metrics that forecast rules fit lines to.

        The history lives in memory, so after a restart a forecast waits until
        its window has filled again instead of fitting a line to a gap.
        """
        windows = {rule.metric: rule.window for rule in self.config.rules if rule.predict is not None}
        if not windows:
            return
        for sample in samples:
            window = windows.get(sample.metric)
            if window is None:
                continue
            points = self.history.setdefault((sample.metric, series_key(sample.labels)), [])
            points.append((now, sample.value))
            while points and points[0][0] < now - window:
                points.pop(0)

    def evaluate_rules(self, samples: list[Sample], now: float) -> None:
        """Evaluate the rules and write the outcome, inside the caller's transaction."""
        changes, transitions = self.decide(samples, now)
        self._persist_states(changes, now)
        for record in transitions:
            self._apply(record, now)

    def write_round(self, ts: float, samples: list[Sample], changes: list, transitions: list[dict],
                    save_counters: bool = False) -> None:
        """Write one round (taken at `ts`) to the store in one transaction."""
        if not self.store_ready:
            self.store.migrate()
            self.store_ready = True
        if not self.states_loaded:
            self.load_states()
        with self.store.transaction():
            self.store.mark_host_seen(self.config.host, ts, self.config.interval, __version__)
            self.store.write_samples(self.config.host, ts, samples)
            if save_counters and self.collector.previous is not None:
                self.store.save_collector_state(self.config.host, ts, self.collector.previous.to_json())
            self._persist_states(changes, ts)
            for record in transitions:
                self._apply(record, ts)
            self.store.delete_samples_before(self.config.host, self.clock() - self.config.retention_raw,
                                             RETENTION_BATCH)
            self.store.delete_heartbeat_pings_before(self.clock() - self.config.retention_raw,
                                                     self.clock() - self.config.retention_rollup, RETENTION_BATCH)
            if ts >= self.clock() - self.config.interval:  # a live round, not one replayed from the buffer
                # NOTE: rounds replayed after an outage older than the roll-up point
                # keep their raw samples but do not reach the roll-ups.
                self.store.roll_up(self.config.host, ts - ROLLUP_LATENESS, ROLLUP_SECONDS, ROLLUP_BUCKETS_PER_ROUND)
                self.store.delete_rollups_before(self.config.host, ts - self.config.retention_rollup,
                                                 RETENTION_BATCH)

    def _persist_states(self, changes: list, now: float) -> None:
        for (rule, series), state in changes:
            if state is None:
                self.store.delete_rule_state(self.config.host, rule, series)
            else:
                self.store.save_rule_state(self.config.host, rule, series, state.state, state.since, state.value, now)

    def _sync_states(self, now: float) -> None:
        """Replace the host's stored rule states with the in-memory ones (after an outage)."""
        with self.store.transaction():
            for row in self.store.load_rule_states(self.config.host):
                if (row["rule"], row["series"]) not in self.states:
                    self.store.delete_rule_state(self.config.host, row["rule"], row["series"])
            self._persist_states(list(self.states.items()), now)

    def _apply(self, record: dict, now: float) -> None:
        rule = next((rule for rule in self.config.rules if rule.name == record["rule"]), None)
        if rule is None:  # removed by a reload while the round waited in the buffer
            log_event(logger, WARNING, "transition_dropped", rule=record["rule"], reason="rule no longer configured")
            return
        labels = record["labels"]
        value = record["value"]
        shown = f"{value:.0f}s" if record["unit"] == "s" and value not in (None, float("inf")) else value
        fields = dict(host=self.config.host, rule=rule.name, series=series_key(labels) or None, value=shown)
        if record["kind"] == FIRE:
            outcome = self.incidents.fire(rule, self.config.host, labels, record["unit"], record["value"],
                                          record["started_at"], now, reason=record.get("text", ""))
            if outcome.changed:
                event = "incident_opened" if outcome.created else "incident_breach_again"
                log_event(logger, WARNING, event, incident=outcome.incident.id, **fields, queued=outcome.queued)
        elif record["kind"] == CLEAR:
            outcome = self.incidents.clear(rule, self.config.host, labels, record["unit"], record["value"], now,
                                           reason=record.get("text", ""))
            if outcome is not None:
                log_event(logger, INFO, "condition_cleared", incident=outcome.incident.id, **fields,
                          status=outcome.incident.status)

    # -- silences ------------------------------------------------------------------------

    def release_silences(self, now: float) -> None:
        """Notify incidents whose silence has ended while they still hold."""
        from siqd.silences import is_active

        zone = zone_of(self.config.timezone)
        # Host-silent incidents belong to a dead host whose own daemon cannot
        # release them, so every daemon does; the series lock makes one win.
        # NOTE: other incidents are released by their host's daemon only, so a
        # silenced `siqctl open` incident for a host without siqd stays held.
        for incident in self.store.silenced_incidents(self.config.host, SILENT_HOST_RULE):
            if not is_active(self.store, incident.silenced_by, now, zone):
                queued = self.incidents.release_silenced(incident, now)
                log_event(logger, WARNING, "silence_ended_incident_notified", incident=incident.id, queued=queued)

    # -- flapping -------------------------------------------------------------------------

    def end_flapping(self, now: float) -> None:
        """Release flapping incidents whose condition has not changed for their rule's flap window."""
        rules = {rule.name: rule for rule in self.config.rules}
        for incident in self.store.flapping_incidents(self.config.host):
            rule = rules.get(incident.rule)
            if rule is None:
                continue
            _, last_change = self.store.state_changes(incident.id, now - rule.flap_window)
            if last_change is None or now - last_change >= rule.flap_window:
                queued = self.incidents.end_flapping(incident, rule, now)
                log_event(logger, INFO, "flapping_ended", incident=incident.id, rule=rule.name, queued=queued)

    # -- reminders ---------------------------------------------------------------------

    def send_reminders(self, now: float) -> None:
        """Remind the channels of incidents still open and breaching, every `remind_every` of their rule."""
        rules = {rule.name: rule for rule in self.config.rules if rule.remind_every}
        if not rules:
            return
        for incident in self.store.open_incidents_of(self.config.host):
            rule = rules.get(incident.rule)
            state = self.states.get((incident.rule, incident.series))
            if rule is None or incident.cleared_at is not None or state is None or state.state != "firing":
                continue
            if incident.flapping_since is not None or incident.silenced_by is not None:
                continue  # held back: a reminder would be the noise the hold prevents
            last = self.store.last_notice_at(incident.id)
            if last is not None and now - last >= rule.remind_every:
                queued = self.incidents.remind(incident, now)
                log_event(logger, INFO, "reminder_queued", incident=incident.id, rule=rule.name, queued=queued)

    # -- silent hosts -----------------------------------------------------------------

    def watch_hosts(self, now: float) -> None:
        """Open a host-silent incident for each host that stopped reporting; clear it when it reports again.

        Every daemon on a shared store does this; the store's one-open-incident
        rule and the series lock make sure the first one to notice opens it.
        """
        rule = silent_host_rule(self.config)
        for host in self.store.list_hosts():
            silent = max(now - host["last_seen"], 0.0)
            limit = stale_after(host, self.config.stale_after, self.config.interval)
            rule.threshold = rule.clear = limit
            fields = dict(host=host["name"], silent=f"{silent:.0f}s")
            if silent > limit and host["name"] != self.config.host:
                outcome = self.incidents.fire(rule, host["name"], {}, "s", round(silent), host["last_seen"], now)
                if outcome.created:
                    log_event(logger, WARNING, "host_silent", incident=outcome.incident.id, **fields)
            elif host["open_incidents"]:
                # Cleared only once the host reported after it went silent, not by a
                # daemon whose own stale_after is longer than the one that opened it.
                incident = self.store.find_open_incident(host["name"], rule.name, "")
                if incident is not None and incident.cleared_at is None and \
                        host["last_seen"] > incident.started_at + 0.5:
                    text = f"host reported again at {local_time(host['last_seen'])}"
                    outcome = self.incidents.clear(rule, host["name"], {}, "s", round(silent), now, text=text)
                    if outcome is not None:
                        log_event(logger, INFO, "host_back", incident=outcome.incident.id, **fields)

    def record_downtime(self, now: float) -> None:
        """On start, note in this host's timeline (and any host-silent incident) how long siqd was not running."""
        host = self.store.get_host(self.config.host)
        if host is None or now - host["last_seen"] <= 2 * self.config.interval:
            return
        text = f"siqd was not running from {local_time(host['last_seen'])} to {local_time(now)}"
        with self.store.transaction():
            self.store.add_host_event(self.config.host, now, "downtime", text)
            incident = self.store.find_open_incident(self.config.host, SILENT_HOST_RULE, "")
            if incident is not None:
                self.store.add_event(incident.id, now, "comment", "siqd", text)
        log_event(logger, INFO, "downtime_recorded", host=self.config.host,
                  seconds=f"{now - host['last_seen']:.0f}")

    # -- store outages ------------------------------------------------------------------

    def start_outage(self, error: StoreError) -> None:
        first = self.outage_since is None
        if first:
            self.outage_since = self.clock()
            self.outage_attempts = 0
            self._errors.forget("outage")
        self.outage_attempts += 1
        full = isinstance(error, StoreFull)
        delay = min(2 ** self.outage_attempts, MAX_DISK_FULL_DELAY if full else MAX_RECONNECT_DELAY)
        self.next_store_attempt = time.monotonic() + delay
        if full:
            self._disk_full(error, first, delay)
            return
        if first:
            log_event(logger, ERROR, "store_unavailable", store=self.store.location, error=error,
                      buffer=self.buffer.path if self.buffer else None, retry_in=f"{delay:.0f}s")
            self._errors.should_log("outage", time.time())
            return
        should_log, suppressed = self._errors.should_log("outage", time.time())
        if should_log:
            log_event(logger, WARNING, "store_still_unavailable", store=self.store.location, error=error,
                      outage=f"{self.clock() - self.outage_since:.0f}s",
                      rounds_buffered=len(self.buffer) if self.buffer else None, retry_in=f"{delay:.0f}s")

    def finish_url_check(self) -> None:
        """Raise ConfigError if the URL check started with siqd found a URL that Apprise rejects."""
        from siqd.notify.urlcheck import finish_check

        if self.url_check is None:
            return
        for channel, masked in finish_check(self.url_check) or []:
            raise ConfigError(self.config.source, f"notify.channels.{channel}",
                              f"Apprise does not accept the URL {masked!r}; check it with 'siqctl config check'")
        self.url_check = None

    def can_buffer(self, error: StoreError) -> bool:
        """Tell whether rounds can wait for the store, making the in-memory buffer on an SQLite disk's first fill.

        The buffer is made only then, so a healthy SQLite host does not carry it.
        """
        if self.buffer is not None:
            return True
        if not isinstance(error, StoreFull):
            return False
        from pathlib import Path

        self.buffer = OutageBuffer(Path(":memory:"), min(self.config.buffer_max_rounds, MEMORY_BUFFER_ROUNDS))
        return True

    def _disk_full(self, error: StoreError, first: bool, delay: float) -> None:
        """Log a full store disk once, and release the reserve so the next write fits."""
        if self.disk_full_since is None:
            self.disk_full_since = self.clock()
            released = self.reserve is not None and self.reserve.release()
            if released:
                self.next_store_attempt = 0.0  # write the waiting round, and its incident, into the freed space
            log_event(logger, ERROR, "store_disk_full", store=self.store.location, error=error,
                      reserve_released=f"{self.reserve.size // 1024} KiB" if released else None,
                      waiting="rounds are kept in memory until there is space again",
                      max_rounds=self.buffer.max_rounds)
            self._errors.should_log("outage", time.time())
            return
        should_log, _ = self._errors.should_log("outage", time.time())
        if should_log:
            log_event(logger, WARNING, "store_still_full", store=self.store.location,
                      full_for=f"{self.clock() - self.disk_full_since:.0f}s", rounds_waiting=len(self.buffer),
                      retry_in=f"{delay:.0f}s")

    def refill_reserve(self) -> None:
        """After a full disk, make the reserve again once there is room, which ends the episode."""
        if self.disk_full_since is None or self.reserve is None or not self.reserve.ensure():
            return
        log_event(logger, INFO, "store_disk_space_back", store=self.store.location,
                  full_for=f"{self.clock() - self.disk_full_since:.0f}s")
        self.disk_full_since = None

    def buffer_round(self, ts: float, samples: list[Sample], transitions: list[dict]) -> None:
        dropped = self.buffer.append(ts, samples, transitions, self.states)
        if dropped:
            log_event(logger, WARNING, "buffer_full", buffer=self.buffer.path, max_rounds=self.buffer.max_rounds,
                      dropped="samples of the oldest rounds; rule transitions are kept")

    def flush_buffer(self) -> bool:
        """Write buffered rounds to the store in order; return True once the buffer is empty."""
        if self.outage_since is not None and time.monotonic() < self.next_store_attempt:
            return False
        written = 0
        try:
            while True:
                batch = self.buffer.rounds()
                if not batch:
                    break
                for buffered in batch:
                    try:
                        self.write_round(buffered.ts, buffered.samples, [], buffered.transitions)
                    except StoreUnavailable:
                        raise
                    except StoreError as error:  # this round cannot be written; keep the rest moving
                        log_event(logger, ERROR, "buffered_round_failed", ts=buffered.ts, error=error)
                    self.buffer.remove(buffered.row_id)
                    written += 1
            self._sync_states(self.clock())
            self.buffer.clear_states()
        except StoreUnavailable as error:
            self.start_outage(error)
            return False
        if self.outage_since is not None or written:
            log_event(logger, INFO, "store_back", store=self.store.location, rounds_written=written,
                      outage=f"{self.clock() - (self.outage_since or self.clock()):.0f}s")
        self.outage_since = None
        return True

    # -- deliveries ---------------------------------------------------------------------

    def deliver_in_process(self) -> None:
        from siqd.notify.deliver import deliver_due

        if self.outage_since is not None:
            return
        try:
            deliver_due(self.store, self.config, deadline=self.clock() + DELIVERY_WORKER_LIMIT)
        except StoreUnavailable as error:
            log_event(logger, ERROR, "delivery_skipped", store=self.store.location, error=error)

    def start_delivery_worker(self) -> None:
        """Start `siqd deliver` in a child process when notifications are due and none is running."""
        if self.worker is not None:
            if self.worker.poll() is None:
                if time.monotonic() - self.worker_started > DELIVERY_WORKER_LIMIT:
                    log_event(logger, WARNING, "delivery_worker_stopped", pid=self.worker.pid,
                              reason=f"ran longer than {DELIVERY_WORKER_LIMIT:.0f}s")
                    self.worker.kill()
                    self.worker.wait()
                else:
                    return
            self.worker = None
        if self.outage_since is not None or not self.store.count_due_notifications(self.clock()):
            return
        command = [sys.executable, "-m", "siqd", "deliver"]
        if self.config.path is not None:
            command += ["--config", str(self.config.path)]
        # The daemon's store (it may come from --store), by environment because
        # a PostgreSQL URL can hold a password and command lines are public.
        env = dict(os.environ, SIQ_STORE=self.config.store)
        # The worker gets the running config's [notify] settings on stdin instead of
        # reading the file, which may hold an edit that a reload rejected.
        command.append("--notify-settings-stdin")
        settings = json.dumps({"host": self.config.host, "store": self.config.store,
                               "log_level": self.config.log_level,
                               "notify": {name: getattr(self.config.notify, name)
                                          for name in self.config.notify._field_names}})
        self.worker = subprocess.Popen(command, stdin=subprocess.PIPE, env=env)
        try:
            self.worker.stdin.write(settings.encode())
            self.worker.stdin.close()
        except OSError as error:  # the worker exited at once and logged the reason to stderr
            log_event(logger, WARNING, "delivery_worker_failed", pid=self.worker.pid, error=error)
        self.worker_started = time.monotonic()

    # -- the loop -------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self.stop_requested.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop_requested.set())
        signal.signal(signal.SIGHUP, lambda *_: setattr(self, "reload_requested", True))

    def reload(self) -> None:
        """Apply a changed config file; an invalid one keeps the running config."""
        self.reload_requested = False
        try:
            new = load_config(self.config.path)
        except ConfigError as error:
            log_event(logger, ERROR, "reload_failed", file=error.source, key=error.key or None,
                      error=error.message, action="kept the running config")
            return
        if new.notify.channels != self.config.notify.channels:
            from siqd.notify.urlcheck import unusable_urls

            for channel, masked in unusable_urls(new.notify.channels) or []:
                log_event(logger, ERROR, "reload_failed", file=new.source, key=f"notify.channels.{channel}",
                          error=f"Apprise does not accept the URL {masked!r}", action="kept the running config")
                return
        if new.store != self.config.store or new.host != self.config.host:
            log_event(logger, WARNING, "reload_partial", reason="store and host changes need a restart")
            new.store, new.host = self.config.store, self.config.host
        if (new.web_listen, new.web_token) != (self.config.web_listen, self.config.web_token):
            log_event(logger, WARNING, "reload_partial", reason="[web] changes take effect when siqd restarts")
            new.web_listen, new.web_token = self.config.web_listen, self.config.web_token
        self.config = new
        self.collector.disks = new.disks
        self.update_watcher()
        self.incidents.config = new
        self.update_checks()
        try:
            self.load_states()
        except StoreError as error:  # e.g. during an outage: the next stored round loads them
            self.states_loaded = False
            log_event(logger, WARNING, "reload_states_deferred", error=error)
        log_event(logger, INFO, "config_reloaded", file=self.config.source, rules=len(new.rules))

    def _record_downtime_at_start(self) -> None:
        try:
            self.record_downtime(self.clock())
        except StoreUnavailable:
            pass  # the outage is logged by the first round

    def load_states_at_start(self) -> None:
        """Load rule states; with a buffer, an unreachable store only delays it to the first write."""
        try:
            self.load_states()
        except StoreUnavailable as error:
            if self.buffer is None:
                raise
            known = {rule.name for rule in self.config.rules}
            self.states = {key: state for key, state in self.buffer.load_states().items() if key[0] in known}
            self.start_outage(error)

    def start_grace(self, since: float) -> None:
        """Hold back incidents until `startup_grace` after `since` (a start or a boot)."""
        self.hold_until = since + self.config.startup_grace

    def run_forever(self) -> None:
        self.install_signal_handlers()
        pid_handle = self.hold_pid_file(self.clock())
        if self.reserve is not None:
            self.reserve.ensure()
        self.start_grace(self.clock())
        self.load_states_at_start()
        self._record_downtime_at_start()
        log_event(logger, INFO, "daemon_started", version=__version__, host=self.config.host,
                  store=self.store.location, interval=f"{self.config.interval:g}s", rules=len(self.config.rules),
                  config=self.config.source)
        self.start_web()
        self.update_watcher()
        self.update_checks()
        self.prime_collector(use_saved=False)
        self.finish_url_check()

        first = self._guarded_round()
        if first is not None:
            mounts = ",".join(sorted(s.labels["mount"] for s in first if s.metric == "disk.used_percent"))
            log_event(logger, INFO, "first_round_done", samples=len(first), mounts=mounts)
        next_round = time.monotonic() + self.config.interval

        while not self.stop_requested.wait(max(next_round - time.monotonic(), 0)):
            if self.reload_requested:
                self.reload()
            self._guarded_round()
            next_round += self.config.interval
            delay = next_round - time.monotonic()
            if delay < 0:  # fell behind (suspend, slow store): skip missed rounds
                next_round = time.monotonic() + self.config.interval

        self.stop_web()
        self.stop_watcher()
        self.stop_checks()
        if self.worker is not None and self.worker.poll() is None:
            self.worker.terminate()
            try:
                self.worker.wait(5)
            except subprocess.TimeoutExpired:
                self.worker.kill()
        if pid_handle is not None:
            from siqd import pidfile

            pidfile.release(pid_handle, pidfile.pid_path(self.config.store, self.config.host))
        buffered = len(self.buffer) if self.buffer is not None else 0
        log_event(logger, INFO, "daemon_stopped", host=self.config.host,
                  rounds_buffered=buffered or None, buffer=self.buffer.path if buffered else None)

    def _guarded_round(self) -> list[Sample] | None:
        """Run a round, logging a store failure instead of raising; return the samples or None."""
        try:
            samples = self.run_round()
            self.start_delivery_worker()
            self._errors.forget("round")
            if self.outage_since is None:
                self.refill_reserve()
            return samples
        except StoreError as error:
            should_log, suppressed = self._errors.should_log("round", time.time())
            if should_log:
                log_event(logger, ERROR, "round_failed", error=error, suppressed=suppressed or None)
            try:
                self.load_states()  # the transaction rolled back; drop what it changed in memory
            except StoreError:
                pass  # logged above; the next round tries again
            return None

    def run_once(self) -> list[Sample]:
        """Take one round and deliver what is due, then return (`siqd run --once`).

        Each cron run is a start, so only the grace after boot applies here.
        """
        import psutil

        self.start_grace(psutil.boot_time())
        self.load_states_at_start()
        self.prime_collector(use_saved=True)
        self.scan_due_paths()
        self.run_checks_once()
        samples = self.run_round(save_counters=True)
        self.deliver_in_process()
        return samples

