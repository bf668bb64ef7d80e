"""The records database's tables (SQLAlchemy Core). Migrations (migrations/versions) create and
change them; this module describes the current version for queries.

Times are UTC, stored without a time zone (SQLite has none): `minute` columns hold the start of
a minute. No images and no faces are kept, only counts, labels and times.
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, DateTime, Float, Index, Integer, MetaData, String, Table

NAME = 64
"""Longest camera name or label (facemask.cameras.CAMERA_NAME allows 64 characters)."""

metadata = MetaData()

face_minutes = Table(
    "face_minutes",
    metadata,
    Column("camera", String(NAME), primary_key=True),
    Column("minute", DateTime, primary_key=True),
    Column("label", String(NAME), primary_key=True),
    Column("n", Integer, nullable=False),
)
"""Analysed face detections per camera, minute and label."""

people = Table(
    "people",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("camera", String(NAME), nullable=False),
    Column("person_key", String(80), nullable=False),
    Column("first_seen", DateTime, nullable=False),
    Column("last_seen", DateTime, nullable=False),
    Column("first_minute", DateTime, nullable=False),
    Column("label", String(NAME), nullable=False),
    Column("votes", JSON, nullable=False),
    Column("frames", Integer, nullable=False),
    Index("uq_people_camera_key", "camera", "person_key", unique=True),
    Index("ix_people_camera_first_minute", "camera", "first_minute"),
)
"""One row per tracked person: when first and last seen, and the label their frames voted for."""

camera_status = Table(
    "camera_status",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("camera", String(NAME), nullable=False),
    Column("at", DateTime, nullable=False),
    Column("state", String(16), nullable=False),
    Column("detail", String(500), nullable=False),
    Index("ix_camera_status_camera_at", "camera", "at"),
)
"""A camera's state changes (online, offline, stopped) with a redacted sentence."""

alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("camera", String(NAME), nullable=False),
    Column("at", DateTime, nullable=False),
    Column("rule", String(32), nullable=False),
    Column("message", String(500), nullable=False),
    Column("value", Float, nullable=False),
    Column("snapshot", String(300), nullable=False),
    Index("ix_alerts_camera_at", "camera", "at"),
)
"""Alert events: which rule fired for which camera, its one-sentence message and measured value
(the unmasked share, or 1 for a person), and the snapshot file's name when snapshots are on."""

camera_leases = Table(
    "camera_leases",
    metadata,
    Column("camera", String(NAME), primary_key=True),
    Column("holder", String(80), nullable=False),
    Column("expires", Float, nullable=False),
)
"""Which watcher holds which camera until when (facemask.records.leases; the database's clock)."""
