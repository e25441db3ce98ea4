"""`siqctl top`: a live view of every host and the open incidents, read from the store again each --interval.

A background thread reads the store, so the screen still handles keys and
resizes while a query waits on a busy SQLite file or an unreachable
PostgreSQL server. The main thread owns the terminal through the stdlib
curses module.
"""

import os
import sys

import typer

from siqctl import context
from siqctl.context import USAGE, fail, store_errors

MIN_INTERVAL = 0.5
NOT_A_TERMINAL = "siqctl top needs a terminal; use 'siqctl hosts' in scripts"


@store_errors
def top(interval: str = typer.Option("2s", "--interval", "-n",
                                      help="how often to read the store again, e.g. 2s or 1m (at least 0.5s)")):
    """Show every host and the open incidents on one screen, refreshed until you press q.

    Silent hosts and hosts with open incidents come first. Keys: q quits, r refreshes now.
    Colour is off when NO_COLOR is set.

    Example: siqctl top --interval 5s
    """
    # The screen code (curses and the rest) loads only when top runs, not with every siqctl command.
    import signal

    from siqctl.top_screen import Refresher, ScreenSettings, check_terminal_type, exit_on_sigterm, run_screen

    period = parse_interval(interval)
    if not (sys.stdout.isatty() and sys.stdin.isatty()):
        fail(NOT_A_TERMINAL, USAGE)
    check_terminal_type()
    previous_handler = signal.signal(signal.SIGTERM, exit_on_sigterm)
    refresher = None
    try:
        config = context.config()
        store = context.store(create=False)
        refresher = Refresher(store, config.stale_after, config.interval, period)
        # Any non-empty NO_COLOR turns colour off (no-color.org).
        run_screen(refresher, ScreenSettings(store_kind=store.kind, interval_text=interval.strip(),
                                             colour=not os.environ.get("NO_COLOR")))
    except KeyboardInterrupt:
        pass  # Ctrl-C quits like q, and run_screen has already restored the terminal
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
        if refresher is not None:
            refresher.stop()


def parse_interval(text: str) -> float:
    from siqd.durations import DurationError, parse_duration

    try:
        seconds = parse_duration(text)
    except DurationError as error:
        fail(f"invalid --interval: {error}", USAGE)
    if seconds < MIN_INTERVAL:
        fail(f"--interval {text} is too short; give at least 0.5s", USAGE)
    return seconds


def register(app: typer.Typer) -> None:
    app.command("top")(top)
