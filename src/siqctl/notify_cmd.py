"""`siqctl notify status`: deliveries that are failing or were given up, with their last error."""

import time

import typer

from siqctl import context, render
from siqctl.context import store_errors

notify_app = typer.Typer(help="See how notifications are being delivered.", no_args_is_help=True)


@notify_app.command("status")
@store_errors
def status(as_json: bool = typer.Option(False, "--json", help="print JSON")):
    """List notifications that are failing (retrying) or were given up, with their last error.

    Example: siqctl notify status
    """
    now = time.time()
    failing = context.store(create=False).failing_notifications()
    data = [dict(render.notification_data(note), incident_id=note.incident_id,
                 forwarded_to_fallback=note.fallback_at is not None) for note in failing]
    if as_json:
        typer.echo(render.to_json(data))
        return
    if not data:
        typer.echo("No notification is failing: none has a failed attempt or was given up. "
                   "'siqctl status' shows those still waiting for their first attempt.")
        return
    rows = []
    for note in failing:
        state = "given up" if note.status == "given_up" else f"retry {render.ago(note.next_attempt_at, now)}" \
            if note.next_attempt_at < now else f"retry at {render.local_time(note.next_attempt_at)}"
        if note.fallback_at is not None:
            state += ", sent to fallback"
        rows.append((f"#{note.id}", f"#{note.incident_id}", note.kind, note.channel, note.target_masked,
                     note.attempts, state, render.shorten(note.last_error or "-", 60)))
    typer.echo(render.table(rows, headers=("ID", "INCIDENT", "KIND", "CHANNEL", "TARGET", "ATTEMPTS", "STATE",
                                       "LAST ERROR")))


def register(app: typer.Typer) -> None:
    app.add_typer(notify_app, name="notify")
