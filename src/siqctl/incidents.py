"""Incident commands: list, show, resolve, ignore, reopen, comment, open."""

import time

import typer

from siqctl import context, render
from siqctl.context import USAGE, fail, store_errors

incidents_app = typer.Typer(help="List and show incidents.", no_args_is_help=True)

STATUS_CHOICES = ("open", "resolved", "ignored", "closed", "all")
DEFAULT_LIMIT = 50
# Store ids are 64-bit integers; a larger number would overflow instead of being "not found".
MAX_ID = 2**63 - 1


def _statuses(choice: str) -> list[str] | None:
    if choice not in STATUS_CHOICES:
        fail(f"invalid --status {choice!r}; expected one of {', '.join(STATUS_CHOICES)}", USAGE)
    return {"all": None, "closed": ["resolved", "ignored"]}.get(choice, [choice])


def _since(text: str | None) -> float | None:
    if text is None:
        return None
    from siqd.durations import DurationError, parse_duration

    try:
        return time.time() - parse_duration(text)
    except DurationError as error:
        fail(f"invalid --since: {error}", USAGE)


@incidents_app.command("list")
@store_errors
def list_incidents(
    status: str = typer.Option("open", help="open, resolved, ignored, closed (resolved or ignored) or all"),
    host: str = typer.Option(None, help="only hosts matching this glob, e.g. 'db-*'"),
    rule: str = typer.Option(None, help="only rules matching this glob"),
    since: str = typer.Option(None, help="only incidents opened within this duration, e.g. 24h or 7d"),
    recurring: bool = typer.Option(False, "--recurring", help="list series with more than one incident "
                                                                "instead (within --since, default 30d)"),
    unreviewed: bool = typer.Option(False, "--unreviewed", help="only resolved incidents that have no review "
                                                                  "(implies --status resolved)"),
    limit: int = typer.Option(DEFAULT_LIMIT, help="show at most this many, newest first; 0 shows all"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
):
    """List incidents, newest first (open ones by default).

    Example: siqctl incidents list --status all --host 'db-*' --since 7d
    """
    if limit < 0:
        fail(f"invalid --limit {limit}; expected 0 (no limit) or more", USAGE)
    statuses = ["resolved"] if unreviewed else _statuses(status)
    opened_since = _since(since)
    store = context.store(create=False)
    if recurring:
        _list_recurring(store, _since(since or "30d"), limit, as_json)
        return
    found = store.list_incidents(statuses, opened_since, limit + 1 if limit else None, host, rule, unreviewed)
    more = 1 if limit and len(found) > limit else 0
    if more:
        found = found[:limit]
    if as_json:
        dashboard = context.config().dashboard_url
        typer.echo(render.to_json([render.incident_data(incident, dashboard) for incident in found]))
        return
    if not found:
        if unreviewed:
            label = "unreviewed resolved "
        elif status == "all":
            label = ""
        else:
            label = f"{status} "
        typer.echo(f"No {label}incidents.")
        return
    typer.echo(render.incidents_table(found))
    if more:
        typer.echo(f"(showing the newest {limit}; use --limit 0 to show all)", err=True)


def _list_recurring(store, since: float, limit: int, as_json: bool) -> None:
    found = store.recurring_series(since, limit or None)
    rows = []
    for entry in found:
        latest = store.get_incident(entry["latest_id"])
        rows.append({"host": entry["host"], "rule": entry["rule"], "series": entry["series"],
                     "incidents": entry["incidents"], "latest_id": latest.id, "latest_status": latest.status,
                     "first_opened_at": render.iso_utc(entry["first_at"]),
                     "last_opened_at": render.iso_utc(entry["last_at"]),
                     "last_resolution": _last_resolution(store, entry)})
    if as_json:
        typer.echo(render.to_json(rows))
        return
    if not rows:
        typer.echo("No series had more than one incident in this period.")
        return
    table = [(row["host"], row["rule"], render.series_label(row["series"]), row["incidents"],
              f"#{row['latest_id']} {row['latest_status']}", render.shorten(row["last_resolution"] or "-", 50))
             for row in rows]
    typer.echo(render.table(table, headers=("HOST", "RULE", "SERIES", "INCIDENTS", "LATEST", "LAST FIX")))


def _last_resolution(store, entry: dict) -> str | None:
    previous = store.last_closed_incident(entry["host"], entry["rule"], entry["series"])
    return previous.resolution if previous else None


@incidents_app.command("show")
@store_errors
def show(
    incident_id: int = typer.Argument(..., metavar="ID", min=1, max=MAX_ID, help="incident number"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
):
    """Show every field of an incident, its timeline and its notifications.

    Example: siqctl incidents show 57
    """
    store = context.store(create=False)
    incident = store.get_incident(incident_id)
    events = store.events(incident_id)
    notifications = store.notifications_for(incident_id)
    current = store.latest_value(incident.host, incident.metric, incident.series) if incident.metric else None
    previous = store.get_incident(incident.previous_id) if incident.previous_id else None
    review = store.get_review(incident_id)
    dashboard = context.config().dashboard_url
    rule = next((rule for rule in context.config().rules if rule.name == incident.rule), None)
    description = rule.description if rule is not None else ""
    if as_json:
        data = render.incident_data(incident, dashboard)
        data["review"] = render.review_data(review)
        data["description"] = description or None
        data["current"] = {"at": render.iso_utc(current[0]), "value": current[1]} if current else None
        data["previous"] = (
            {"id": previous.id, "resolution": previous.resolution, "closed_at": render.iso_utc(previous.closed_at)}
            if previous else None
        )
        data["events"] = [render.event_data(event) for event in events]
        data["notifications"] = [
            dict(render.notification_data(note), attempt_log=[
                {"at": render.iso_utc(attempt["ts"]), "ok": bool(attempt["ok"]), "error": attempt["error"]}
                for attempt in store.attempts_for(note.id)
            ])
            for note in notifications
        ]
        typer.echo(render.to_json(data))
        return
    typer.echo(render.incident_detail(incident, events, notifications, current, previous, dashboard, review,
                                      description))


# -- actions ---------------------------------------------------------------------------------


def _incidents():
    from siqd.incidents import Incidents

    return Incidents(context.store(), context.config())


def _report(verb: str, outcome, as_json: bool) -> None:
    if outcome.queued:
        context.deliver_in_background()
    if as_json:
        data = render.incident_data(outcome.incident, context.config().dashboard_url)
        data["notifications_queued"] = outcome.queued
        typer.echo(render.to_json(data))
        return
    notice = ""
    if outcome.queued:
        notice = f"; notifying {outcome.queued} target{'s' if outcome.queued != 1 else ''}"
    typer.echo(f"{verb} incident #{outcome.incident.id}: {outcome.incident.title}{notice}")


BY = typer.Option(None, "--by", help="who is acting (default: your OS user name)")
JSON = typer.Option(False, "--json", help="print the incident as JSON")
ID = typer.Argument(..., metavar="ID", min=1, max=MAX_ID, help="incident number")


@store_errors
def resolve(
    incident_id: int = ID,
    message: str = typer.Option(..., "-m", "--message", help="what fixed it; kept for next time"),
    by: str = BY,
    as_json: bool = JSON,
):
    """Resolve an incident with a note of the fix.

    Example: siqctl resolve 57 -m "rotated logs, fixed log level"
    """
    outcome = _incidents().resolve(incident_id, message, context.actor(by), time.time())
    _report("Resolved", outcome, as_json)
    if outcome.incident.cleared_at is None and outcome.incident.source == "rule" and not as_json:
        typer.echo("note: the condition has not cleared yet; a new breach after it clears opens a new incident",
                   err=True)


@store_errors
def ignore(
    incident_id: int = ID,
    message: str = typer.Option(..., "-m", "--message", help="why it needs no fix"),
    by: str = BY,
    as_json: bool = JSON,
):
    """Close an incident that needs no fix, with the reason.

    Example: siqctl ignore 58 -m "planned failover test"
    """
    outcome = _incidents().ignore(incident_id, message, context.actor(by), time.time())
    _report("Ignored", outcome, as_json)


@store_errors
def reopen(
    incident_id: int = ID,
    message: str = typer.Option("", "-m", "--message", help="why it is not over"),
    by: str = BY,
    as_json: bool = JSON,
):
    """Reopen a resolved or ignored incident.

    Example: siqctl reopen 57 -m "disk filling again"
    """
    outcome = _incidents().reopen(incident_id, context.actor(by), message.strip(), time.time())
    _report("Reopened", outcome, as_json)


@store_errors
def comment(
    incident_id: int = ID,
    text: str = typer.Argument(..., metavar="TEXT", help="the comment"),
    by: str = BY,
    as_json: bool = JSON,
):
    """Add a comment to an incident's timeline.

    Example: siqctl comment 57 "checked: /var/log/app is 15 GB"
    """
    outcome = _incidents().comment(incident_id, text, context.actor(by), time.time())
    _report("Commented on", outcome, as_json)


@store_errors
def open_incident(
    host: str = typer.Option(None, "--host", help="host the incident is about (default: this config's host)"),
    title: str = typer.Option(..., "--title", help="what is wrong, in one line"),
    severity: str = typer.Option("warning", "--severity", help="info, warning or critical"),
    message: str = typer.Option("", "-m", "--message", help="details for the timeline"),
    by: str = BY,
    as_json: bool = JSON,
):
    """Open an incident by hand, e.g. from a script or CI; repeating it adds to the open one.

    Example: siqctl open --host web-2 --title "deploy failed" --severity critical
    """
    from siqd.config import SEVERITIES

    if severity not in SEVERITIES:
        fail(f"invalid --severity {severity!r}; expected one of {', '.join(SEVERITIES)}", USAGE)
    if host is not None and not host.strip():
        fail("--host must not be empty", USAGE)
    target_host = host.strip() if host else context.config().host
    outcome = _incidents().open_manual(target_host, title, severity, context.actor(by), message.strip(), time.time())
    _report("Opened" if outcome.created else "Added to open", outcome, as_json)


def register(app: typer.Typer) -> None:
    app.add_typer(incidents_app, name="incidents")
    app.command("resolve")(resolve)
    app.command("ignore")(ignore)
    app.command("reopen")(reopen)
    app.command("comment")(comment)
    app.command("open")(open_incident)
