"""`siqctl report`: incident patterns over a month or a recent period."""

import time
from pathlib import Path

import typer

from siqctl import context
from siqctl.context import USAGE, fail, store_errors

FORMATS = ("text", "md", "json", "html")


@store_errors
def report(
    since: str = typer.Option(None, "--since", help="the period up to now, e.g. 30d (default: 30d)"),
    month: str = typer.Option(None, "--month", help="a calendar month: YYYY-MM, 'last' or 'this'"),
    output_format: str = typer.Option("text", "--format", help="text, md, json or html"),
    out: Path = typer.Option(None, "--out", help="write to this file instead of standard output"),
    notify: str = typer.Option(None, "--notify", help="also send the summary to this channel of the config"),
):
    """Report incident patterns: per host and rule, recurrences, time to resolve, noise, reviews.

    Days and hours are in the config's 'timezone' (default: local time).
    Example: siqctl report --month 2026-11 --format html --out report.html
    """
    from siqd.durations import DurationError, parse_duration
    from siqd.report import PeriodError, build_report, local_zone, month_period

    if output_format not in FORMATS:
        fail(f"invalid --format {output_format!r}; expected one of {', '.join(FORMATS)}", USAGE)
    if since is not None and month is not None:
        fail("give either --since or --month, not both", USAGE)
    config = context.config()
    if notify is not None and notify not in config.notify.channels:
        known = ", ".join(sorted(config.notify.channels)) or "none configured"
        fail(f"unknown channel {notify!r} for --notify; channels in {config.source}: {known}", USAGE)
    now = time.time()
    if month is not None:
        try:
            start, end, label = month_period(month, local_zone(config.timezone), now)
        except PeriodError as error:
            fail(f"invalid --month: {error}", USAGE)
    else:
        try:
            length = parse_duration(since or "30d")
        except DurationError as error:
            fail(f"invalid --since: {error}", USAGE)
        if length <= 0:
            fail(f"invalid --since {since!r}: the period must be longer than 0s", USAGE)
        start, end, label = now - length, now, f"last {since or '30d'}"
    period_args = f"--month {label}" if month is not None else f"--since {since or '30d'}"

    data = build_report(context.store(create=False), config, start, end, label, now)
    text = _render(data, output_format)
    if out is not None:
        try:
            out.write_text(text, encoding="utf-8")
        except OSError as error:
            fail(f"cannot write {out}: {error.strerror}")
        typer.echo(f"Wrote the {output_format} report to {out}", err=True)
    else:
        typer.echo(text, nl=not text.endswith("\n"))
    if notify is not None:
        _send_summary(config, notify, data, period_args)


def _render(data: dict, output_format: str) -> str:
    from siqctl import report_render

    if output_format == "json":
        from siqctl.render import to_json

        return to_json(data) + "\n"
    if output_format == "md":
        return report_render.render_markdown(data)
    if output_format == "html":
        return report_render.render_html(data)
    return report_render.render_text(data) + "\n"


def _send_summary(config, channel: str, data: dict, period_args: str) -> None:
    """Send the summary to every URL of `channel`; fail unless at least one took it."""
    from siqctl.report_render import summary_lines
    from siqd.config import mask_url
    from siqd.notify.deliver import send_message

    title = f"siq report {data['period']['label']}"
    body = "\n".join(summary_lines(data)) + f"\n\nFull report: siqctl report {period_args} --format html --out report.html"
    errors = []
    for url in config.notify.channels[channel]:
        error = send_message(url, title, body, "info", config.notify.timeout)
        if error is not None:
            errors.append(f"{mask_url(url)}: {error}")
    for error in errors:
        typer.echo(f"warning: report not delivered to {error}", err=True)
    if len(errors) == len(config.notify.channels[channel]):
        fail(f"the report summary reached no URL of channel {channel!r}")
    typer.echo(f"Sent the summary to channel {channel!r}.", err=True)


def register(app: typer.Typer) -> None:
    app.command("report")(report)
