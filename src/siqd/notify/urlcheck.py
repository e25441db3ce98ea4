"""Ask Apprise, in a child process, which notification URLs of a config it cannot use.

Apprise takes about 100 ms and several MB to load, so siqd does not import
it itself. A short-lived `siqd check-urls` process does, at start and on
each reload, and siqd reads the list it prints.
"""

import json
import subprocess
import sys

CHECK_TIMEOUT = 60.0


def start_check(channels: dict[str, list[str]]) -> subprocess.Popen | None:
    """Start the check in a child process, so the caller can go on; None when there is nothing to check."""
    if not channels:
        return None
    try:
        child = subprocess.Popen([sys.executable, "-m", "siqd", "check-urls"], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        child.stdin.write(json.dumps(channels))
        child.stdin.close()
        return child
    except OSError:
        return None


def finish_check(child: subprocess.Popen | None) -> list[tuple[str, str]] | None:
    """Return (channel, masked URL) for each URL Apprise rejects, or None when the check itself failed."""
    if child is None:
        return []
    try:
        # Its stdin is already written and closed, and its output is a few lines, so wait, then read.
        if child.wait(timeout=CHECK_TIMEOUT) != 0:
            return None
        return [tuple(pair) for pair in json.loads(child.stdout.read())]
    except (OSError, subprocess.TimeoutExpired, ValueError):
        child.kill()
        return None
    finally:
        child.stdout.close()


def unusable_urls(channels: dict[str, list[str]]) -> list[tuple[str, str]] | None:
    """Return (channel, masked URL) for each URL Apprise rejects, or None when the check itself failed."""
    return finish_check(start_check(channels))


def main_check_urls() -> int:
    """Read channels as JSON on stdin and print the unusable ones as JSON: the `siqd check-urls` child."""
    from siqd.notify.deliver import unusable_targets

    channels = json.loads(sys.stdin.read())
    print(json.dumps(unusable_targets(channels)))
    return 0
