"""The pid file of a running `siqd run`, which `siqctl status` reads to tell whether siqd runs.

siqd keeps an exclusive lock on the file for as long as it runs. A pid
file left by a killed daemon is therefore stale, because no process has its lock.
With an SQLite store the file sits beside the database ("siq.db.siqd.pid"),
which keeps daemons with different stores apart. With PostgreSQL it goes
in the runtime folder, one file per host name.
"""

import fcntl
import json
import os
import re
from pathlib import Path

from siqd import paths


def pid_path(store: str, host: str) -> Path:
    from siqd.config import sqlite_path

    database = sqlite_path(store)
    if database is not None:
        return database.with_name(database.name + ".siqd.pid")
    return paths.runtime_dir() / f"siqd-{re.sub(r'[^A-Za-z0-9._-]', '_', host)}.pid"


def hold(path: Path, started_at: float, config: str):
    """Lock `path` and write this process's pid; return the open file, or None if another siqd holds it.

    The caller keeps the file object open for the daemon's lifetime. An
    OSError (a read-only folder) propagates so the caller can log it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps({"pid": os.getpid(), "started_at": started_at, "config": config}) + "\n")
    handle.flush()
    return handle


def release(handle, path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass
    handle.close()


def running(path: Path) -> dict | None:
    """Return the pid file's content if a live siqd has it locked, else None."""
    try:
        handle = open(path)
    except OSError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                return json.loads(handle.read() or "{}")
            except ValueError:
                return {}
        return None  # not locked, so left behind by a daemon that was killed
