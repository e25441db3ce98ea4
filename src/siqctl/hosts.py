"""Host commands: `siqctl hosts`."""

import time

import typer

from siqctl import context, render
from siqctl.context import store_errors

# A host is silent when it has not reported for this many of its intervals, and at least a minute.
SILENT_AFTER_INTERVALS = 3
SILENT_AFTER_MIN_SECONDS = 60.0


def host_state(host: dict, now: float) -> str:
    interval = host["interval"] or 10.0
    silent_after = max(SILENT_AFTER_INTERVALS * interval, SILENT_AFTER_MIN_SECONDS)
    return "silent" if now - host["last_seen"] > silent_after else "up"


@store_errors
def hosts(as_json: bool = typer.Option(False, "--json", help="print JSON")):
    """List the hosts whose siqd reports to this store, with when each was last seen.

    Example: siqctl hosts
    """
    now = time.time()
    found = context.store(create=False).list_hosts()
    if as_json:
        typer.echo(render.to_json([
            {"name": host["name"], "state": host_state(host, now), "last_seen": render.iso_utc(host["last_seen"]),
             "first_seen": render.iso_utc(host["first_seen"]), "interval_seconds": host["interval"],
             "version": host["version"], "open_incidents": host["open_incidents"]}
            for host in found
        ]))
        return
    if not found:
        typer.echo("No host has reported yet; start 'siqd run' on each host.")
        return
    from tabulate import tabulate

    rows = [(host["name"], host_state(host, now), render.ago(host["last_seen"], now), host["open_incidents"],
             host["version"] or "-") for host in found]
    typer.echo(tabulate(rows, headers=("HOST", "STATE", "LAST SEEN", "OPEN INCIDENTS", "SIQ VERSION"),
                        tablefmt="simple", disable_numparse=True))


def register(app: typer.Typer) -> None:
    app.command("hosts")(hosts)
