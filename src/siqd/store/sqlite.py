"""The embedded SQLite store: one file in WAL mode, no server."""

import os
import sqlite3
from contextlib import contextmanager
from pathlib import Path

from siqd.config import sqlite_location
from siqd.store.base import Store, StoreBusy, StoreConflict, StoreError, StoreFull

BUSY_TIMEOUT_MS = 30_000


class SQLiteStore(Store):
    kind = "sqlite"
    without_rowid = " WITHOUT ROWID"

    def __init__(self, path: Path):
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(f"cannot create the folder for store {path}: {error.strerror}") from None
        try:
            # isolation_level=None: we issue BEGIN IMMEDIATE ourselves, so a writer
            # takes the lock up front and waits on busy_timeout instead of failing
            # with "database is locked" when upgrading a read lock.
            connection = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                         check_same_thread=False)
        except sqlite3.Error as error:
            raise StoreError(f"cannot open store {path}: {error}") from None
        super().__init__(connection, sqlite_location(path))
        with self.translate_errors():
            connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StoreError(f"store {path} could not switch to WAL mode (got {mode}); is it on a network filesystem?")
            connection.execute("PRAGMA synchronous = NORMAL")
            connection.execute("PRAGMA foreign_keys = ON")

    def begin_write(self) -> None:
        with self.translate_errors():
            self.connection.execute("BEGIN IMMEDIATE")

    def table_exists(self, name: str) -> bool:
        return self.scalar("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)) is not None

    def size_bytes(self) -> int:
        total = 0
        for suffix in ("", "-wal", "-shm"):
            try:
                total += os.path.getsize(f"{self.path}{suffix}")
            except OSError:
                pass
        return total

    @contextmanager
    def translate_errors(self):
        try:
            yield
        except sqlite3.OperationalError as error:
            text = str(error)
            if "locked" in text or "busy" in text:
                raise StoreBusy(
                    f"store {self.path} stayed locked for {BUSY_TIMEOUT_MS // 1000}s by another writer; try again"
                ) from None
            if "disk is full" in text:
                raise StoreFull(f"store {self.path}: the disk is full; free space on its filesystem "
                                f"({self.path.parent})") from None
            if "disk I/O" in text:
                raise StoreError(f"store {self.path}: {text}; free space on its filesystem and try again") from None
            if "readonly" in text or "unable to open" in text:
                raise StoreError(f"store {self.path}: {text}; check its permissions") from None
            raise StoreError(f"store {self.path}: {text}") from None
        except sqlite3.IntegrityError as error:
            raise StoreConflict(f"store {self.path}: {error}") from None
        except sqlite3.DatabaseError as error:
            raise StoreError(f"store {self.path}: {error}") from None
