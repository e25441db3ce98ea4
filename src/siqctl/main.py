"""The siqctl entry point: global options and the command list."""

import importlib
import sys

import typer

from siqctl import context

# Each command module and the commands it registers, in the order of `siqctl --help`.
COMMAND_MODULES = {
    "incidents": ("incidents", "resolve", "ignore", "reopen", "comment", "open"),
    "review": ("review",),
    "report": ("report",),
    "hosts": ("hosts", "host"),
    "disk_cmd": ("disk",),
    "rules_cmd": ("rules",),
    "checks_cmd": ("checks",),
    "heartbeat_cmd": ("heartbeat", "run", "heartbeats"),
    "silences_cmd": ("silence",),
    "notify_cmd": ("notify",),
    "metrics_cmd": ("metrics",),
    "top": ("top",),
    "status_cmd": ("status",),
    "config_cmds": ("init", "config"),
}
# Global options that take a value, to find the command name after them.
VALUE_OPTIONS = ("--config", "-c", "--store")

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




def register_commands(args: list[str]) -> None:
    """Register the module of the command in `args`, or every module for help and unknown commands.

    Loading one command module instead of all of them, and building only
    its commands, keeps siqctl's start-up short.
    """
    command = _command_name(args)
    modules = [module for module, names in COMMAND_MODULES.items() if command in names] or list(COMMAND_MODULES)
    for module in modules:
        importlib.import_module(f"siqctl.{module}").register(app)


def _command_name(args: list[str]) -> str | None:
    index = 0
    while index < len(args):
        arg = args[index]
        if arg in VALUE_OPTIONS:
            index += 2
        elif arg.startswith("-"):
            index += 1
        else:
            return arg
    return None


def main() -> None:
    register_commands(sys.argv[1:])
    app()
