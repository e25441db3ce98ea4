"""Rounds the store could not take, kept in a local SQLite file until it is back.

When the team's PostgreSQL server is unreachable, siqd keeps sampling and
evaluating rules. Each round's samples and rule transitions (an incident to
open, a condition that cleared) go here, in order, and are written to the
store when it returns. The file survives a restart of siqd.

The bound is on rounds: past `max_rounds`, the samples of the oldest rounds
are dropped first. Transitions are never dropped, because each one is an
incident event that a person may need to see.
"""

import json
import sqlite3
from pathlib import Path

from siqd.collect.host import Sample
from siqd.rules import Transition


class BufferError(Exception):
    """The local buffer file cannot be opened or written."""


class BufferedRound:
    def __init__(self, row_id: int, ts: float, samples: list[Sample], transitions: list[dict]):
        self.row_id = row_id
        self.ts = ts
        self.samples = samples
        self.transitions = transitions


def transition_record(rule_name: str, sample: Sample, transition: Transition) -> dict:
    return {"rule": rule_name, "kind": transition.kind, "started_at": transition.started_at,
            "value": transition.value, "metric": sample.metric, "labels": sample.labels, "unit": sample.unit,
            "text": sample.text}


class OutageBuffer:
    def __init__(self, path: Path, max_rounds: int):
        self.path = path
        self.max_rounds = max_rounds
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.connection = sqlite3.connect(str(path), isolation_level=None, timeout=30)
            self.connection.execute("PRAGMA journal_mode = WAL")
            self.connection.execute(
                "CREATE TABLE IF NOT EXISTS rounds (id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, "
                "samples TEXT NOT NULL, transitions TEXT NOT NULL)"
            )
            # The rule states as of the last buffered round, so a restart during
            # an outage goes on with its `for` windows and firing series.
            self.connection.execute("CREATE TABLE IF NOT EXISTS states (id INTEGER PRIMARY KEY, data TEXT NOT NULL)")
        except (OSError, sqlite3.Error) as error:
            raise BufferError(f"cannot open the outage buffer {path}: {error}") from None

    def __len__(self) -> int:
        return self.connection.execute("SELECT COUNT(*) FROM rounds").fetchone()[0]

    def append(self, ts: float, samples: list[Sample], transitions: list[dict], states: dict) -> int:
        """Keep one round and the rule states after it.

        Returns how many old rounds lost their samples to stay within the bound.
        """
        rows = [[s.metric, s.labels, s.value, s.unit] for s in samples]
        state_rows = [[rule, series, state.state, state.since, state.value]
                      for (rule, series), state in states.items()]
        try:
            self.connection.execute("BEGIN IMMEDIATE")
            self.connection.execute("INSERT INTO states (id, data) VALUES (1, ?) "
                                    "ON CONFLICT (id) DO UPDATE SET data = excluded.data", (json.dumps(state_rows),))
            self.connection.execute("INSERT INTO rounds (ts, samples, transitions) VALUES (?, ?, ?)",
                                    (ts, json.dumps(rows), json.dumps(transitions)))
            over = self.connection.execute("SELECT COUNT(*) FROM rounds WHERE samples != '[]'").fetchone()[0] \
                - self.max_rounds
            dropped = 0
            if over > 0:
                dropped = self.connection.execute(
                    "UPDATE rounds SET samples = '[]' WHERE id IN "
                    "(SELECT id FROM rounds WHERE samples != '[]' ORDER BY id LIMIT ?)", (over,)
                ).rowcount
                self.connection.execute("DELETE FROM rounds WHERE samples = '[]' AND transitions = '[]'")
            self.connection.execute("COMMIT")
        except sqlite3.Error as error:
            if self.connection.in_transaction:
                self.connection.execute("ROLLBACK")
            raise BufferError(f"cannot write the outage buffer {self.path}: {error}") from None
        return dropped

    def rounds(self, limit: int = 100) -> list[BufferedRound]:
        """Return the oldest buffered rounds, in the order they were taken."""
        found = []
        for row_id, ts, samples, transitions in self.connection.execute(
            "SELECT id, ts, samples, transitions FROM rounds ORDER BY id LIMIT ?", (limit,)
        ):
            found.append(BufferedRound(row_id, ts, [Sample(m, labels, v, unit) for m, labels, v, unit
                                                    in json.loads(samples)], json.loads(transitions)))
        return found

    def load_states(self) -> dict:
        """Return the rule states saved with the last buffered round, keyed by (rule, series)."""
        from siqd.rules import SeriesState

        row = self.connection.execute("SELECT data FROM states WHERE id = 1").fetchone()
        if row is None:
            return {}
        return {(rule, series): SeriesState(state, since, value)
                for rule, series, state, since, value in json.loads(row[0])}

    def clear_states(self) -> None:
        """Forget the saved rule states once the store has them again."""
        self.connection.execute("DELETE FROM states")

    def remove(self, row_id: int) -> None:
        self.connection.execute("DELETE FROM rounds WHERE id = ?", (row_id,))

    def close(self) -> None:
        self.connection.close()
