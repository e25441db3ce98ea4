"""Open the store a config names: SQLite by default."""

from siqd.store.base import (  # noqa: F401  (re-exported)
    IGNORED, OPEN, RESOLVED, STATUSES, Incident, IncidentNotFound, SchemaTooNew, Store, StoreBusy,
    StoreConflict, StoreError, StoreFull, StoreUnavailable, series_key,
)


def open_store(location: str, migrate: bool = True, create: bool = True) -> Store:
    """Open the store at `location` (sqlite:///PATH, a plain path or postgresql://…).

    With `create` false, a missing SQLite file is an error instead of a new
    empty store, so a mistyped path does not look like "no incidents".
    """
    store = _connect(location, create)
    if migrate:
        try:
            store.migrate()
        except BaseException:
            store.close()
            raise
    return store


def _connect(location: str, create: bool) -> Store:
    from siqd.config import sqlite_path

    if location.startswith(("postgresql://", "postgres://")):
        from siqd.store.postgres import PostgresStore

        return PostgresStore(location)
    path = sqlite_path(location)
    if path is None:
        raise StoreError(f"unsupported store location {location!r}; expected sqlite:///PATH")
    if not create and not path.exists():
        raise StoreError(
            f"store {path} does not exist; siqd creates it on its first round. "
            "Check the config's 'store' or the --store option"
        )
    from siqd.store.sqlite import SQLiteStore

    return SQLiteStore(path)
