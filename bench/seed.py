"""Seed a store with realistic incidents for benchmarks: hosts, rules, timelines, notifications."""

import random
import time

from siqd.store import open_store


def seed_incidents(location: str, count: int = 10_000, open_count: int = 40, seed: int = 1,
                   days: int = 180) -> None:
    """Write `count` incidents over the last `days` days, `open_count` of them still open."""
    rng = random.Random(seed)
    store = open_store(location)
    now = time.time()
    hosts = [f"host-{n:02d}" for n in range(50)]
    rules = ["disk-full", "memory-high", "cpu-busy", "load-high", "inodes-full", "swap-high"]
    with store.transaction():
        for index in range(count):
            opened = now - rng.uniform(0, days * 86400)
            is_open = index >= count - open_count
            host, rule = rng.choice(hosts), rng.choice(rules)
            mount = rng.choice(["/", "/var", "/srv", "/home"]) if rule.startswith(("disk", "inodes")) else None
            labels = {"mount": mount} if mount else {}
            if mount:
                series = f"mount={mount}"
            else:
                series = f"n={index}" if is_open else ""
            incident_id = store.create_incident(
                host=host, rule=rule, series=series, metric="disk.used_percent", labels=labels,
                title=f"{host} {rule}: 93.0% above 90.0%", severity="warning", status="open" if is_open else
                rng.choice(["resolved", "resolved", "ignored"]), source="rule", value=93.0, threshold=90.0,
                comparison="above", unit="%", for_seconds=300.0, started_at=opened - 300, opened_at=opened,
                cleared_at=None if is_open else opened + 1800, closed_at=None if is_open else opened + 3600,
                closed_by=None if is_open else "ana", resolution=None if is_open else "rotated logs",
            )
            store.add_event(incident_id, opened, "opened", "siqd", "opened: 93.0% above 90.0%", 93.0)
            if not is_open:
                store.add_event(incident_id, opened + 1800, "cleared", "siqd", "condition cleared", 80.0)
                store.add_event(incident_id, opened + 3600, "resolved", "ana", "rotated logs")
    store.close()
