"""Shared parts of siqctl commands: the config, the store, the actor, and one-line failures."""

import os
import sys

import typer

from siqd.config import Config, ConfigError, checked_store, find_config_file, load_config
from siqd.store import Store, StoreError, open_store

FAILED = 1
USAGE = 2


class Options:
    """The global options, set by the callback in siqctl.main before any command runs."""

    config_file: str | None = None
    store: str | None = None


options = Options()
_cache: dict[str, object] = {}


def fail(message: str, code: int = FAILED) -> "typer.Exit":
    """Print `error: message` on stderr and end the command with `code`."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def config() -> Config:
    if "config" not in _cache:
        try:
            loaded = load_config(find_config_file(options.config_file))
            if options.store:
                loaded.store = checked_store(options.store)
        except ConfigError as error:
            fail(str(error), USAGE)
        for warning in loaded.warnings:
            typer.echo(f"warning: {warning}", err=True)
        _cache["config"] = loaded
    return _cache["config"]


def store(create: bool = True) -> Store:
    """Open the configured store; read-only commands pass create=False."""
    if "store" not in _cache:
        try:
            _cache["store"] = open_store(config().store, create=create)
        except StoreError as error:
            fail(str(error))
    return _cache["store"]


def actor(by: str | None) -> str:
    if by is not None:
        if not by.strip():
            fail("--by must not be empty", USAGE)
        return by.strip()
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def deliver_in_background() -> None:
    """Start `siqd deliver` detached, so notifications go out now even where no siqd runs.

    It exits by itself once the outbox has nothing due; what fails stays in
    the outbox for the daemon to retry.
    """
    import subprocess

    command = [sys.executable, "-m", "siqd", "deliver"]
    loaded = config()
    if loaded.path is not None:
        command += ["--config", str(loaded.path)]
    # The store goes by environment, not argument: a PostgreSQL URL may hold a
    # password, and every local user can read a process's command line.
    env = dict(os.environ, SIQ_STORE=loaded.store)
    subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True, env=env)


def window_seconds(since: str) -> float:
    """Parse a --since window of at least a minute, or end the command with a usage error."""
    from siqd.durations import DurationError, parse_duration

    try:
        window = parse_duration(since)
    except DurationError as error:
        fail(f"invalid --since: {error}", USAGE)
    if window < 60:
        fail(f"--since {since} is too short; give at least 1m", USAGE)
    return window


def store_errors(function):
    """Turn StoreError (unknown id, already resolved, locked store, …) into `error: …` and exit 1."""
    import functools

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except StoreError as error:
            fail(str(error))

    return wrapper
