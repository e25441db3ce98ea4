"""The store interface: every read and write siqd and siqctl make, in portable SQL.

A backend supplies a DB-API connection and a few dialect details
(placeholders, auto-increment ids, how to begin a write transaction and
how to recognise "busy" and "disk full" errors). Everything above the store
talks to `Store` only.
"""

import json
from contextlib import contextmanager
from siqd.records import Record

from siqd.store.schema import MIGRATIONS, SCHEMA_VERSION

OPEN = "open"
RESOLVED = "resolved"
IGNORED = "ignored"
STATUSES = (OPEN, RESOLVED, IGNORED)


class StoreError(Exception):
    """A store failure with a one-line message saying what to do."""


class StoreBusy(StoreError):
    """The store stayed locked by another writer past the busy timeout."""


class StoreUnavailable(StoreError):
    """The store cannot be reached (server down, connection lost); retrying later may succeed."""


class StoreFull(StoreUnavailable):
    """The store's filesystem is full; writes may succeed once space is freed."""


class StoreConflict(StoreError):
    """A write broke a uniqueness rule, such as a second open incident for one series."""


class SchemaTooNew(StoreError):
    """The store was migrated by a newer siq; this one must not write to it."""


class IncidentNotFound(StoreError):
    pass


def series_key(labels: dict[str, str]) -> str:
    """Return the canonical text of a label set: "mount=/var" or "" for no labels."""
    return ",".join(f"{key}={labels[key]}" for key in sorted(labels))


def labels_of(key: str) -> dict[str, str]:
    """Return the label set of a series key, the reverse of series_key."""
    return dict(part.split("=", 1) for part in key.split(",")) if key else {}


class Incident(Record):
    id: int
    host: str
    rule: str
    series: str
    metric: str | None
    labels: dict
    title: str
    severity: str
    status: str
    source: str
    value: float | None
    threshold: float | None
    comparison: str | None
    unit: str
    for_seconds: float | None
    started_at: float
    opened_at: float
    cleared_at: float | None
    closed_at: float | None
    closed_by: str | None
    resolution: str | None
    previous_id: int | None
    updated_at: float
    silenced_by: int | None = None
    flapping_since: float | None = None
    reason: str | None = None  # a check's own words for its state: "HTTP 503 in 120 ms"

    @classmethod
    def from_row(cls, row: dict) -> "Incident":
        data = {name: row[name] for name in cls._field_names}
        data["labels"] = json.loads(row["labels"] or "{}")
        return cls(**data)


class Event(Record):
    id: int
    incident_id: int
    ts: float
    kind: str
    actor: str
    text: str
    value: float | None


class Notification(Record):
    id: int
    incident_id: int
    event_id: int | None
    channel: str
    target: str
    target_masked: str
    kind: str
    notify_type: str
    title: str
    body: str
    status: str
    attempts: int
    created_at: float
    next_attempt_at: float
    claimed_until: float | None
    sent_at: float | None
    last_error: str | None
    fallback_at: float | None = None


INCIDENT_COLUMNS = ", ".join(Incident._field_names)
NOTIFICATION_COLUMNS = ", ".join(Notification._field_names)


class Store:
    """Portable SQL over one DB-API connection; subclasses set the dialect."""

    kind = "sql"
    placeholder = "?"
    autoid = "INTEGER PRIMARY KEY AUTOINCREMENT"
    without_rowid = ""

    def __init__(self, connection, location: str):
        self.connection = connection
        self.location = location
        self._depth = 0
        self._series_ids: dict[tuple[str, str, str], int] = {}

    # -- plumbing -------------------------------------------------------------

    def _sql(self, statement: str) -> str:
        if self.placeholder != "?":
            statement = statement.replace("?", self.placeholder)
        return statement

    def execute(self, statement: str, params: tuple | list = ()):
        with self.translate_errors():
            cursor = self.connection.cursor()
            cursor.execute(self._sql(statement), params)
            return cursor

    def rows(self, statement: str, params: tuple | list = ()) -> list[dict]:
        cursor = self.execute(statement, params)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    def row(self, statement: str, params: tuple | list = ()) -> dict | None:
        found = self.rows(statement, params)
        return found[0] if found else None

    def scalar(self, statement: str, params: tuple | list = ()):
        cursor = self.execute(statement, params)
        row = cursor.fetchone()
        return row[0] if row else None

    def insert(self, statement: str, params: tuple | list = ()) -> int:
        """Run an INSERT … RETURNING id and return the new id."""
        return self.execute(statement + " RETURNING id", params).fetchone()[0]

    @contextmanager
    def translate_errors(self):
        """Turn backend errors into StoreError subclasses with a one-line message."""
        yield

    def begin_write(self) -> None:
        raise NotImplementedError

    def commit_write(self) -> None:
        with self.translate_errors():
            self.connection.commit()

    def rollback_write(self) -> None:
        self.connection.rollback()

    def lock_key(self, key: str) -> None:
        """Serialize writers that work on one key (a series) until the transaction ends.

        SQLite needs nothing: BEGIN IMMEDIATE already admits one writer at a time.
        """

    def lock_migrations(self) -> None:
        """Make concurrent migrations wait for each other; SQLite's write lock already does.

        The lock is taken before the migration's transaction begins, so that
        transaction reads what an earlier migration committed.
        """

    def unlock_migrations(self) -> None:
        pass

    def for_update(self) -> str:
        """Return the clause that locks the rows a SELECT reads, where the database needs one."""
        return ""

    @contextmanager
    def transaction(self):
        """Run the block as one write transaction; nested blocks join the outer one."""
        if self._depth:
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
            return
        self.begin_write()
        self._depth = 1
        try:
            yield self
        except BaseException:
            self._depth = 0
            self._abandon()
            raise
        self._depth = 0
        try:
            self.commit_write()
        except BaseException:
            self._abandon()  # a failed COMMIT (disk full, I/O error) must not leave the transaction open
            raise

    def _abandon(self) -> None:
        """Roll back the open transaction and forget what it created (cached series ids)."""
        self._series_ids.clear()
        try:
            self.rollback_write()
        except Exception:  # the connection may be gone; the original error matters more
            pass

    def close(self) -> None:
        self.connection.close()

    # -- schema -----------------------------------------------------------------

    def schema_version(self) -> int:
        if not self.table_exists("meta"):
            return 0
        value = self.scalar("SELECT value FROM meta WHERE key = 'schema_version'")
        return int(value) if value is not None else 0

    def table_exists(self, name: str) -> bool:
        raise NotImplementedError

    def migrate(self) -> None:
        """Bring the schema up to date; refuse a store written by a newer siq."""
        if self.schema_version() == SCHEMA_VERSION:  # the common case needs no write lock
            return
        self.lock_migrations()
        try:
            self._migrate_locked()
        finally:
            self.unlock_migrations()

    def _migrate_locked(self) -> None:
        with self.transaction():
            if not self.table_exists("meta"):
                self.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            current = self.schema_version()
            if current > SCHEMA_VERSION:
                raise SchemaTooNew(
                    f"store {self.location} has schema version {current}, newer than this siq "
                    f"understands ({SCHEMA_VERSION}); upgrade siq on this machine"
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[version - 1]:
                    self.execute(statement.format(autoid=self.autoid, without_rowid=self.without_rowid))
                self.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (str(version),),
                )

    # -- hosts and samples --------------------------------------------------------

    def mark_host_seen(self, host: str, now: float, interval: float, version: str) -> None:
        self.execute(
            "INSERT INTO hosts (name, first_seen, last_seen, interval, version) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET last_seen = excluded.last_seen, "
            "interval = excluded.interval, version = excluded.version",
            (host, now, now, interval, version),
        )

    def list_hosts(self) -> list[dict]:
        """Return every host that has reported, with its last report and open incident count."""
        return self.rows(
            "SELECT h.name, h.first_seen, h.last_seen, h.interval, h.version, "
            "(SELECT COUNT(*) FROM incidents i WHERE i.host = h.name AND i.status = 'open') AS open_incidents "
            "FROM hosts h ORDER BY h.name"
        )

    def get_host(self, host: str) -> dict | None:
        return self.row("SELECT name, first_seen, last_seen, interval, version FROM hosts WHERE name = ?", (host,))

    def add_host_event(self, host: str, ts: float, kind: str, text: str) -> None:
        self.execute("INSERT INTO host_events (host, ts, kind, text) VALUES (?, ?, ?, ?)", (host, ts, kind, text))

    def host_events(self, host: str, limit: int = 20) -> list[dict]:
        return self.rows("SELECT ts, kind, text FROM host_events WHERE host = ? ORDER BY ts DESC, id DESC LIMIT ?",
                         (host, limit))

    def series_id(self, host: str, metric: str, labels: dict[str, str], unit: str) -> int:
        key = (host, metric, series_key(labels))
        cached = self._series_ids.get(key)
        if cached is not None:
            return cached
        found = self.scalar("SELECT id FROM series WHERE host = ? AND metric = ? AND labels = ?", key)
        if found is None:
            found = self.insert(
                "INSERT INTO series (host, metric, labels, unit) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (host, metric, labels) DO UPDATE SET unit = excluded.unit",
                (*key, unit),
            )
        self._series_ids[key] = found
        return found

    def write_samples(self, host: str, ts: float, samples) -> None:
        """Store one round of samples (objects with metric, labels, value, unit)."""
        rows = [(self.series_id(host, s.metric, s.labels, s.unit), ts, s.value) for s in samples]
        if not rows:
            return
        with self.translate_errors():
            cursor = self.connection.cursor()
            cursor.executemany(
                self._sql("INSERT INTO samples (series_id, ts, value) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"),
                rows,
            )

    def latest_value(self, host: str, metric: str, series: str) -> tuple[float, float] | None:
        """Return (ts, value) of the newest sample of a series, or None."""
        row = self.row(
            "SELECT s.ts, s.value FROM samples s JOIN series r ON r.id = s.series_id "
            "WHERE r.host = ? AND r.metric = ? AND r.labels = ? ORDER BY s.ts DESC LIMIT 1",
            (host, metric, series),
        )
        return (row["ts"], row["value"]) if row else None

    def latest_values(self, host: str, metric: str) -> list[dict]:
        """Return each series of a metric on a host with its newest sample: labels (text), ts, value."""
        return self.rows(
            "SELECT r.labels, s.ts, s.value FROM series r JOIN samples s ON s.series_id = r.id "
            "WHERE r.host = ? AND r.metric = ? AND s.ts = (SELECT MAX(ts) FROM samples WHERE series_id = r.id) "
            "ORDER BY r.labels",
            (host, metric),
        )

    def series_units(self, host: str, metric: str) -> dict[str, str]:
        """Return the unit each series of a metric on a host was written with, keyed by labels text."""
        return {row["labels"]: row["unit"] for row in self.rows(
            "SELECT labels, unit FROM series WHERE host = ? AND metric = ?", (host, metric))}

    def latest_samples(self, host: str | None = None) -> list[dict]:
        """Return the newest sample of every series, of one host or of all: host, metric, labels, unit, ts, value."""
        where = "WHERE r.host = ? " if host is not None else ""
        return self.rows(
            "SELECT r.host, r.metric, r.labels, r.unit, s.ts, s.value FROM series r "
            "JOIN samples s ON s.series_id = r.id AND s.ts = (SELECT MAX(ts) FROM samples WHERE series_id = r.id) "
            f"{where}ORDER BY r.host, r.metric, r.labels",
            (host,) if host is not None else (),
        )

    def series_samples(self, host: str, metric: str, since: float) -> dict[str, list[tuple[float, float]]]:
        """Return the raw samples of each series of a metric on a host since `since`, keyed by labels text."""
        found: dict[str, list[tuple[float, float]]] = {}
        for row in self.rows(
            "SELECT r.labels, s.ts, s.value FROM series r JOIN samples s ON s.series_id = r.id "
            "WHERE r.host = ? AND r.metric = ? AND s.ts >= ? ORDER BY r.labels, s.ts",
            (host, metric, since),
        ):
            found.setdefault(row["labels"], []).append((row["ts"], row["value"]))
        return found

    def roll_up(self, host: str, until: float, bucket: float, max_buckets: int) -> float | None:
        """Aggregate a host's raw samples into roll-ups, bucket by bucket, up to `until`.

        It works through at most `max_buckets` buckets past where it stopped
        last time, so one round never stalls. Returns the new end, or None
        when there was nothing to do.
        """
        done = self.scalar("SELECT rolled_until FROM rollup_progress WHERE host = ?", (host,))
        if done is None:
            first = self.scalar("SELECT MIN(s.ts) FROM samples s JOIN series r ON r.id = s.series_id "
                                "WHERE r.host = ?", (host,))
            if first is None:
                return None
            done = first - first % bucket
        end = min(until - until % bucket, done + max_buckets * bucket)
        if end <= done:
            return None
        # Aggregated here rather than in SQL: bucketing a float timestamp needs
        # floor(), which not every SQLite build has.
        groups: dict[tuple[int, float], list[float]] = {}
        for row in self.rows(
            "SELECT s.series_id, s.ts, s.value FROM series r JOIN samples s ON s.series_id = r.id "
            "WHERE r.host = ? AND s.ts >= ? AND s.ts < ?",
            (host, done, end),
        ):
            start = row["ts"] - row["ts"] % bucket
            groups.setdefault((row["series_id"], start), []).append(row["value"])
        if groups:
            with self.translate_errors():
                self.connection.cursor().executemany(
                    self._sql("INSERT INTO rollups (series_id, bucket, min_value, avg_value, max_value, samples) "
                              "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (series_id, bucket) DO NOTHING"),
                    [(series_id, start, min(values), sum(values) / len(values), max(values), len(values))
                     for (series_id, start), values in groups.items()],
                )
        self.execute(
            "INSERT INTO rollup_progress (host, rolled_until) VALUES (?, ?) "
            "ON CONFLICT (host) DO UPDATE SET rolled_until = excluded.rolled_until",
            (host, end),
        )
        return end

    def series_rollups(self, host: str, metric: str, since: float) -> dict[str, list[tuple]]:
        """Return (bucket start, min, avg, max) per series of a metric on a host since `since`."""
        found: dict[str, list[tuple]] = {}
        for row in self.rows(
            "SELECT r.labels, u.bucket, u.min_value, u.avg_value, u.max_value FROM series r "
            "JOIN rollups u ON u.series_id = r.id WHERE r.host = ? AND r.metric = ? AND u.bucket >= ? "
            "ORDER BY r.labels, u.bucket",
            (host, metric, since),
        ):
            found.setdefault(row["labels"], []).append((row["bucket"], row["min_value"], row["avg_value"],
                                                        row["max_value"]))
        return found

    def rolled_until(self, host: str) -> float | None:
        """Return the end of a host's roll-ups: raw samples from there on are not rolled up yet."""
        return self.scalar("SELECT rolled_until FROM rollup_progress WHERE host = ?", (host,))

    def bucket_index(self, column: str) -> str:
        """Return SQL for which `step`-wide bucket past `start` a time column falls in (parameters start, step)."""
        # Truncation is floor here: the column is never before start.
        return f"CAST(({column} - ?) / ? AS INTEGER)"

    def host_history(self, host: str, start: float, end: float, step: float, raw_from: float,
                     metrics: tuple[str, ...] = ()) -> list[dict]:
        """Return min, avg and max of every series of a host in `step`-wide buckets from `start` to `end`.

        Roll-ups cover [start, raw_from) and raw samples [raw_from, end), so a
        window reads a few rows per bucket instead of every sample. `metrics`
        limits it to those metrics. Rows carry metric, labels, idx (the bucket
        number from `start`), low, mean and high.
        """
        chosen = "SELECT id FROM series WHERE host = ?"
        params: list = [host]
        if metrics:
            chosen += f" AND metric IN ({', '.join('?' for _ in metrics)})"
            params += metrics
        # Grouping by series id before joining the series names keeps the sort small.
        return self.rows(
            "SELECT r.metric, r.labels, g.idx, g.low, g.mean, g.high FROM ("
            f"SELECT u.series_id, {self.bucket_index('u.bucket')} AS idx, MIN(u.min_value) AS low, "
            "SUM(u.avg_value * u.samples) / SUM(u.samples) AS mean, MAX(u.max_value) AS high FROM rollups u "
            f"WHERE u.series_id IN ({chosen}) AND u.bucket >= ? AND u.bucket < ? GROUP BY u.series_id, idx "
            "UNION ALL "
            f"SELECT s.series_id, {self.bucket_index('s.ts')} AS idx, MIN(s.value), AVG(s.value), MAX(s.value) "
            f"FROM samples s WHERE s.series_id IN ({chosen}) AND s.ts >= ? AND s.ts < ? GROUP BY s.series_id, idx"
            ") g JOIN series r ON r.id = g.series_id",
            (start, step, *params, start, raw_from, start, step, *params, max(raw_from, start), end),
        )

    def host_incidents(self, host: str, since: float, limit: int = 100) -> list[Incident]:
        """Return a host's open incidents and those opened or closed since `since`, newest first."""
        return [Incident.from_row(row) for row in self.rows(
            f"SELECT {INCIDENT_COLUMNS} FROM incidents WHERE host = ? "
            "AND (status = 'open' OR opened_at >= ? OR closed_at >= ?) ORDER BY id DESC LIMIT ?",
            (host, since, since, limit),
        )]

    def delete_rollups_before(self, host: str, cutoff: float, limit: int) -> int:
        cursor = self.execute(
            "DELETE FROM rollups WHERE (series_id, bucket) IN (SELECT u.series_id, u.bucket FROM series r "
            "JOIN rollups u ON u.series_id = r.id AND u.bucket < ? WHERE r.host = ? LIMIT ?)",
            (cutoff, host, limit),
        )
        return cursor.rowcount

    def delete_samples_before(self, host: str, cutoff: float, limit: int) -> int:
        """Delete at most `limit` of a host's samples older than `cutoff`; return how many went.

        Going through the host's series uses the (series_id, ts) primary key
        instead of scanning every host's samples.
        """
        cursor = self.execute(
            "DELETE FROM samples WHERE (series_id, ts) IN (SELECT s.series_id, s.ts FROM series r "
            "JOIN samples s ON s.series_id = r.id AND s.ts < ? WHERE r.host = ? LIMIT ?)",
            (cutoff, host, limit),
        )
        return cursor.rowcount

    def load_collector_state(self, host: str) -> tuple[float, str] | None:
        row = self.row("SELECT ts, data FROM collector_state WHERE host = ?", (host,))
        return (row["ts"], row["data"]) if row else None

    def save_collector_state(self, host: str, ts: float, data: str) -> None:
        self.execute(
            "INSERT INTO collector_state (host, ts, data) VALUES (?, ?, ?) "
            "ON CONFLICT (host) DO UPDATE SET ts = excluded.ts, data = excluded.data",
            (host, ts, data),
        )

    # -- rule state ---------------------------------------------------------------

    def load_rule_states(self, host: str) -> list[dict]:
        return self.rows("SELECT rule, series, state, since, value, updated_at FROM rule_states WHERE host = ?",
                         (host,))

    def save_rule_state(self, host: str, rule: str, series: str, state: str, since: float,
                        value: float | None, now: float) -> None:
        self.execute(
            "INSERT INTO rule_states (host, rule, series, state, since, value, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (host, rule, series) DO UPDATE SET "
            "state = excluded.state, since = excluded.since, value = excluded.value, "
            "updated_at = excluded.updated_at",
            (host, rule, series, state, since, value, now),
        )

    def delete_rule_state(self, host: str, rule: str, series: str) -> None:
        self.execute("DELETE FROM rule_states WHERE host = ? AND rule = ? AND series = ?", (host, rule, series))

    # -- incidents ------------------------------------------------------------------

    def create_incident(self, **values) -> int:
        values.setdefault("updated_at", values["opened_at"])
        values["labels"] = json.dumps(values.get("labels") or {}, sort_keys=True)
        names = list(values)
        return self.insert(
            f"INSERT INTO incidents ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})",
            [values[name] for name in names],
        )

    def update_incident(self, incident_id: int, **values) -> None:
        assignments = ", ".join(f"{name} = ?" for name in values)
        self.execute(f"UPDATE incidents SET {assignments} WHERE id = ?", [*values.values(), incident_id])

    def get_incident(self, incident_id: int, for_update: bool = False) -> Incident:
        lock = self.for_update() if for_update else ""
        row = self.row(f"SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = ?{lock}", (incident_id,))
        if row is None:
            raise IncidentNotFound(
                f"incident {incident_id} not found; list incidents with 'siqctl incidents list --status all'"
            )
        return Incident.from_row(row)

    def find_open_incident(self, host: str, rule: str, series: str) -> Incident | None:
        row = self.row(
            f"SELECT {INCIDENT_COLUMNS} FROM incidents WHERE host = ? AND rule = ? AND series = ? AND status = 'open'",
            (host, rule, series),
        )
        return Incident.from_row(row) if row else None

    def last_closed_incident(self, host: str, rule: str, series: str | None = None) -> Incident | None:
        """Return the most recently resolved incident of a rule on a host, of one series if given."""
        row = self.row(
            f"SELECT {INCIDENT_COLUMNS} FROM incidents WHERE host = ? AND rule = ? AND status = 'resolved' "
            "AND (CAST(? AS TEXT) IS NULL OR series = ?) ORDER BY closed_at DESC LIMIT 1",
            (host, rule, series, series),
        )
        return Incident.from_row(row) if row else None

    def glob_clause(self, column: str, pattern: str) -> tuple[str, str]:
        """Return an SQL condition and its parameter matching `column` against a shell glob."""
        return f"{column} GLOB ?", pattern

    def list_incidents(self, statuses: list[str] | None = None, since: float | None = None,
                       limit: int | None = None, host: str | None = None,
                       rule: str | None = None, unreviewed: bool = False) -> list[Incident]:
        """Return incidents, newest first; `host` and `rule` are globs."""
        clauses, params = [], []
        if unreviewed:
            clauses.append("NOT EXISTS (SELECT 1 FROM reviews r WHERE r.incident_id = incidents.id)")
        if statuses:
            clauses.append(f"status IN ({', '.join('?' for _ in statuses)})")
            params.extend(statuses)
        if since is not None:
            clauses.append("opened_at >= ?")
            params.append(since)
        for column, pattern in (("host", host), ("rule", rule)):
            if pattern is not None:
                clause, param = self.glob_clause(column, pattern)
                clauses.append(clause)
                params.append(param)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        statement = f"SELECT {INCIDENT_COLUMNS} FROM incidents {where} ORDER BY id DESC"
        if limit:
            statement += " LIMIT ?"
            params.append(limit)
        return [Incident.from_row(row) for row in self.rows(statement, params)]

    def recurring_series(self, since: float | None, limit: int | None = None) -> list[dict]:
        """Return (host, rule, series) with more than one incident opened since `since`, most first."""
        clause, params = ("WHERE opened_at >= ?", [since]) if since is not None else ("", [])
        statement = (
            "SELECT host, rule, series, COUNT(*) AS incidents, MAX(id) AS latest_id, MIN(opened_at) AS first_at, "
            f"MAX(opened_at) AS last_at FROM incidents {clause} GROUP BY host, rule, series "
            "HAVING COUNT(*) > 1 ORDER BY COUNT(*) DESC, MAX(opened_at) DESC"
        )
        if limit:
            statement += " LIMIT ?"
            params.append(limit)
        return self.rows(statement, params)

    def add_event(self, incident_id: int, ts: float, kind: str, actor: str, text: str = "",
                  value: float | None = None) -> int:
        return self.insert(
            "INSERT INTO events (incident_id, ts, kind, actor, text, value) VALUES (?, ?, ?, ?, ?, ?)",
            (incident_id, ts, kind, actor, text, value),
        )

    def events(self, incident_id: int) -> list[Event]:
        return [
            Event(**row)
            for row in self.rows(
                "SELECT id, incident_id, ts, kind, actor, text, value FROM events WHERE incident_id = ? ORDER BY id",
                (incident_id,),
            )
        ]

    # -- silences ---------------------------------------------------------------------------

    def add_silence(self, **values) -> int:
        values["labels"] = json.dumps(values.get("labels") or {}, sort_keys=True)
        names = list(values)
        return self.insert(
            f"INSERT INTO silences ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})",
            [values[name] for name in names],
        )

    def silences(self, include_ended: bool = False) -> list[dict]:
        clause = "" if include_ended else "WHERE ended_at IS NULL"
        rows = self.rows(
            "SELECT id, host_glob, rule_glob, labels, starts_at, ends_at, cron, duration, reason, created_by, "
            f"created_at, ended_at, ended_by FROM silences {clause} ORDER BY id"
        )
        for row in rows:
            row["labels"] = json.loads(row["labels"] or "{}")
        return rows

    def get_silence(self, silence_id: int) -> dict | None:
        found = [row for row in self.silences(include_ended=True) if row["id"] == silence_id]
        return found[0] if found else None

    def end_silence(self, silence_id: int, actor: str, now: float) -> bool:
        cursor = self.execute("UPDATE silences SET ended_at = ?, ended_by = ? WHERE id = ? AND ended_at IS NULL",
                              (now, actor, silence_id))
        return cursor.rowcount == 1

    def state_changes(self, incident_id: int, since: float) -> tuple[int, float | None]:
        """Return how many times the incident's condition changed (opened, cleared, returned) since
        `since`, and when it last changed at all."""
        row = self.row(
            "SELECT SUM(CASE WHEN ts >= ? THEN 1 ELSE 0 END) AS recent, MAX(ts) AS last FROM events "
            "WHERE incident_id = ? AND kind IN ('opened', 'cleared', 'breach')",
            (since, incident_id),
        )
        return int(row["recent"] or 0), row["last"]

    def flapping_incidents(self, host: str) -> list[Incident]:
        rows = self.rows(f"SELECT {INCIDENT_COLUMNS} FROM incidents WHERE host = ? AND status = 'open' "
                         "AND flapping_since IS NOT NULL", (host,))
        return [Incident.from_row(row) for row in rows]

    def silenced_incidents(self, host: str, also_rule: str | None = None) -> list[Incident]:
        """Return open silenced incidents of a host, and of `also_rule` on any host."""
        rows = self.rows(f"SELECT {INCIDENT_COLUMNS} FROM incidents WHERE status = 'open' "
                         "AND silenced_by IS NOT NULL AND (host = ? OR rule = ?)", (host, also_rule or ""))
        return [Incident.from_row(row) for row in rows]

    # -- check results ----------------------------------------------------------------------

    def save_check_result(self, host: str, name: str, kind: str, ts: float, status: int, reason: str,
                          duration: float | None) -> None:
        """Store a check's latest result (status 0 ok, 1 warning, 2 critical, 3 unknown), replacing the last."""
        self.execute(
            "INSERT INTO check_results (host, name, kind, ts, status, reason, duration) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (host, name) DO UPDATE SET kind = excluded.kind, ts = excluded.ts, "
            "status = excluded.status, reason = excluded.reason, duration = excluded.duration",
            (host, name, kind, ts, status, reason, duration),
        )

    def check_results(self, host: str | None = None) -> list[dict]:
        """Return the latest result of each check, of one host or of all: host, name, kind, ts, status, reason,
        duration."""
        where = "WHERE host = ? " if host is not None else ""
        return self.rows(
            f"SELECT host, name, kind, ts, status, reason, duration FROM check_results {where}ORDER BY host, name",
            (host,) if host is not None else (),
        )

    def forget_check_results(self, host: str, keep: list[str]) -> None:
        """Delete the results of a host's checks that are no longer configured (all but `keep`)."""
        if keep:
            marks = ", ".join("?" for _ in keep)
            self.execute(f"DELETE FROM check_results WHERE host = ? AND name NOT IN ({marks})", (host, *keep))
        else:
            self.execute("DELETE FROM check_results WHERE host = ?", (host,))

    # -- reviews --------------------------------------------------------------------------------

    def get_review(self, incident_id: int) -> dict | None:
        return self.row(
            "SELECT incident_id, trigger, cause, fix, sooner, author, created_at, updated_at, updated_by "
            "FROM reviews WHERE incident_id = ?",
            (incident_id,),
        )

    def save_review(self, incident_id: int, answers: dict[str, str], actor: str, now: float) -> None:
        """Insert or update an incident's review; `answers` contains trigger, cause, fix and sooner."""
        self.execute(
            "INSERT INTO reviews (incident_id, trigger, cause, fix, sooner, author, created_at, updated_at, "
            "updated_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (incident_id) DO UPDATE SET "
            "trigger = excluded.trigger, cause = excluded.cause, fix = excluded.fix, sooner = excluded.sooner, "
            "updated_at = excluded.updated_at, updated_by = excluded.updated_by",
            (incident_id, answers["trigger"], answers["cause"], answers["fix"], answers["sooner"], actor, now,
             now, actor),
        )

    def reviewed_ids(self, incident_ids: list[int]) -> set[int]:
        if not incident_ids:
            return set()
        marks = ", ".join("?" for _ in incident_ids)
        return {row["incident_id"] for row in self.rows(
            f"SELECT incident_id FROM reviews WHERE incident_id IN ({marks})", incident_ids)}

    def incidents_between(self, start: float, end: float) -> list[Incident]:
        """Return incidents opened in [start, end), oldest first."""
        rows = self.rows(
            f"SELECT {INCIDENT_COLUMNS} FROM incidents WHERE opened_at >= ? AND opened_at < ? ORDER BY opened_at, id",
            (start, end),
        )
        return [Incident.from_row(row) for row in rows]

    # -- cron heartbeats ------------------------------------------------------------------------

    HEARTBEAT_PING_COLUMNS = "id, host, name, ts, kind, run_id, exit_code, duration, output, message"

    def add_heartbeat_ping(self, host: str, name: str, ts: float, kind: str, run_id: str | None = None,
                           exit_code: int | None = None, duration: float | None = None, output: str = "",
                           message: str = "") -> int:
        """Record a ping of a cron job: kind "start", "success" or "failure".

        `exit_code` is negative when the command was killed by that signal.
        """
        return self.insert(
            "INSERT INTO heartbeat_pings (host, name, ts, kind, run_id, exit_code, duration, output, message) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (host, name, ts, kind, run_id, exit_code, duration, output, message),
        )

    def latest_heartbeat_pings(self, host: str, name: str, limit: int) -> list[dict]:
        """Return the newest `limit` pings of a heartbeat on a host, newest first."""
        return self.rows(
            f"SELECT {self.HEARTBEAT_PING_COLUMNS} FROM heartbeat_pings WHERE name = ? AND host = ? "
            "ORDER BY ts DESC, id DESC LIMIT ?",
            (name, host, limit),
        )

    def heartbeat_pings_between(self, start: float, end: float, kind: str | None = None) -> list[dict]:
        """Return the pings of every heartbeat in [start, end), of one kind if given, oldest first."""
        return self.rows(
            f"SELECT {self.HEARTBEAT_PING_COLUMNS} FROM heartbeat_pings WHERE ts >= ? AND ts < ? "
            "AND (CAST(? AS TEXT) IS NULL OR kind = ?) ORDER BY ts, id",
            (start, end, kind, kind),
        )

    def delete_heartbeat_pings_before(self, cutoff: float, failure_cutoff: float, limit: int) -> int:
        """Delete at most `limit` pings older than `cutoff` (failures: older than `failure_cutoff`).

        The newest ping of each kind of each heartbeat stays however old it
        is, because a weekly job's last run decides its state. Failures may
        be kept longer for the report; never shorter than other pings.
        Returns how many went.
        """
        cursor = self.execute(
            "DELETE FROM heartbeat_pings WHERE id IN (SELECT p.id FROM heartbeat_pings p "
            "WHERE p.ts < CASE WHEN p.kind = 'failure' THEN ? ELSE ? END "
            "AND EXISTS (SELECT 1 FROM heartbeat_pings n WHERE n.name = p.name AND n.host = p.host "
            "AND n.kind = p.kind AND (n.ts > p.ts OR (n.ts = p.ts AND n.id > p.id))) LIMIT ?)",
            (min(cutoff, failure_cutoff), cutoff, limit),
        )
        return cursor.rowcount

    def heartbeat_watched_since(self, host: str, text: str) -> float | None:
        """Return when siqd began watching a heartbeat: its first "heartbeat" host event with this text."""
        return self.scalar("SELECT MIN(ts) FROM host_events WHERE host = ? AND kind = 'heartbeat' AND text = ?",
                           (host, text))

    def heartbeat_incident_events(self, start: float, end: float) -> list[dict]:
        """Return the openings and returns in [start, end) of incidents of heartbeat rules, oldest first."""
        return self.rows(
            "SELECT e.ts, e.kind, e.text, i.id AS incident_id, i.host, i.rule, i.reason FROM events e "
            "JOIN incidents i ON i.id = e.incident_id WHERE i.metric = 'heartbeat.status' "
            "AND e.kind IN ('opened', 'breach') AND e.ts >= ? AND e.ts < ? ORDER BY e.ts, e.id",
            (start, end),
        )

    # -- outbox ---------------------------------------------------------------------------

    def enqueue_notification(self, **values) -> int:
        values.setdefault("status", "pending")
        values.setdefault("attempts", 0)
        names = list(values)
        return self.insert(
            f"INSERT INTO notifications ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})",
            [values[name] for name in names],
        )

    def last_notice_at(self, incident_id: int) -> float | None:
        """Return when the incident last queued a notice that it is firing (opened, again, reminder)."""
        return self.scalar(
            "SELECT MAX(created_at) FROM notifications WHERE incident_id = ? AND kind IN ('opened', 'breach', "
            "'reminder', 'reopened')",
            (incident_id,),
        )

    def open_incidents_of(self, host: str) -> list[Incident]:
        rows = self.rows(f"SELECT {INCIDENT_COLUMNS} FROM incidents WHERE host = ? AND status = 'open'", (host,))
        return [Incident.from_row(row) for row in rows]

    def opening_targets(self, incident_id: int) -> list[dict]:
        """Return the (channel, target, target_masked) that were sent the incident's opening notice."""
        return self.rows(
            "SELECT DISTINCT channel, target, target_masked FROM notifications "
            "WHERE incident_id = ? AND kind = 'opened' ORDER BY channel, target",
            (incident_id,),
        )

    def due_notifications(self, now: float, limit: int = 100) -> list[Notification]:
        """Return pending notifications whose time has come, oldest first.

        A notification waits while an earlier one of the same incident to the
        same target is still pending, so a target never hears "resolved"
        before "opened".
        """
        rows = self.rows(
            f"SELECT {NOTIFICATION_COLUMNS} FROM notifications n WHERE n.status = 'pending' "
            "AND n.next_attempt_at <= ? AND (n.claimed_until IS NULL OR n.claimed_until < ?) "
            "AND NOT EXISTS (SELECT 1 FROM notifications e WHERE e.incident_id = n.incident_id "
            "AND e.target = n.target AND e.id < n.id AND e.status = 'pending') "
            "ORDER BY n.id LIMIT ?",
            (now, now, limit),
        )
        return [Notification(**row) for row in rows]

    def count_due_notifications(self, now: float) -> int:
        return self.scalar(
            "SELECT COUNT(*) FROM notifications n WHERE n.status = 'pending' AND n.next_attempt_at <= ? "
            "AND (n.claimed_until IS NULL OR n.claimed_until < ?) "
            "AND NOT EXISTS (SELECT 1 FROM notifications e WHERE e.incident_id = n.incident_id "
            "AND e.target = n.target AND e.id < n.id AND e.status = 'pending')",
            (now, now),
        )

    def next_notification_due(self) -> float | None:
        return self.scalar("SELECT MIN(next_attempt_at) FROM notifications WHERE status = 'pending'")

    def claim_notification(self, notification_id: int, now: float, lease: float) -> bool:
        """Claim a pending notification for `lease` seconds; False if another worker has it."""
        cursor = self.execute(
            "UPDATE notifications SET claimed_until = ? WHERE id = ? AND status = 'pending' "
            "AND (claimed_until IS NULL OR claimed_until < ?)",
            (now + lease, notification_id, now),
        )
        return cursor.rowcount == 1

    def record_attempt(self, notification_id: int, now: float, ok: bool, error: str | None,
                       duration: float, next_attempt_at: float | None, give_up: bool) -> None:
        self.execute(
            "INSERT INTO delivery_attempts (notification_id, ts, ok, error, duration) VALUES (?, ?, ?, ?, ?)",
            (notification_id, now, 1 if ok else 0, error, duration),
        )
        if ok:
            status = "sent"
        elif give_up:
            status = "given_up"
        else:
            status = "pending"
        self.execute(
            "UPDATE notifications SET status = ?, attempts = attempts + 1, claimed_until = NULL, "
            "sent_at = ?, last_error = ?, next_attempt_at = COALESCE(?, next_attempt_at) WHERE id = ?",
            (status, now if ok else None, error, next_attempt_at, notification_id),
        )

    def undelivered_notifications(self) -> tuple[int, Notification | None]:
        """Return how many notifications wait in the outbox and the oldest of them."""
        count = self.scalar("SELECT COUNT(*) FROM notifications WHERE status = 'pending'")
        row = self.row(f"SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE status = 'pending' "
                       "ORDER BY created_at, id LIMIT 1")
        return int(count or 0), Notification(**row) if row else None

    def failing_notifications(self) -> list[Notification]:
        """Return notifications that failed at least once and are not sent: retrying or given up."""
        rows = self.rows(
            f"SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE (status = 'pending' AND attempts > 0) "
            "OR status = 'given_up' ORDER BY id"
        )
        return [Notification(**row) for row in rows]

    def fallback_candidates(self, failing_since: float, channel: str) -> list[Notification]:
        """Return pending notifications, not yet copied to the fallback, whose target has failed since
        before `failing_since` (its oldest failing pending notification is that old)."""
        rows = self.rows(
            f"SELECT {NOTIFICATION_COLUMNS} FROM notifications n WHERE n.status IN ('pending', 'given_up') "
            "AND n.fallback_at IS NULL AND n.channel != ? AND EXISTS (SELECT 1 FROM notifications o "
            "WHERE o.target = n.target AND o.status IN ('pending', 'given_up') AND o.attempts > 0 "
            "AND o.created_at <= ?) ORDER BY n.id",
            (channel, failing_since),
        )
        return [Notification(**row) for row in rows]

    def openings_to_target(self, target: str, since: float) -> int:
        """Return how many opening notices to `target` were queued since `since`."""
        return self.scalar("SELECT COUNT(*) FROM notifications WHERE target = ? AND kind = 'opened' "
                           "AND created_at >= ?", (target, since))

    def mark_fallback(self, notification_id: int, now: float) -> bool:
        """Mark a notification as copied to the fallback; False if another worker already did."""
        cursor = self.execute("UPDATE notifications SET fallback_at = ? WHERE id = ? AND fallback_at IS NULL",
                              (now, notification_id))
        return cursor.rowcount == 1

    def notifications_for(self, incident_id: int) -> list[Notification]:
        rows = self.rows(
            f"SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE incident_id = ? ORDER BY id", (incident_id,)
        )
        return [Notification(**row) for row in rows]

    def attempts_for(self, notification_id: int) -> list[dict]:
        return self.rows(
            "SELECT ts, ok, error, duration FROM delivery_attempts WHERE notification_id = ? ORDER BY id",
            (notification_id,),
        )
