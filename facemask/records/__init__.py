"""The records database: what the watcher saw, per camera and minute (facemask.records.store),
written in the background (facemask.records.writer); Alembic migrations in migrations/."""

from facemask.records.store import (
    DB_ENV,
    AlertEvent,
    MinuteRecord,
    PersonRecord,
    RecordsError,
    RecordStore,
    StatusChange,
    database_url,
    live_dir,
    snapshot_dir,
)
from facemask.records.writer import RecordWriter

__all__ = [
    "AlertEvent",
    "DB_ENV",
    "MinuteRecord",
    "PersonRecord",
    "RecordStore",
    "RecordWriter",
    "RecordsError",
    "StatusChange",
    "database_url",
    "live_dir",
    "snapshot_dir",
]
