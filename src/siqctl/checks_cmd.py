"""`siqctl checks`: the latest result of every check in the store, per host."""

import time

import typer

from siqctl import context, render
from siqctl.context import USAGE, fail, store_errors


@store_errors
def checks(
    host: str = typer.Option(None, "--host", help="only hosts matching this glob, e.g. 'web-*' (default: all)"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
):
    """List each check's latest result: status (ok, warning, critical, unknown), reason and age.

    Example: siqctl checks --host 'web-*'
    """
    from fnmatch import fnmatchcase

    from siqd.checks import STATUS_WORDS
    from siqd.config import glob_problem

    if host is not None:
        problem = glob_problem(host)
        if problem:
            fail(f"invalid --host {host!r}: {problem}", USAGE)
    store = context.store(create=False)
    now = time.time()
    rows = [row for row in store.check_results() if host is None or fnmatchcase(row["host"], host)]
    if as_json:
        typer.echo(render.to_json([
            {"host": row["host"], "name": row["name"], "type": row["kind"],
             "status": STATUS_WORDS.get(row["status"], "unknown"), "status_code": row["status"],
             "reason": row["reason"], "duration_seconds": row["duration"], "at": render.iso_utc(row["ts"]),
             "age_seconds": round(now - row["ts"], 3)}
            for row in rows
        ]))
        return
    if not rows:
        where = f" on hosts matching {host!r}" if host is not None else ""
        typer.echo(f"No check results{where}; add [[check]] tables to the config and run 'siqd run'.")
        return
    table = [(row["host"], row["name"], row["kind"], STATUS_WORDS.get(row["status"], "unknown"), row["reason"],
              render.ago(row["ts"], now)) for row in rows]
    typer.echo(render.table(table, headers=("HOST", "CHECK", "TYPE", "STATUS", "REASON", "RESULT FROM")))


def register(app: typer.Typer) -> None:
    app.command("checks")(checks)
