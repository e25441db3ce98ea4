"""Run checks on their schedules in worker threads, apart from the daemon's rounds.

One scheduler thread wakes when a check is due and starts it in a worker
thread of its own, so a slow or hung check delays neither sampling nor the
other checks. A check still running when it is due again is not started a
second time. A worker that runs past its timeout plus OVERRUN_GRACE is
reported as critical, again each time the check is due while it runs.
Python cannot stop a thread, so its late result is dropped, and the check
is started again once that worker has returned.

The daemon reads results through samples(now) and unsaved_results(); the
latest result of each check is kept under a lock.
"""

import sys
import threading
import time

from siqd.checks import CRITICAL, STATUS_WORDS, UNKNOWN, Check, Result, format_timeout, run_check
from siqd.collect.host import Sample
from siqd.durations import format_duration
from siqd.log import get_logger, log_event

logger = get_logger("checks")

INFO, WARNING, ERROR = 20, 30, 40
# A worker still running this long after its check's timeout is reported as not finishing.
# HTTP and TCP runs end at their socket timeouts and plugin runs within about 3 s after
# theirs (TERM_GRACE and KILL_WAIT in plugin.py). NOTE: name resolution (getaddrinfo) has
# no timeout, so a host name whose DNS server does not respond is what ends up here.
OVERRUN_GRACE = 5.0
# The scheduler wakes at least this often, even with nothing due.
MAX_SLEEP = 60.0


class _Slot:
    """One check's schedule, running worker and latest result."""

    def __init__(self, check: Check, due: float):
        self.check = check
        self.next_due = due  # time.monotonic() of the next start
        self.worker: threading.Thread | None = None
        self.started = 0.0
        self.run_id = 0
        self.overran = False  # the running worker passed timeout + OVERRUN_GRACE and was reported
        self.result: Result | None = None
        self.saved = True  # the result is in the store's check_results


class CheckRunner:
    def __init__(self, checks: list[Check], clock=time.time):
        self.clock = clock
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._slots: dict[str, _Slot] = {}
        self._thread: threading.Thread | None = None
        self.update(checks)

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._schedule, name="check-scheduler", daemon=True)
        self._thread.start()
        log_event(logger, INFO, "checks_started", checks=len(self._slots))

    def stop(self, wait: float = 5.0) -> None:
        """Stop scheduling and end running plugins (systemctl included) with their process groups.

        Worker threads are daemon threads, so they end with the process.
        """
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(wait)
            self._thread = None
        plugin = sys.modules.get("siqd.checks.plugin")  # loaded only when a plugin or systemd check ran
        if plugin is not None:
            ended = plugin.end_running()
            if ended:
                log_event(logger, INFO, "checks_stopped", plugins_ended=ended)

    def update(self, checks: list[Check]) -> None:
        """Take a new check list (after a reload): unchanged checks keep their schedule and result."""
        now = time.monotonic()
        with self._lock:
            slots = {}
            for check in checks:
                slot = self._slots.get(check.name)
                if slot is None or slot.check != check:
                    slot = _Slot(check, now)
                slots[check.name] = slot
            self._slots = slots
        self._wake.set()

    def run_all_once(self) -> None:
        """Run every check now and wait for them, each at most its timeout plus OVERRUN_GRACE (siqd run --once)."""
        with self._lock:
            slots = list(self._slots.values())
            for slot in slots:
                self._start(slot, time.monotonic())
        for slot in slots:
            worker = slot.worker
            if worker is not None:
                worker.join(max(slot.started + slot.check.timeout + OVERRUN_GRACE - time.monotonic(), 0))
        with self._lock:
            for slot in slots:
                if slot.worker is not None and not slot.overran:
                    self._report_overrun(slot, time.monotonic())

    # -- results for the daemon ---------------------------------------------------------------

    def samples(self, now: float) -> list[Sample]:
        """Return the samples of each check whose latest result is younger than its `every`.

        An older result gives nothing, so the rules see the check as unknown
        and an old failure cannot fire a second time. An unknown outcome
        gives no status sample, only its duration and measures.
        """
        found = []
        with self._lock:
            for name, slot in self._slots.items():
                result = slot.result
                if result is None or now - result.finished_at >= slot.check.every:
                    continue
                labels = {"check": name}
                if result.status != UNKNOWN:
                    found.append(Sample("check.status", labels, float(result.status), text=result.reason))
                found.append(Sample("check.duration_seconds", labels, round(result.duration, 6)))
                for metric, extra, value, unit in result.measures:
                    found.append(Sample(metric, {**labels, **extra}, value, unit))
        return found

    def unsaved_results(self) -> list[tuple[Check, Result]]:
        """Return the results not yet in the store, as (check, result)."""
        with self._lock:
            return [(slot.check, slot.result) for slot in self._slots.values()
                    if slot.result is not None and not slot.saved]

    def mark_saved(self, saved: list[tuple[Check, Result]]) -> None:
        """Note that these results are stored; a newer result that arrived meanwhile stays unsaved."""
        with self._lock:
            for check, result in saved:
                slot = self._slots.get(check.name)
                if slot is not None and slot.result is result:
                    slot.saved = True

    def latest(self) -> dict[str, Result]:
        with self._lock:
            return {name: slot.result for name, slot in self._slots.items() if slot.result is not None}

    # -- scheduling ---------------------------------------------------------------------------

    def _schedule(self) -> None:
        while not self._stopping:
            self._wake.clear()
            now = time.monotonic()
            wake_at = now + MAX_SLEEP
            with self._lock:
                for slot in self._slots.values():
                    wake_at = min(wake_at, self._tend(slot, now))
            self._wake.wait(max(wake_at - time.monotonic(), 0.0))

    def _tend(self, slot: _Slot, now: float) -> float:
        """Start or watch one check; return when it next needs attention. Called with the lock held."""
        check = slot.check
        attention = slot.next_due
        if slot.worker is not None and not slot.overran:
            limit = slot.started + check.timeout + OVERRUN_GRACE
            if now >= limit:
                self._report_overrun(slot, now)
            else:
                attention = min(attention, limit)
        if now >= slot.next_due:
            if slot.worker is None:
                self._start(slot, now)
            elif slot.overran:
                # Reported again each time the check is due, so a check stuck for good
                # keeps a fresh critical result and its rule's `for` can pass.
                self._report_overrun(slot, now)
            else:
                log_event(logger, WARNING, "check_skipped", check=check.name,
                          reason=f"the run started {now - slot.started:.0f}s ago is still going")
            slot.next_due += check.every
            if slot.next_due <= now:  # fell behind (suspend): start from now instead of catching up
                slot.next_due = now + check.every
            attention = min(attention, slot.next_due)
        return attention

    def _start(self, slot: _Slot, now: float) -> None:
        slot.run_id += 1
        slot.started = now
        slot.overran = False
        slot.worker = threading.Thread(target=self._work, args=(slot, slot.run_id), name=f"check-{slot.check.name}",
                                       daemon=True)
        slot.worker.start()

    def _work(self, slot: _Slot, run_id: int) -> None:
        check = slot.check
        try:
            result = run_check(check)
        except Exception as error:  # a bug in a check must not end the worker silently
            log_event(logger, ERROR, "check_crashed", check=check.name, error=f"{type(error).__name__}: {error}")
            result = Result(UNKNOWN, f"siq's {check.kind} check failed: {type(error).__name__}: {error}",
                            time.monotonic() - slot.started)
        with self._lock:
            if slot.run_id != run_id:
                return
            slot.worker = None
            if slot.overran:
                log_event(logger, WARNING, "check_finished_late", check=check.name,
                          seconds=f"{time.monotonic() - slot.started:.1f}", dropped=result.reason)
            elif self._slots.get(check.name) is slot:
                self._record(slot, result)
        self._wake.set()

    def _report_overrun(self, slot: _Slot, now: float) -> None:
        slot.overran = True
        limit = slot.check.timeout + OVERRUN_GRACE
        running = now - slot.started
        reason = f"did not finish within {format_timeout(limit)}"
        if running > limit + 1:
            reason += f"; still running after {format_duration(running)}"
        self._record(slot, Result(CRITICAL, reason, running))

    def _record(self, slot: _Slot, result: Result) -> None:
        result.finished_at = self.clock()
        before = slot.result.status if slot.result is not None else None
        if result.status != before:
            log_event(logger, INFO if result.status == 0 else WARNING, "check_status_changed", check=slot.check.name,
                      status=STATUS_WORDS[result.status], was=STATUS_WORDS.get(before), reason=result.reason)
        slot.result = result
        slot.saved = False
