"""Config commands: `siqctl init` and `siqctl config check`."""

import os
from pathlib import Path

import typer

from siqctl import context
from siqctl.context import USAGE, fail

config_app = typer.Typer(help="Check the configuration.", no_args_is_help=True)


def init(
    path: Path = typer.Option(None, "--path", help="where to write (default: --config or $SIQ_CONFIG when set, "
                                                   "else /etc/siq/siq.toml as root or your user config folder)"),
    host: str = typer.Option(None, help="host name to monitor as (default: this machine's hostname)"),
    store: str = typer.Option(None, help="store location (default: a SQLite file in the data folder)"),
    force: bool = typer.Option(False, "--force", help="overwrite an existing file"),
):
    """Write a starter config with sensible rules and no notification targets.

    Example: siqctl init && siqctl config check
    """
    from siqd import paths
    from siqd.config import ConfigError, checked_store, default_host, sqlite_location, starter_config_text

    chosen = path or context.options.config_file or os.environ.get("SIQ_CONFIG")
    target = Path(chosen).expanduser() if chosen else paths.default_config_dir() / "siq.toml"
    if target.exists() and not force:
        fail(f"{target} already exists; check it with 'siqctl config check {target}' or overwrite with --force")
    try:
        store_location = checked_store(store) if store else sqlite_location(paths.default_data_dir() / "siq.db")
    except ConfigError as error:
        fail(str(error), USAGE)
    text = starter_config_text(host or default_host(), store_location)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # Not readable by others, because once notification URLs go in, it contains secrets.
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        os.fchmod(descriptor, 0o640)  # the mode above applies only to a new file
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as error:
        fail(f"cannot write {target}: {error.strerror}; choose another place with --path")
    typer.echo(f"Wrote {target}")
    searched = target in paths.config_search_path() or (os.environ.get("SIQ_CONFIG") and not path
                                                         and not context.options.config_file)
    check_command = "siqctl config check" + ("" if searched else f" {target}")
    run_command = "siqd run" + ("" if searched else f" --config {target}")
    typer.echo(f"Next: add notification targets under [notify.channels], run '{check_command}'"
               f" and start '{run_command}'.")


@config_app.command("check")
def check(
    file: Path = typer.Argument(None, metavar="[FILE]", help="config file (default: the one siqctl would use)"),
    as_json: bool = typer.Option(False, "--json", help="print the effective settings as JSON"),
):
    """Validate a config and print the effective settings, secrets masked.

    Example: siqctl config check /etc/siq/siq.toml
    """
    from siqd.config import ConfigError, effective_settings, find_config_file, load_config

    source = file if file is not None else find_config_file(context.options.config_file)
    try:
        config = load_config(source)
    except ConfigError as error:
        fail(str(error), USAGE)
    for warning in config.warnings:
        typer.echo(f"warning: {warning}", err=True)
    from siqd.notify.deliver import unusable_targets

    for channel, masked in unusable_targets(config.notify.channels)[:1]:
        fail(f"{config.source}: notify.channels.{channel}: Apprise does not accept the URL {masked!r}; "
             "check its scheme and form against Apprise's list of services", USAGE)
    settings = effective_settings(config)
    if as_json:
        from siqctl.render import to_json

        typer.echo(to_json({"file": str(source) if source else None, "valid": True, "settings": settings}))
        return
    import tomli_w

    typer.echo(f"# {config.source}: valid. Effective settings (secrets masked):")
    typer.echo(tomli_w.dumps(settings).rstrip())


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.add_typer(config_app, name="config")
