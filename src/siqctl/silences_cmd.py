"""`siqctl silence add|list|end`: maintenance windows that mute notifications, never the record."""

import time
from datetime import datetime, timedelta

import typer

from siqctl import context, render
from siqctl.context import USAGE, fail, store_errors

silence_app = typer.Typer(help="Mute notifications for maintenance: add, list and end silences.",
                          no_args_is_help=True)

TIME_FORMS = "HH:MM (the next such time), 'YYYY-MM-DD HH:MM' or ISO 8601"


def parse_until(text: str, now: float, zone) -> float:
    """Return the epoch of an --until value, read in the config's time zone."""
    current = datetime.fromtimestamp(now, zone) if zone else datetime.fromtimestamp(now).astimezone()
    try:
        clock = datetime.strptime(text, "%H:%M")
        moment = current.replace(hour=clock.hour, minute=clock.minute, second=0, microsecond=0)
        if moment.timestamp() <= now:
            moment += timedelta(days=1)
        return moment.timestamp()
    except ValueError:
        pass
    for form in ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"):
        try:
            moment = datetime.strptime(text, form)
            return (moment.replace(tzinfo=zone) if zone else moment.astimezone()).timestamp()
        except ValueError:
            continue
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        fail(f"invalid --until {text!r}; expected {TIME_FORMS}", USAGE)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone) if zone else moment.astimezone()
    return moment.timestamp()


@silence_app.command("add")
@store_errors
def add(
    host: str = typer.Option(..., "--host", help="hosts to silence, a glob such as 'db-*'"),
    rule: str = typer.Option("*", "--rule", help="rules to silence, a glob (default: all)"),
    label: list[str] = typer.Option([], "--label", help="only series whose label matches, KEY=GLOB; repeatable"),
    for_: str = typer.Option(None, "--for", help="silence from now for this long, e.g. 30m"),
    until: str = typer.Option(None, "--until", help=f"silence from now until then: {TIME_FORMS}"),
    every: str = typer.Option(None, "--every", help="recurring: a cron expression, e.g. '0 2 * * *'"),
    duration: str = typer.Option(None, "--duration", help="with --every: how long each window lasts, e.g. 1h"),
    message: str = typer.Option(..., "-m", "--message", help="why; shown on silenced incidents"),
    by: str = typer.Option(None, "--by", help="who adds it (default: your OS user name)"),
    as_json: bool = typer.Option(False, "--json", help="print the silence as JSON"),
):
    """Add a silence: matching incidents are still recorded but send no notification while it lasts.

    Examples: siqctl silence add --host db-1 --for 30m -m "kernel upgrade";
    siqctl silence add --host 'backup-*' --rule disk-full --every '0 2 * * *' --duration 1h -m "nightly backup"
    """
    from siqd.config import glob_problem
    from siqd.cron import CronError, CronExpression
    from siqd.durations import DurationError, format_duration, parse_duration
    from siqd.timefmt import zone_of

    for name, pattern in (("--host", host), ("--rule", rule)):
        problem = glob_problem(pattern)
        if problem:
            fail(f"invalid {name} glob {pattern!r}: {problem}", USAGE)
    labels = {}
    for item in label:
        key, sep, pattern = item.partition("=")
        if not sep or not key or glob_problem(pattern):
            fail(f"invalid --label {item!r}; expected KEY=GLOB such as mount=/var*", USAGE)
        labels[key] = pattern
    if not message.strip():
        fail("a reason is required: -m 'kernel upgrade on db-1'", USAGE)
    if sum(value is not None for value in (for_, until, every)) != 1:
        fail("give exactly one of --for, --until or --every (with --duration)", USAGE)
    config = context.config()
    zone = zone_of(config.timezone)
    now = time.time()
    ends_at, cron, length = None, None, None

    def seconds(option: str, text: str) -> float:
        try:
            value = parse_duration(text)
        except DurationError as error:
            fail(f"invalid {option}: {error}", USAGE)
        if value <= 0:
            fail(f"invalid {option} {text!r}: must be longer than 0s", USAGE)
        return value

    if for_ is not None:
        ends_at = now + seconds("--for", for_)
    elif until is not None:
        ends_at = parse_until(until, now, zone)
        if ends_at <= now:
            fail(f"invalid --until {until!r}: that time has passed", USAGE)
    else:
        if duration is None:
            fail("--every needs --duration, e.g. --duration 1h", USAGE)
        try:
            expression = CronExpression(every)
        except CronError as error:
            fail(f"invalid --every: {error}", USAGE)
        from siqd.cron import shortest_gap

        cron, length = every, seconds("--duration", duration)
        gap = shortest_gap(expression, now, zone)
        if gap is None:
            fail(f"invalid --every {every!r}: it matches fewer than two times in the next 400 days", USAGE)
        if length >= gap:
            fail(f"invalid --duration {duration!r}: windows of '{every}' start every {format_duration(gap)}, so "
                 "they would overlap and never end; use a shorter --duration", USAGE)
    if duration is not None and every is None:
        fail("--duration goes with --every; use --for for a one-off silence", USAGE)

    store = context.store()
    with store.transaction():
        silence_id = store.add_silence(host_glob=host, rule_glob=rule, labels=labels, starts_at=now, ends_at=ends_at,
                                       cron=cron, duration=length, reason=message.strip(),
                                       created_by=context.actor(by), created_at=now)
    silence = store.get_silence(silence_id)
    if as_json:
        typer.echo(render.to_json(_silence_data(silence, now, zone)))
        return
    typer.echo(f"Added silence #{silence_id}: {_describe(silence)}")


def _describe(silence: dict) -> str:
    what = f"host {silence['host_glob']}, rule {silence['rule_glob']}"
    if silence["labels"]:
        what += ", " + ", ".join(f"{key}={value}" for key, value in silence["labels"].items())
    if silence["cron"]:
        from siqd.durations import format_duration

        when = f"every '{silence['cron']}' for {format_duration(silence['duration'])}"
    else:
        when = f"until {render.local_time(silence['ends_at'])}"
    return f"{what}, {when}: {silence['reason']}"


def _silence_data(silence: dict, now: float, zone) -> dict:
    from siqd.silences import silence_window

    return {
        "id": silence["id"], "host": silence["host_glob"], "rule": silence["rule_glob"], "labels": silence["labels"],
        "starts_at": render.iso_utc(silence["starts_at"]), "ends_at": render.iso_utc(silence["ends_at"]),
        "every": silence["cron"], "duration_seconds": silence["duration"], "reason": silence["reason"],
        "created_by": silence["created_by"], "ended_at": render.iso_utc(silence["ended_at"]),
        "ended_by": silence["ended_by"], "active": silence_window(silence, now, zone) is not None,
    }


@silence_app.command("list")
@store_errors
def list_silences(
    include_ended: bool = typer.Option(False, "--all", help="include ended and expired silences"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
):
    """List silences that have not ended.

    Example: siqctl silence list
    """
    from siqd.timefmt import zone_of

    now = time.time()
    zone = zone_of(context.config().timezone)
    found = [row for row in context.store(create=False).silences(include_ended=True)
             if include_ended or (row["ended_at"] is None and (row["cron"] or row["ends_at"] > now))]
    data = [_silence_data(row, now, zone) for row in found]
    if as_json:
        typer.echo(render.to_json(data))
        return
    if not data:
        typer.echo("No silences.")
        return
    rows = []
    for row, entry in zip(found, data):
        if entry["active"]:
            state = "active"
        elif row["ended_at"]:
            state = "ended"
        else:
            state = "waiting"
        rows.append((f"#{row['id']}", state, _describe(row), row["created_by"]))
    typer.echo(render.table(rows, headers=("ID", "STATE", "SILENCE", "BY")))


@silence_app.command("end")
@store_errors
def end(
    silence_id: int = typer.Argument(..., metavar="ID", min=1, max=2**63 - 1, help="silence number"),
    by: str = typer.Option(None, "--by", help="who ends it (default: your OS user name)"),
):
    """End a silence now; incidents it held back are notified on siqd's next round.

    Example: siqctl silence end 3
    """
    store = context.store(create=False)
    silence = store.get_silence(silence_id)
    if silence is None:
        fail(f"silence {silence_id} not found; list them with 'siqctl silence list --all'")
    with store.transaction():
        ended = store.end_silence(silence_id, context.actor(by), time.time())
    if not ended:
        fail(f"silence {silence_id} already ended at {render.local_time(silence['ended_at'])}")
    typer.echo(f"Ended silence #{silence_id}.")


def register(app: typer.Typer) -> None:
    app.add_typer(silence_app, name="silence")
