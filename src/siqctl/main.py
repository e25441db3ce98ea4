"""The siqctl entry point: global options and the command list."""

import typer

from siqctl import disk_cmd
from siqctl import checks_cmd
from siqctl import heartbeat_cmd
from siqctl import (
    config_cmds, context, hosts, incidents, metrics_cmd, notify_cmd, report, review, rules_cmd, silences_cmd,
    status_cmd, top,
)

app = typer.Typer(
    help="siq's command line: list, show, resolve, ignore, comment on, reopen and open incidents; "
         "write and check the config.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from siqd import __version__

        typer.echo(f"siqctl {__version__}")
        raise typer.Exit()


@app.callback()
def global_options(
    config: str = typer.Option(None, "--config", "-c", help="config file (default: $SIQ_CONFIG, then the user's "
                                                            "and the site's siq.toml)"),
    store: str = typer.Option(None, "--store", envvar="SIQ_STORE",
                              help="store location, overriding the config's, e.g. sqlite:///var/lib/siq/siq.db "
                                   "or postgresql://siq@db.internal/siq"),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="print the version"),
):
    context.options.config_file = config
    context.options.store = store


incidents.register(app)
review.register(app)
report.register(app)
hosts.register(app)
disk_cmd.register(app)
rules_cmd.register(app)
checks_cmd.register(app)
heartbeat_cmd.register(app)
silences_cmd.register(app)
notify_cmd.register(app)
metrics_cmd.register(app)
top.register(app)
status_cmd.register(app)
config_cmds.register(app)


def main() -> None:
    app()
