"""Config and data locations.

As root: /etc/siq and /var/lib/siq. Otherwise the platformdirs user
locations (on Linux ~/.config/siq and ~/.local/share/siq).
"""

import os
from pathlib import Path

APP = "siq"
SITE_CONFIG_DIR = Path("/etc/siq")
SITE_DATA_DIR = Path("/var/lib/siq")


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def user_config_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir(APP))


def user_data_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir(APP))


def default_config_dir() -> Path:
    """Return the folder `siqctl init` writes to."""
    return SITE_CONFIG_DIR if is_root() else user_config_dir()


def default_data_dir() -> Path:
    """Return the folder for the SQLite store when the config names none."""
    return SITE_DATA_DIR if is_root() else user_data_dir()


def runtime_dir() -> Path:
    """Return the folder for a running daemon's pid file.

    That is systemd's RuntimeDirectory when the unit sets one, /run/siq as
    root, else $XDG_RUNTIME_DIR/siq or the user's data folder.
    """
    if os.environ.get("RUNTIME_DIRECTORY"):
        return Path(os.environ["RUNTIME_DIRECTORY"].split(":")[0])
    if is_root():
        return Path("/run/siq")
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    return Path(runtime) / APP if runtime else user_data_dir()


def config_search_path() -> list[Path]:
    """Return the config files to look for, in order: the user's, then the site's."""
    return [user_config_dir() / "siq.toml", SITE_CONFIG_DIR / "siq.toml"]
