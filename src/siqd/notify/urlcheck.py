"""Ask Apprise, in a child process, which notification URLs of a config it cannot use.

Apprise takes about 100 ms and several MB to load, so siqd does not import
it itself. A short-lived `siqd check-urls` process does, at start and on
each reload, and siqd reads the list it prints.
"""

import json
import subprocess
import sys

CHECK_TIMEOUT = 60.0


def unusable_urls(channels: dict[str, list[str]]) -> list[tuple[str, str]] | None:
    """Return (channel, masked URL) for each URL Apprise rejects, or None when the check itself failed."""
    if not channels:
        return []
    try:
        result = subprocess.run([sys.executable, "-m", "siqd", "check-urls"], input=json.dumps(channels),
                                capture_output=True, text=True, timeout=CHECK_TIMEOUT)
        if result.returncode != 0:
            return None
        return [tuple(pair) for pair in json.loads(result.stdout)]
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return None


def main_check_urls() -> int:
    """Read channels as JSON on stdin and print the unusable ones as JSON: the `siqd check-urls` child."""
    from siqd.notify.deliver import unusable_targets

    channels = json.loads(sys.stdin.read())
    print(json.dumps(unusable_targets(channels)))
    return 0
