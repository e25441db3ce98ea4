"""Logging as one key=value line per event on stderr, friendly to journald and grep.

    level=warning event=delivery_failed notification=12 channel=team attempt=3 error="connection refused"
"""

import logging
import sys
import time

LOGGER_NAME = "siq"


def _quote(value: object) -> str:
    text = str(value)
    if text == "" or any(ch in text for ch in ' "=\n\t'):
        escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    return text


class KeyValueFormatter(logging.Formatter):
    """Format records as `level=… event=… key=value …`; fields come from `extra={"fields": {...}}`."""

    def __init__(self, with_time: bool = True):
        super().__init__()
        self.with_time = with_time

    def format(self, record: logging.LogRecord) -> str:
        parts = []
        if self.with_time:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(record.created))
            parts.append(f"ts={stamp}")
        parts.append(f"level={record.levelname.lower()}")
        parts.append(f"event={_quote(record.getMessage())}")
        for key, value in getattr(record, "fields", {}).items():
            if value is not None:
                parts.append(f"{key}={_quote(value)}")
        if record.exc_info:
            kind, error, _ = record.exc_info
            parts.append(f"error={_quote(f'{kind.__name__}: {error}')}")
        return " ".join(parts)


def setup_logging(level: str = "info") -> logging.Logger:
    """Send siq's log records to stderr as key=value lines.

    Under systemd (JOURNAL_STREAM set) the timestamp is left to the journal.
    """
    import os

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter(with_time="JOURNAL_STREAM" not in os.environ))
    logger = logging.getLogger(LOGGER_NAME)
    logger.handlers[:] = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False
    return logger


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(f"{LOGGER_NAME}.{name}")


def log_event(logger: logging.Logger, level: int, event: str, **fields: object) -> None:
    """Log `event` with key=value fields at `level`."""
    logger.log(level, event, extra={"fields": fields})


class RepeatFilter:
    """Rate-limit identical error events: log the first, then one summary per `window` seconds."""

    def __init__(self, window: float = 300.0):
        self.window = window
        self._last: dict[str, tuple[float, int]] = {}

    def should_log(self, key: str, now: float) -> tuple[bool, int]:
        """Return (log this one?, how many were suppressed since the last logged one)."""
        last = self._last.get(key)
        if last is None or now - last[0] >= self.window:
            suppressed = last[1] if last else 0
            self._last[key] = (now, 0)
            return True, suppressed
        self._last[key] = (last[0], last[1] + 1)
        return False, 0

    def forget(self, key: str) -> None:
        self._last.pop(key, None)
