"""The store's schema as an ordered list of migrations.

Each migration is a list of statements applied in one transaction; the
`meta` table records the schema version. Statements are written for both
SQLite and PostgreSQL: `{autoid}` and `{without_rowid}` are filled in per
database, and times are DOUBLE PRECISION epoch seconds (PostgreSQL's REAL
has only 24 bits of mantissa, too few for a timestamp).
"""

SCHEMA_VERSION = 8

MIGRATIONS: list[list[str]] = [
    # 1: hosts, series and samples, rule state, incidents with their timeline, the outbox.
    [
        """CREATE TABLE hosts (
            name TEXT PRIMARY KEY,
            first_seen DOUBLE PRECISION NOT NULL,
            last_seen DOUBLE PRECISION NOT NULL,
            interval DOUBLE PRECISION,
            version TEXT
        )""",
        """CREATE TABLE series (
            id {autoid},
            host TEXT NOT NULL,
            metric TEXT NOT NULL,
            labels TEXT NOT NULL,
            unit TEXT NOT NULL DEFAULT '',
            UNIQUE (host, metric, labels)
        )""",
        """CREATE TABLE samples (
            series_id BIGINT NOT NULL,
            ts DOUBLE PRECISION NOT NULL,
            value DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (series_id, ts)
        ){without_rowid}""",
        """CREATE TABLE rule_states (
            host TEXT NOT NULL,
            rule TEXT NOT NULL,
            series TEXT NOT NULL,
            state TEXT NOT NULL,
            since DOUBLE PRECISION NOT NULL,
            value DOUBLE PRECISION,
            updated_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (host, rule, series)
        )""",
        """CREATE TABLE incidents (
            id {autoid},
            host TEXT NOT NULL,
            rule TEXT NOT NULL,
            series TEXT NOT NULL,
            metric TEXT,
            labels TEXT NOT NULL DEFAULT '{{}}',
            title TEXT NOT NULL,
            severity TEXT NOT NULL,
            status TEXT NOT NULL,
            source TEXT NOT NULL,
            value DOUBLE PRECISION,
            threshold DOUBLE PRECISION,
            comparison TEXT,
            unit TEXT NOT NULL DEFAULT '',
            for_seconds DOUBLE PRECISION,
            started_at DOUBLE PRECISION NOT NULL,
            opened_at DOUBLE PRECISION NOT NULL,
            cleared_at DOUBLE PRECISION,
            closed_at DOUBLE PRECISION,
            closed_by TEXT,
            resolution TEXT,
            previous_id BIGINT,
            updated_at DOUBLE PRECISION NOT NULL
        )""",
        "CREATE UNIQUE INDEX incidents_one_open ON incidents (host, rule, series) WHERE status = 'open'",
        "CREATE INDEX incidents_status_opened ON incidents (status, opened_at)",
        "CREATE INDEX incidents_host_rule ON incidents (host, rule, closed_at)",
        """CREATE TABLE events (
            id {autoid},
            incident_id BIGINT NOT NULL REFERENCES incidents (id),
            ts DOUBLE PRECISION NOT NULL,
            kind TEXT NOT NULL,
            actor TEXT NOT NULL,
            text TEXT NOT NULL DEFAULT '',
            value DOUBLE PRECISION
        )""",
        "CREATE INDEX events_incident ON events (incident_id, id)",
        """CREATE TABLE notifications (
            id {autoid},
            incident_id BIGINT NOT NULL REFERENCES incidents (id),
            event_id BIGINT REFERENCES events (id),
            channel TEXT NOT NULL,
            target TEXT NOT NULL,
            target_masked TEXT NOT NULL,
            kind TEXT NOT NULL,
            notify_type TEXT NOT NULL,
            title TEXT NOT NULL,
            body TEXT NOT NULL,
            status TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            created_at DOUBLE PRECISION NOT NULL,
            next_attempt_at DOUBLE PRECISION NOT NULL,
            claimed_until DOUBLE PRECISION,
            sent_at DOUBLE PRECISION,
            last_error TEXT
        )""",
        "CREATE INDEX notifications_due ON notifications (status, next_attempt_at)",
        "CREATE INDEX notifications_incident ON notifications (incident_id, target)",
        """CREATE TABLE delivery_attempts (
            id {autoid},
            notification_id BIGINT NOT NULL REFERENCES notifications (id),
            ts DOUBLE PRECISION NOT NULL,
            ok INTEGER NOT NULL,
            error TEXT,
            duration DOUBLE PRECISION
        )""",
        "CREATE INDEX delivery_attempts_notification ON delivery_attempts (notification_id, id)",
        """CREATE TABLE collector_state (
            host TEXT PRIMARY KEY,
            ts DOUBLE PRECISION NOT NULL,
            data TEXT NOT NULL
        )""",
    ],
    # 2: a review per incident (what triggered it, root cause, fix, could it be detected sooner).
    [
        """CREATE TABLE reviews (
            incident_id BIGINT PRIMARY KEY REFERENCES incidents (id),
            trigger TEXT NOT NULL DEFAULT '',
            cause TEXT NOT NULL DEFAULT '',
            fix TEXT NOT NULL DEFAULT '',
            sooner TEXT NOT NULL DEFAULT '',
            author TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL,
            updated_by TEXT NOT NULL
        )""",
    ],
    # 3: a timeline per host (daemon stopped and started again, ...).
    [
        """CREATE TABLE host_events (
            id {autoid},
            host TEXT NOT NULL,
            ts DOUBLE PRECISION NOT NULL,
            kind TEXT NOT NULL,
            text TEXT NOT NULL
        )""",
        "CREATE INDEX host_events_host ON host_events (host, ts)",
    ],
    # 4: silences (maintenance windows), one-off or recurring by a cron expression.
    [
        """CREATE TABLE silences (
            id {autoid},
            host_glob TEXT NOT NULL,
            rule_glob TEXT NOT NULL,
            labels TEXT NOT NULL DEFAULT '{{}}',
            starts_at DOUBLE PRECISION NOT NULL,
            ends_at DOUBLE PRECISION,
            cron TEXT,
            duration DOUBLE PRECISION,
            reason TEXT NOT NULL,
            created_by TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            ended_at DOUBLE PRECISION,
            ended_by TEXT
        )""",
        "ALTER TABLE incidents ADD COLUMN silenced_by BIGINT",
    ],
    # 5: when a failing notification was copied to the fallback channel.
    [
        "ALTER TABLE notifications ADD COLUMN fallback_at DOUBLE PRECISION",
    ],
    # 6: flapping incidents hold their notifications.
    [
        "ALTER TABLE incidents ADD COLUMN flapping_since DOUBLE PRECISION",
    ],
    # 7: 5-minute roll-ups (min, avg, max) that outlive the raw samples.
    [
        """CREATE TABLE rollups (
            series_id BIGINT NOT NULL,
            bucket DOUBLE PRECISION NOT NULL,
            min_value DOUBLE PRECISION NOT NULL,
            avg_value DOUBLE PRECISION NOT NULL,
            max_value DOUBLE PRECISION NOT NULL,
            samples INTEGER NOT NULL,
            PRIMARY KEY (series_id, bucket)
        ){without_rowid}""",
        """CREATE TABLE rollup_progress (
            host TEXT PRIMARY KEY,
            rolled_until DOUBLE PRECISION NOT NULL
        )""",
    ],
    # 8: checks' reasons, each check's latest result, and cron heartbeat pings.
    [
        "ALTER TABLE incidents ADD COLUMN reason TEXT",
        """CREATE TABLE check_results (
            host TEXT NOT NULL,
            name TEXT NOT NULL,
            kind TEXT NOT NULL,
            ts DOUBLE PRECISION NOT NULL,
            status INTEGER NOT NULL,
            reason TEXT NOT NULL,
            duration DOUBLE PRECISION,
            PRIMARY KEY (host, name)
        )""",
        """CREATE TABLE heartbeat_pings (
            id {autoid},
            host TEXT NOT NULL,
            name TEXT NOT NULL,
            ts DOUBLE PRECISION NOT NULL,
            kind TEXT NOT NULL,
            run_id TEXT,
            exit_code INTEGER,
            duration DOUBLE PRECISION,
            output TEXT NOT NULL DEFAULT '',
            message TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX heartbeat_pings_name ON heartbeat_pings (name, ts)",
    ],
]

assert len(MIGRATIONS) == SCHEMA_VERSION
