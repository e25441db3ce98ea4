"""Timestamp formats. The store keeps UTC epoch seconds, people read local time and JSON gets ISO 8601."""

from datetime import datetime, timezone


def iso_utc(epoch: float | None) -> str | None:
    """Format epoch seconds as ISO 8601 UTC ("2026-12-04T03:17:00Z"), or None."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def zone_of(name: str | None):
    """Return the ZoneInfo for an IANA name, or None for the machine's local time."""
    if not name:
        return None
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def local_time(epoch: float | None) -> str:
    """Format epoch seconds in the local time zone for people ("2026-12-04 03:17:00 UTC")."""
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
