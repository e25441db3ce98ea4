"""`siqctl rules`: every rule of the config and the state of each of its series on a host now."""

import time

import typer

from siqctl import context, render
from siqctl.context import fail, store_errors


@store_errors
def rules(
    host: str = typer.Option(None, "--host", help="host to show (default: this config's host)"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
):
    """List the rules with each series' state: ok, pending since, or firing with its incident.

    Example: siqctl rules --host db-1
    """
    from fnmatch import fnmatchcase

    from siqd.durations import format_duration
    from siqd.metrics import format_value, unit_of
    from siqd.rules import rule_matches
    from siqd.store.base import labels_of

    config = context.config()
    store = context.store(create=False)
    target = host or config.host
    if store.get_host(target) is None:
        fail(f"host {target!r} has not reported to this store; list hosts with 'siqctl hosts'")
    now = time.time()
    states = {(row["rule"], row["series"]): row for row in store.load_rule_states(target)}
    rows = []
    for rule in config.rules:
        applies = any(fnmatchcase(target, pattern) for pattern in rule.hosts)
        series_rows = [row for row in store.latest_values(target, rule.metric)
                       if rule_matches(rule, target, rule.metric, labels_of(row["labels"]))] if applies else []
        if not series_rows:
            rows.append({"rule": rule.name, "metric": rule.metric, "series": None, "state": "no data" if applies
                         else "not for this host", "since": None, "incident": None, "value": None,
                         "description": rule.description})
        for series in series_rows:
            stored = states.get((rule.name, series["labels"]))
            incident = store.find_open_incident(target, rule.name, series["labels"])
            state = stored["state"] if stored else "ok"
            if incident is not None and state == "ok":
                state = "cleared, incident open"
            if incident is not None and incident.flapping_since is not None:
                state += ", flapping"
            if incident is not None and incident.silenced_by is not None:
                state += f", silenced (#{incident.silenced_by})"
            rows.append({"rule": rule.name, "metric": rule.metric, "series": series["labels"], "state": state,
                         "since": render.iso_utc(stored["since"]) if stored else None,
                         "incident": incident.id if incident else None, "value": series["value"],
                         "value_at": render.iso_utc(series["ts"]), "description": rule.description,
                         "_since_epoch": stored["since"] if stored else None})
    if as_json:
        public = [{key: value for key, value in row.items() if not key.startswith("_")} for row in rows]
        typer.echo(render.to_json({"host": target, "rules": public}))
        return
    table = []
    for row in rows:
        state = row["state"]
        if row.get("_since_epoch") and state in ("pending", "firing"):
            state += f" for {format_duration(now - row['_since_epoch'])}"
        if row["incident"]:
            state += f" (#{row['incident']})"
        value = format_value(row["value"], unit_of(row["metric"])) if row["value"] is not None else "-"
        table.append((row["rule"], row["series"] or "-", value, state))
    typer.echo(f"Rules of {config.source} on {target}:")
    typer.echo(render.table(table, headers=("RULE", "SERIES", "NOW", "STATE")))


def register(app: typer.Typer) -> None:
    app.command("rules")(rules)
