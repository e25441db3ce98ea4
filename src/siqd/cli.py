"""The siqd command: `siqd run` samples this host and acts on the rules."""

import argparse
import os
import signal
import sys

from siqd import __version__

USAGE_ERROR = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="siqd",
        description="siq's per-host daemon: samples metrics, opens incidents, sends notifications.",
    )
    parser.add_argument("--version", action="version", version=f"siqd {__version__}")
    # --config and --store work before or after the command, as in siqctl.
    parser.add_argument("--config", metavar="FILE", dest="global_config", help="config file")
    parser.add_argument("--store", metavar="URL", dest="global_store", help="store location")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser("run", help="sample this host every interval until stopped (SIGTERM)",
                              description="Sample this host every interval, store the samples, evaluate the "
                                          "rules and deliver notifications. Example: siqd run --once")
    run.add_argument("--config", metavar="FILE", help="config file (default: $SIQ_CONFIG, then the user's "
                                                      "and the site's siq.toml, then built-in defaults)")
    run.add_argument("--store", metavar="URL", help="store location, overriding the config's 'store' "
                                                    "(also $SIQ_STORE)")
    run.add_argument("--once", action="store_true", help="take one round, deliver what is due, and exit "
                                                         "(for cron and tests)")

    deliver = commands.add_parser("deliver", help="send due notifications from the outbox once, then exit",
                                  description="Send due notifications once. siqd run starts this itself.")
    deliver.add_argument("--config", metavar="FILE", help="config file, as for 'siqd run'")
    deliver.add_argument("--store", metavar="URL", help="store location, overriding the config's 'store'")
    # siqd run starts its worker with this: the running config's [notify] settings arrive as JSON on
    # stdin, so deliveries go on while the file on disk has an error that a reload rejected.
    deliver.add_argument("--notify-settings-stdin", action="store_true", help=argparse.SUPPRESS)
    # siqd run starts this child to learn which notification URLs Apprise rejects (see siqd/notify/urlcheck.py).
    commands.add_parser("check-urls")
    return parser


def main(argv: list[str] | None = None) -> None:
    # Until the daemon installs its own handler, SIGTERM ends siqd quietly with
    # exit code 0, as it does later: a service manager may stop it at any moment.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # A reload requested before the daemon listens for it has nothing to reload yet.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    args = _parser().parse_args(argv)
    args.config = getattr(args, "config", None) or args.global_config
    args.store = getattr(args, "store", None) or args.global_store
    if args.command is None:
        _parser().print_help(sys.stderr)
        sys.exit(USAGE_ERROR)
    if args.command == "check-urls":
        from siqd.notify.urlcheck import main_check_urls

        sys.exit(main_check_urls())
    sys.exit(_run(args))


def _worker_config(args):
    """Build the delivery worker's config from the [notify] settings its siqd sends on stdin."""
    import json
    from pathlib import Path

    from siqd.config import Config, ConfigError, NotifySettings

    try:
        data = json.loads(sys.stdin.read())
        notify = NotifySettings(**data["notify"])
    except (ValueError, KeyError, TypeError) as error:
        raise ConfigError("stdin", "notify", f"invalid settings from siqd run: {error}") from None
    return Config(path=Path(args.config) if args.config else None, host=data.get("host", ""),
                  store=data.get("store", ""), log_level=data.get("log_level", "info"), notify=notify)


def _run(args) -> int:
    from siqd.config import ConfigError, checked_store, find_config_file, load_config
    from siqd.buffer import BufferError
    from siqd.log import get_logger, log_event, setup_logging
    from siqd.store import StoreError, StoreUnavailable, open_store

    try:
        if getattr(args, "notify_settings_stdin", False):
            config = _worker_config(args)
        else:
            config = load_config(find_config_file(args.config))
        store_override = args.store or os.environ.get("SIQ_STORE")
        if store_override:
            config.store = checked_store(store_override, "--store" if args.store else "SIQ_STORE")
    except ConfigError as error:
        print(f"siqd: error: {error}", file=sys.stderr)
        return USAGE_ERROR
    url_check = None
    if args.command == "run" and not args.once:
        from siqd.notify.urlcheck import start_check

        # Checked in a child process while siqd starts; run_forever reads the result before its first round.
        url_check = start_check(config.notify.channels)
    setup_logging(config.log_level)
    logger = get_logger("main")
    for warning in config.warnings:
        log_event(logger, 30, "config_warning", message=warning)

    store_ready = True
    try:
        store = open_store(config.store)
    except StoreUnavailable as error:
        if args.command != "run":
            print(f"siqd: error: {error}", file=sys.stderr)
            return 1
        # Sample anyway: rounds wait in the outage buffer until the store is back.
        from siqd.store.postgres import PostgresStore

        store = PostgresStore(config.store, connect=False)
        store_ready = False
    except StoreError as error:
        print(f"siqd: error: {error}", file=sys.stderr)
        return 1

    try:
        if args.command == "deliver":
            from siqd.notify.deliver import deliver_due

            report = deliver_due(store, config)
            return 0 if not report.failed and not report.given_up else 1
        from siqd.daemon import Daemon

        daemon = Daemon(config, store)
        daemon.store_ready = store_ready
        daemon.url_check = url_check
        if args.once:
            samples = daemon.run_once()
            log_event(logger, 20, "round_done", host=config.host, samples=len(samples), store=store.location)
        else:
            daemon.run_forever()
        return 0
    except (StoreError, BufferError) as error:
        print(f"siqd: error: {error}", file=sys.stderr)
        return 1
    except ConfigError as error:  # a notification URL Apprise rejects, found as siqd started
        print(f"siqd: error: {error}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        return 0
    finally:
        store.close()
