"""`siqctl status`: is siqd running here, is this host reporting, is the outbox moving, and what is the store."""

import time

import typer

from siqctl import context, render
from siqctl.context import store_errors

# The host counts as reporting while its last round is younger than this many intervals.
FRESH_INTERVALS = 3


@store_errors
def status(as_json: bool = typer.Option(False, "--json", help="print JSON")):
    """Show whether the local siqd runs, the age of its last sample, the outbox backlog and the store.

    Exits 1 when this host's last sample is older than three intervals, or there is none, so
    monitoring scripts can call it. With cron and siqd run --once, no siqd runs between rounds.
    Example: siqctl status
    """
    from siqd import pidfile
    from siqd.config import masked_location
    from siqd.store.schema import SCHEMA_VERSION

    now = time.time()
    config = context.config()
    store = context.store(create=False)
    daemon = pidfile.running(pidfile.pid_path(config.store, config.host))
    host = store.get_host(config.host)
    interval = (host["interval"] if host else None) or config.interval
    age = now - host["last_seen"] if host else None
    fresh = age is not None and age <= FRESH_INTERVALS * interval
    backlog, oldest = store.undelivered_notifications()
    due = store.count_due_notifications(now)
    data = {
        "siqd": {"running": daemon is not None, "pid": (daemon or {}).get("pid"),
                 "started_at": render.iso_utc((daemon or {}).get("started_at")),
                 "config": (daemon or {}).get("config")},
        "host": {"name": config.host, "last_sample_at": render.iso_utc(host["last_seen"]) if host else None,
                 "last_sample_age_seconds": round(age, 1) if age is not None else None,
                 "interval_seconds": interval, "reporting": fresh},
        "outbox": {"undelivered": backlog, "due_now": due,
                   "oldest": None if oldest is None else {
                       "id": oldest.id, "incident_id": oldest.incident_id, "channel": oldest.channel,
                       "target": oldest.target_masked, "created_at": render.iso_utc(oldest.created_at),
                       "attempts": oldest.attempts, "last_error": oldest.last_error}},
        "store": {"kind": store.kind, "location": masked_location(config.store), "size_bytes": store.size_bytes(),
                  "schema_version": store.schema_version(), "expected_schema_version": SCHEMA_VERSION},
        "config": config.source,
    }
    healthy = fresh
    if as_json:
        typer.echo(render.to_json(data))
    else:
        typer.echo(_text(data, daemon, host, oldest, now))
    if not healthy:
        raise typer.Exit(1)


def _text(data: dict, daemon: dict | None, host: dict | None, oldest, now: float) -> str:
    from siqd.durations import format_duration
    from siqd.metrics import format_bytes

    fresh = data["host"]["reporting"]
    if daemon is not None:
        since = daemon.get("started_at")
        running = f"running, pid {daemon.get('pid')}" + (f", started {render.ago(since, now)}" if since else "")
    elif fresh:
        running = "not running on this machine now; the last sample is recent (siqd run --once from cron?)"
    else:
        running = "not running on this machine (start it with 'siqd run' or 'systemctl start siqd')"
    reporting = data["host"]
    if host is None:
        sample = f"{reporting['name']} has not reported to this store yet"
    else:
        sample = (f"{reporting['name']}, last sample {render.ago(host['last_seen'], now)} "
                  f"(every {format_duration(reporting['interval_seconds'])})")
        if not reporting["reporting"]:
            sample += f"; stale: older than {FRESH_INTERVALS} intervals"
    outbox = data["outbox"]
    if oldest is None:
        backlog = "empty: every notification was delivered or given up"
    else:
        backlog = (f"{outbox['undelivered']} undelivered ({outbox['due_now']} due now); oldest #{oldest.id} for "
                   f"incident #{oldest.incident_id} to {oldest.channel} {oldest.target_masked}, queued "
                   f"{render.ago(oldest.created_at, now)}, {oldest.attempts} attempts")
        if oldest.last_error:
            backlog += f", last error: {render.shorten(oldest.last_error, 80)}"
    store = data["store"]
    schema = f"schema {store['schema_version']}"
    if store["schema_version"] != store["expected_schema_version"]:
        schema += f" (this siqctl expects {store['expected_schema_version']})"
    lines = [
        ("siqd", running),
        ("host", sample),
        ("outbox", backlog),
        ("store", f"{store['location']}, {format_bytes(store['size_bytes'])}, {schema}"),
        ("config", data["config"]),
    ]
    return "\n".join(f"{name + ':':<8}{text}" for name, text in lines)


def register(app: typer.Typer) -> None:
    app.command("status")(status)
