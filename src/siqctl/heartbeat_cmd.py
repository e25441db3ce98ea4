"""Cron heartbeat commands: `siqctl heartbeat` pings, `siqctl run` wraps a job, `siqctl heartbeats` lists them."""

import sys
import time

import typer

from siqctl import context, render
from siqctl.context import USAGE, fail, store_errors

NAME_HELP = "the heartbeat's name, as the config gives it"
HOST_HELP = "the host the job runs on (default: the config's host)"


def _warn(message: str) -> None:
    typer.echo(f"warning: {message}", err=True)


def _config_problem(config, name: str, host: str) -> str | None:
    """Return why pings of `name` from `host` will not alert, or None when a heartbeat watches them."""
    heartbeat = next((item for item in config.heartbeats if item.name == name), None)
    if heartbeat is None:
        return f"no [[heartbeat]] named {name!r} is configured in {config.source}, so nothing will alert on it"
    if heartbeat.host != host:
        return (f"heartbeat {name!r} is configured for host {heartbeat.host!r}, not {host!r}, so nothing will "
                "alert on this ping; leave out --host or change the heartbeat's host")
    return None


@store_errors
def heartbeat(
    name: str = typer.Argument(..., metavar="NAME", help=NAME_HELP),
    failed: bool = typer.Option(False, "--fail", help="record a failed run instead of a successful one"),
    message: str = typer.Option("", "--message", "-m", help="a note stored with the ping; a failure shows it"),
    host: str = typer.Option(None, "--host", help=HOST_HELP),
):
    """Record that a cron job ran: a success, or a failure with --fail. Prints nothing when it worked.

    Example (crontab): 0 3 * * * /usr/local/bin/backup && siqctl heartbeat backup
    """
    from siqd.heartbeats import FAILURE, NAME_FORM, NAME_PATTERN, SUCCESS

    if not NAME_PATTERN.fullmatch(name):
        fail(f"invalid heartbeat name {name!r}; use {NAME_FORM}", USAGE)
    if host is not None and not host.strip():
        fail("--host must not be empty", USAGE)
    config = context.config()
    target = host.strip() if host else config.host
    problem = _config_problem(config, name, target)
    if problem:
        _warn(problem)
    store = context.store()
    with store.transaction():
        store.add_heartbeat_ping(target, name, time.time(), FAILURE if failed else SUCCESS, message=message)


def run(
    name: str = typer.Argument(..., metavar="NAME", help=NAME_HELP),
    command: list[str] = typer.Argument(None, metavar="-- COMMAND [ARGS]...",
                                        help="the job's command and its arguments, run without a shell"),
    host: str = typer.Option(None, "--host", help=HOST_HELP),
):
    """Run a cron job's command and record its start, end, exit code, duration and last output lines.

    Its output passes through unchanged and siqctl exits with its exit code
    (128+N if signal N ended it, 127 if it was not found). siq problems,
    such as an unreachable store, print one warning and never stop the job.

    Example (crontab): 0 3 * * * siqctl run backup -- /usr/local/bin/backup --full
    """
    from siqd.config import ConfigError, checked_store, find_config_file, load_config
    from siqd.heartbeats import NAME_FORM, NAME_PATTERN
    from siqd.jobrun import JobRecorder, run_command
    from siqd.store import open_store

    if not command:
        fail(f"missing the command to run; give it after --, e.g. siqctl run {name} -- /usr/local/bin/job", USAGE)
    if host is not None and not host.strip():
        fail("--host must not be empty", USAGE)

    recorder = None
    if not NAME_PATTERN.fullmatch(name):
        _warn(f"invalid heartbeat name {name!r} (use {NAME_FORM}); running the command without recording it")
    else:
        try:
            config = load_config(find_config_file(context.options.config_file))
            if context.options.store:
                config.store = checked_store(context.options.store)
        except ConfigError as error:
            _warn(f"{error}; running the command without recording it")
        else:
            for warning in config.warnings:
                _warn(warning)
            target = host.strip() if host else config.host
            problem = _config_problem(config, name, target)
            if problem:
                _warn(problem)
            recorder = JobRecorder(lambda: open_store(config.store), target, name)
            recorder.start(time.time())

    sys.stdout.flush()
    sys.stderr.flush()
    result = run_command(command)
    if result.error:
        typer.echo(f"error: {result.error}", err=True)
    if recorder is not None:
        warning = recorder.finish(time.time(), result)
        if warning:
            _warn(warning)
    raise typer.Exit(result.exit_code)


@store_errors
def heartbeats(as_json: bool = typer.Option(False, "--json", help="print JSON")):
    """List the configured heartbeats with their last run, last result and state.

    Example: siqctl heartbeats
    """
    from siqd.heartbeats import overview

    config = context.config()
    if not config.heartbeats:
        if as_json:
            typer.echo(render.to_json([]))
        else:
            typer.echo(f"No [[heartbeat]] is configured in {config.source}.")
        return
    now = time.time()
    rows = overview(context.store(create=False), config, now)
    if as_json:
        typer.echo(render.to_json([{key: value for key, value in row.items() if not key.startswith("_")}
                                   for row in rows]))
        return
    table = []
    for row in rows:
        state = row["state"] + (f" (#{row['incident']})" if row["incident"] else "")
        table.append((row["name"], row["host"], row["schedule"], render.ago(row["_last_run_epoch"], now),
                      _result_text(row["last_result"]), state))
    typer.echo(render.table(table, headers=("HEARTBEAT", "HOST", "SCHEDULE", "LAST RUN", "LAST RESULT", "STATE")))
    notes = [f"{row['name']}: {row['reason']}" for row in rows if row["state"] in ("late", "failed", "stuck")]
    notes += [f"{row['name']}: siqd on {row['host']} has not started watching it, so nothing alerts on it yet; "
              "run siqd there with this [[heartbeat]] in its config" for row in rows if row["watched_since"] is None]
    if notes:
        typer.echo("")
        for note in notes:
            typer.echo(note)


def _result_text(result: dict | None) -> str:
    if result is None:
        return "-"
    from siqd.heartbeats import run_time_text

    took = f" in {run_time_text(result['duration_seconds'])}" if result["duration_seconds"] is not None else ""
    if result["result"] == "success":
        return f"success{took}"
    detail = result["detail"]
    if len(detail) > 40:
        detail = detail[:39] + "…"
    return f"failed{took}: {detail}" if detail else f"failed{took}"


def register(app: typer.Typer) -> None:
    app.command("heartbeat")(heartbeat)
    app.command("run")(run)
    app.command("heartbeats")(heartbeats)
