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
    store = context.store(create=False)
    found = store.list_hosts()
    current = {host["name"]: _now_values(store, host["name"]) for host in found}
    if as_json:
        typer.echo(render.to_json([
            {"name": host["name"], "state": host_state(host, now), "last_seen": render.iso_utc(host["last_seen"]),
             "first_seen": render.iso_utc(host["first_seen"]), "interval_seconds": host["interval"],
             "version": host["version"], "open_incidents": host["open_incidents"], **current[host["name"]]}
            for host in found
        ]))
        return
    if not found:
        typer.echo("No host has reported yet; start 'siqd run' on each host.")
        return
    from tabulate import tabulate

    from siqd.metrics import format_value

    rows = []
    for host in found:
        values = current[host["name"]]
        disk = values["worst_disk"]
        rows.append((host["name"], host_state(host, now), render.ago(host["last_seen"], now), host["open_incidents"],
                     format_value(values["cpu_percent"], "%"), format_value(values["memory_used_percent"], "%"),
                     f"{format_value(disk['used_percent'], '%')} {disk['mount']}" if disk else "-"))
    typer.echo(tabulate(rows, headers=("HOST", "STATE", "LAST SEEN", "OPEN", "CPU", "MEMORY", "WORST DISK"),
                        tablefmt="simple", disable_numparse=True))


def _now_values(store, host: str) -> dict:
    """Return the latest cpu, memory and fullest-disk readings of a host."""
    from siqd.store.base import labels_of

    def single(metric: str) -> float | None:
        rows = store.latest_values(host, metric)
        return rows[0]["value"] if rows else None

    disks = store.latest_values(host, "disk.used_percent")
    worst = max(disks, key=lambda row: row["value"]) if disks else None
    return {
        "cpu_percent": single("cpu.percent"),
        "memory_used_percent": single("memory.used_percent"),
        "worst_disk": {"mount": labels_of(worst["labels"])["mount"], "used_percent": worst["value"]} if worst
        else None,
    }


def register(app: typer.Typer) -> None:
    app.command("hosts")(hosts)
