"""The siqd loop: sample, store, evaluate rules, open and update incidents, deliver notifications.

Each round is one store transaction for the samples and rule states, so a
crash loses at most the round in progress. Deliveries run in a separate
process: Apprise loads every plugin on first use, which would otherwise
stay in the daemon's memory for good, and a receiver that hangs must not
delay sampling.
"""

import logging
import signal
import subprocess
import sys
import threading
import time

from siqd import __version__
from siqd.collect.host import Counters, HostCollector, Sample
from siqd.config import Config, ConfigError, Rule, load_config
from siqd.incidents import Incidents
from siqd.log import RepeatFilter, get_logger, log_event
from siqd.rules import CLEAR, FIRE, SeriesState, evaluate, rule_matches
from siqd.store import Store, StoreError, series_key

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


class Daemon:
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

    # -- state ----------------------------------------------------------------------------

    def load_states(self) -> None:
        """Restore pending and firing series from the store, so a restart keeps `for` windows."""
        known = {rule.name for rule in self.config.rules}
        self.states = {}
        stale = []
        for row in self.store.load_rule_states(self.config.host):
            if row["rule"] not in known:
                stale.append(row)
                continue
            self.states[(row["rule"], row["series"])] = SeriesState(row["state"], row["since"], row["value"])
        if stale:
            with self.store.transaction():
                for row in stale:
                    self.store.delete_rule_state(self.config.host, row["rule"], row["series"])

    def prime_collector(self, use_saved: bool) -> None:
        """Get a first counter reading: the one a previous `--once` saved, or a fresh one."""
        if use_saved:
            saved = self.store.load_collector_state(self.config.host)
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
        """Take one round of samples, store them and act on the rules; return the samples."""
        samples = self.collector.collect()
        now = self.clock()
        with self.store.transaction():
            self.store.mark_host_seen(self.config.host, now, self.config.interval, __version__)
            self.store.write_samples(self.config.host, now, samples)
            if save_counters and self.collector.previous is not None:
                self.store.save_collector_state(self.config.host, now, self.collector.previous.to_json())
            self.evaluate_rules(samples, now)
            cutoff = now - self.config.retention_raw
            self.store.delete_samples_before(cutoff, RETENTION_BATCH)
        return samples

    def evaluate_rules(self, samples: list[Sample], now: float) -> None:
        host = self.config.host
        for rule in self.config.rules:
            for sample in samples:
                if not rule_matches(rule, host, sample.metric, sample.labels):
                    continue
                key = (rule.name, series_key(sample.labels))
                before = self.states.get(key)
                after, transition = evaluate(rule, before, sample.value, now)
                self._persist_state(key, before, after, now)
                if transition is not None:
                    self._apply(rule, sample, transition, now)

    def _persist_state(self, key, before: SeriesState | None, after: SeriesState | None, now: float) -> None:
        if after is None:
            self.states.pop(key, None)
            if before is not None:
                self.store.delete_rule_state(self.config.host, *key)
            return
        self.states[key] = after
        if before is None or before.state != after.state or before.since != after.since:
            self.store.save_rule_state(self.config.host, key[0], key[1], after.state, after.since, after.value, now)

    def _apply(self, rule: Rule, sample: Sample, transition, now: float) -> None:
        fields = dict(host=self.config.host, rule=rule.name, series=series_key(sample.labels) or None,
                      value=sample.value)
        if transition.kind == FIRE:
            outcome = self.incidents.fire(rule, self.config.host, sample.labels, sample.unit, sample.value,
                                          transition.started_at, now)
            event = "incident_opened" if outcome.created else "incident_breach_again"
            log_event(logger, WARNING, event, incident=outcome.incident.id, **fields, queued=outcome.queued)
        elif transition.kind == CLEAR:
            outcome = self.incidents.clear(rule, self.config.host, sample.labels, sample.unit, sample.value, now)
            if outcome is not None:
                log_event(logger, INFO, "condition_cleared", incident=outcome.incident.id, **fields,
                          status=outcome.incident.status)

    # -- deliveries ---------------------------------------------------------------------

    def deliver_in_process(self) -> None:
        from siqd.notify.deliver import deliver_due

        deliver_due(self.store, self.config, deadline=self.clock() + DELIVERY_WORKER_LIMIT)

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
        if not self.store.count_due_notifications(self.clock()):
            return
        command = [sys.executable, "-m", "siqd", "deliver"]
        if self.config.path is not None:
            command += ["--config", str(self.config.path)]
        self.worker = subprocess.Popen(command, stdin=subprocess.DEVNULL)
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
        if new.store != self.config.store or new.host != self.config.host:
            log_event(logger, WARNING, "reload_partial", reason="store and host changes need a restart")
            new.store, new.host = self.config.store, self.config.host
        self.config = new
        self.collector.disks = new.disks
        self.incidents.config = new
        self.load_states()
        log_event(logger, INFO, "config_reloaded", file=self.config.source, rules=len(new.rules))

    def run_forever(self) -> None:
        self.install_signal_handlers()
        self.load_states()
        log_event(logger, INFO, "daemon_started", version=__version__, host=self.config.host,
                  store=self.store.location, interval=f"{self.config.interval:g}s", rules=len(self.config.rules),
                  config=self.config.source)
        self.prime_collector(use_saved=False)
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
        if self.worker is not None and self.worker.poll() is None:
            self.worker.terminate()
            try:
                self.worker.wait(5)
            except subprocess.TimeoutExpired:
                self.worker.kill()
        log_event(logger, INFO, "daemon_stopped", host=self.config.host)

    def _guarded_round(self) -> list[Sample] | None:
        """Run a round, logging a store failure instead of raising; return the samples or None."""
        try:
            samples = self.run_round()
            self.start_delivery_worker()
            self._errors.forget("round")
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
        """Take one round and deliver what is due, then return (`siqd run --once`)."""
        self.load_states()
        self.prime_collector(use_saved=True)
        samples = self.run_round(save_counters=True)
        self.deliver_in_process()
        return samples

