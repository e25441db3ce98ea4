"""Reserved disk space beside an SQLite store, released when the disk fills up.

When the filesystem under the store fills, SQLite can write nothing, not
even the incident that reports the full disk. siqd keeps a small file of
reserved space next to the database and deletes it on the first "disk is
full" error, so the next write (the incident and its notifications) fits.
It makes the file again once the filesystem has room.
"""

import os
from pathlib import Path

RESERVE_BYTES = 2 * 1024 * 1024
# Recreate the reserve only with this much free space left beside it.
REFILL_FREE_BYTES = 3 * RESERVE_BYTES


class Reserve:
    def __init__(self, database: Path, size: int = RESERVE_BYTES):
        self.path = database.with_name(database.name + ".reserve")
        self.size = size

    def present(self) -> bool:
        try:
            return self.path.stat().st_size >= self.size
        except OSError:
            return False

    def ensure(self) -> bool:
        """Make the reserve file if it is missing and the filesystem has room; return whether it exists."""
        if self.present():
            return True
        try:
            stats = os.statvfs(self.path.parent)
        except OSError:
            return False
        if stats.f_bavail * stats.f_frsize < REFILL_FREE_BYTES:
            return False
        try:
            with open(self.path, "wb") as handle:
                try:
                    os.posix_fallocate(handle.fileno(), 0, self.size)
                except OSError:  # a filesystem without fallocate: write the zeros
                    handle.write(b"\0" * self.size)
                handle.flush()
                os.fsync(handle.fileno())
            return True
        except OSError:
            self.path.unlink(missing_ok=True)
            return False

    def release(self) -> bool:
        """Delete the reserve to free its space; return whether there was one to free."""
        if not self.present():
            return False
        try:
            self.path.unlink()
        except OSError:
            return False
        return True
