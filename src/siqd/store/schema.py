"""The store's schema as an ordered list of migrations.

Each migration is a list of statements applied in one transaction; the
`meta` table records the schema version. Statements use portable SQL;
`{autoid}` and `{without_rowid}` are filled in per database.
"""

SCHEMA_VERSION = 1

MIGRATIONS: list[list[str]] = [
    # 1: hosts, series and samples, rule state, incidents with their timeline, the outbox.
    [
        """CREATE TABLE hosts (
            name TEXT PRIMARY KEY,
            first_seen REAL NOT NULL,
            last_seen REAL NOT NULL,
            interval REAL,
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
            series_id INTEGER NOT NULL,
            ts REAL NOT NULL,
            value REAL NOT NULL,
            PRIMARY KEY (series_id, ts)
        ){without_rowid}""",
        """CREATE TABLE rule_states (
            host TEXT NOT NULL,
            rule TEXT NOT NULL,
            series TEXT NOT NULL,
            state TEXT NOT NULL,
            since REAL NOT NULL,
            value REAL,
            updated_at REAL NOT NULL,
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
            value REAL,
            threshold REAL,
            comparison TEXT,
            unit TEXT NOT NULL DEFAULT '',
            for_seconds REAL,
            started_at REAL NOT NULL,
            opened_at REAL NOT NULL,
            cleared_at REAL,
            closed_at REAL,
            closed_by TEXT,
            resolution TEXT,
            previous_id INTEGER,
            updated_at REAL NOT NULL
        )""",
        "CREATE UNIQUE INDEX incidents_one_open ON incidents (host, rule, series) WHERE status = 'open'",
        "CREATE INDEX incidents_status_opened ON incidents (status, opened_at)",
        "CREATE INDEX incidents_host_rule ON incidents (host, rule, closed_at)",
        """CREATE TABLE events (
            id {autoid},
            incident_id INTEGER NOT NULL REFERENCES incidents (id),
            ts REAL NOT NULL,
            kind TEXT NOT NULL,
            actor TEXT NOT NULL,
            text TEXT NOT NULL DEFAULT '',
            value REAL
        )""",
        "CREATE INDEX events_incident ON events (incident_id, id)",
        """CREATE TABLE notifications (
            id {autoid},
            incident_id INTEGER NOT NULL REFERENCES incidents (id),
            event_id INTEGER REFERENCES events (id),
            channel TEXT NOT NULL,
            target TEXT NOT NULL,
            target_masked TEXT NOT NULL,
            kind TEXT NOT NULL,
            notify_type TEXT NOT NULL,
            title TEXT NOT NULL,
            body TEXT NOT NULL,
            status TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            next_attempt_at REAL NOT NULL,
            claimed_until REAL,
            sent_at REAL,
            last_error TEXT
        )""",
        "CREATE INDEX notifications_due ON notifications (status, next_attempt_at)",
        "CREATE INDEX notifications_incident ON notifications (incident_id, target)",
        """CREATE TABLE delivery_attempts (
            id {autoid},
            notification_id INTEGER NOT NULL REFERENCES notifications (id),
            ts REAL NOT NULL,
            ok INTEGER NOT NULL,
            error TEXT,
            duration REAL
        )""",
        "CREATE INDEX delivery_attempts_notification ON delivery_attempts (notification_id, id)",
        """CREATE TABLE collector_state (
            host TEXT PRIMARY KEY,
            ts REAL NOT NULL,
            data TEXT NOT NULL
        )""",
    ],
]

assert len(MIGRATIONS) == SCHEMA_VERSION
