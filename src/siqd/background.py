"""Work siqd runs beside its rounds: the check runner, the disk watcher, the dashboard and the pid file.

Each part is imported only when the config turns it on, so siqd's memory
stays small with the defaults. Daemon inherits these methods, which use
its config, store and clock.
"""

import logging

from siqd.log import get_logger, log_event
from siqd.store import StoreError

logger = get_logger("daemon")

WARNING = logging.WARNING


class BackgroundWork:
    def start_web(self) -> None:
        """Serve the dashboard and /metrics in a thread when [web] listen is set.

        The web package is imported only then, to keep it out of siqd's memory
        otherwise. If the address cannot be bound, the error is logged and
        siqd monitors without the dashboard.
        """
        if self.config.web_listen is None:
            return
        from siqd.web.server import start_dashboard

        self.web = start_dashboard(self.config, lambda: self.config)

    def stop_web(self) -> None:
        if self.web is not None:
            self.web.stop()
            self.web = None

    def update_watcher(self) -> None:
        """Start, change or stop the directory scans to match [disks] watch.

        siqd.diskwatch is imported only when paths are watched, to keep it
        out of siqd's memory otherwise.
        """
        disks = self.config.disks
        if not disks.watch:
            self.stop_watcher()
        elif self.watcher is None:
            from siqd.diskwatch import DiskWatcher

            self.watcher = DiskWatcher(disks)
            self.watcher.start()
        else:
            self.watcher.update(disks)

    def stop_watcher(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None

    def scan_due_paths(self) -> None:
        """For `siqd run --once`: scan the watched paths whose last scan is watch_every old, in this process."""
        disks = self.config.disks
        if not disks.watch:
            return
        from siqd.diskwatch import DiskWatcher, due_paths
        from siqd.store.base import labels_of

        try:
            last_scans = {labels_of(row["labels"]).get("path"): row["ts"]
                          for row in self.store.latest_values(self.config.host, "dir.scan_complete")}
        except StoreError:
            last_scans = {}  # the round reports the outage; sizing the paths costs only the budget
        self.watcher = DiskWatcher(disks)
        self.watcher.scan_paths(due_paths(disks, last_scans, self.clock()))

    def hold_pid_file(self, now: float):
        """Take the pid file `siqctl status` reads; return its handle, or None if that is not possible."""
        from siqd import pidfile

        path = pidfile.pid_path(self.config.store, self.config.host)
        try:
            handle = pidfile.hold(path, now, self.config.source)
        except OSError as error:
            log_event(logger, WARNING, "pid_file_unavailable", path=path, error=error,
                      effect="siqctl status cannot tell that siqd runs")
            return None
        if handle is None:
            other = pidfile.running(path) or {}
            log_event(logger, WARNING, "another_siqd_running", host=self.config.host, pid=other.get("pid"),
                      path=path, effect="both sample this host; stop one of them")
        return handle

    # -- checks -----------------------------------------------------------------------------

    def update_checks(self) -> None:
        """Start, change or stop the check runner to match the config's [[check]] tables.

        siqd.checks.runner is imported only when checks are configured, to keep
        it (and http.client, ssl) out of siqd's memory otherwise.
        """
        self.prune_check_results = True
        if not self.config.checks:
            self.stop_checks()
        elif self.checks is None:
            from siqd.checks.runner import CheckRunner

            self.checks = CheckRunner(self.config.checks, self.clock)
            self.checks.start()
        else:
            self.checks.update(self.config.checks)

    def stop_checks(self) -> None:
        if self.checks is not None:
            self.checks.stop()
            self.checks = None

    def run_checks_once(self) -> None:
        """For `siqd run --once`: run every check now and wait for the results, each within its timeout."""
        if not self.config.checks:
            return
        from siqd.checks.runner import CheckRunner

        self.checks = CheckRunner(self.config.checks, self.clock)
        self.checks.run_all_once()

    def save_check_results(self) -> None:
        """Store the check results that arrived since the last save, in check_results, in one transaction."""
        fresh = self.checks.unsaved_results() if self.checks is not None else []
        if not fresh and not self.prune_check_results:
            return
        with self.store.transaction():
            for check, result in fresh:
                self.store.save_check_result(self.config.host, check.name, check.kind, result.finished_at,
                                             result.status, result.reason, result.duration)
            if self.prune_check_results:
                self.store.forget_check_results(self.config.host, [check.name for check in self.config.checks])
        self.prune_check_results = False
        if self.checks is not None:
            self.checks.mark_saved(fresh)
