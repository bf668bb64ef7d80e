"""The records store: counts per camera and minute, people, camera status, in a SQL database.

A SQLite file by default (no set-up; WAL, so the Monitor page reads while the watcher writes),
or any SQLAlchemy URL (PostgreSQL: `postgresql+psycopg://user@host/db`) from `--db` or
FACEMASK_DB. Opening a store brings its schema up to date with Alembic. Each `write` is one
transaction, so a watcher killed at any moment leaves the database consistent.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, create_engine, delete, event, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from facemask.errors import FacemaskError
from facemask.files import REPO_ROOT
from facemask.records.schema import alerts, camera_status, face_minutes, people

DEFAULT_DB_PATH = REPO_ROOT / "records" / "facemask.db"
DB_ENV = "FACEMASK_DB"
LIVE_ENV = "FACEMASK_LIVE_DIR"
SNAPSHOT_ENV = "FACEMASK_SNAPSHOTS"
RETENTION_DAYS = 90
"""Records older than this are deleted (RecordStore.prune; the writer calls it hourly)."""
BUSY_TIMEOUT_S = 5.0
"""Seconds to wait for a locked SQLite file or a PostgreSQL connection before a write fails."""
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class RecordsError(FacemaskError):
    """The records database cannot be opened or read (one sentence, password redacted)."""


def database_url(url: str | None = None) -> str:
    """`url`, else $FACEMASK_DB, else the SQLite file records/facemask.db beside the package."""
    return url or os.environ.get(DB_ENV) or f"sqlite:///{DEFAULT_DB_PATH}"


def live_dir() -> Path:
    """Where the watcher leaves each camera's latest annotated frame (NAME.jpg) and status
    (NAME.json) for the Monitor page: $FACEMASK_LIVE_DIR, else records/live."""
    return Path(os.environ.get(LIVE_ENV) or DEFAULT_DB_PATH.parent / "live")


def snapshot_dir() -> Path:
    """Where alert snapshots are kept when the operator turns them on without naming a folder
    (and where the Monitor page looks for them): $FACEMASK_SNAPSHOTS, else records/snapshots."""
    return Path(os.environ.get(SNAPSHOT_ENV) or DEFAULT_DB_PATH.parent / "snapshots")


def minute_of(at: datetime) -> datetime:
    """The start of at's minute, as naive UTC (how the tables store times)."""
    return utc(at).replace(second=0, microsecond=0)


def utc(at: datetime) -> datetime:
    """A datetime as naive UTC (aware ones are converted; naive ones are taken as UTC)."""
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at


def iso_minute(at: datetime) -> str:
    """ISO 8601 UTC, as the report prints it: 2026-12-03T18:05:00Z."""
    return minute_of(at).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class PersonRecord:
    """One tracked person as the watcher saw them so far (written again as they stay)."""

    camera: str
    key: str  # unique per camera: the watcher's run id and track id
    first_seen: datetime
    last_seen: datetime
    label: str
    votes: dict[str, int]
    frames: int


@dataclass(frozen=True)
class StatusChange:
    camera: str
    at: datetime
    state: str
    detail: str = ""


@dataclass(frozen=True)
class AlertEvent:
    """A rule that fired for a camera (facemask.records.alerts): one sentence, the value."""

    camera: str
    at: datetime
    rule: str
    message: str
    value: float
    snapshot: str = ""  # the snapshot file, relative to the snapshots folder, if one was kept

    def payload(self) -> dict:
        """The webhook's JSON body."""
        at = utc(self.at).isoformat() + "Z"
        return {"camera": self.camera, "at": at, "rule": self.rule, "message": self.message,
                "value": self.value, "snapshot": self.snapshot}  # fmt: skip


@dataclass
class Batch:
    """What a writer has not stored yet: face counts to add, people to upsert, status rows."""

    faces: Counter = field(default_factory=Counter)  # (camera, minute, label) -> n
    people: dict[tuple[str, str], PersonRecord] = field(default_factory=dict)
    statuses: list[StatusChange] = field(default_factory=list)
    alerts: list[AlertEvent] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.faces) + len(self.people) + len(self.statuses) + len(self.alerts)

    def merge(self, newer: Batch) -> None:
        """Fold a newer batch into this one (counts add up, a person's newer record wins)."""
        self.faces.update(newer.faces)
        self.people.update(newer.people)
        self.statuses.extend(newer.statuses)
        self.alerts.extend(newer.alerts)


@dataclass(frozen=True)
class MinuteRecord:
    """One line of `facemask report`: a camera's people and face detections in one minute."""

    camera: str
    minute: datetime
    people: dict[str, int]
    faces: dict[str, int]

    def as_json(self) -> dict:
        return {
            "camera": self.camera,
            "minute": iso_minute(self.minute),
            "people": dict(sorted(self.people.items())),
            "faces": dict(sorted(self.faces.items())),
        }


def _require_existing(url: str) -> None:
    """A SQLite file that is not there yet is an error for a reader (it would make an empty one)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        if not Path(parsed.database).expanduser().is_file():
            raise RecordsError(
                f"There are no records at {parsed.database} yet: `facemask watch` makes them."
            )


def _engine(url: str, timeout: float) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise RecordsError(f"{url!r} is not a database URL (e.g. sqlite:///records.db).") from exc
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": timeout})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
            cursor.execute("PRAGMA synchronous=NORMAL")  # safe against a killed process in WAL
            cursor.close()

        return engine
    postgres = parsed.drivername.startswith("postgresql")
    connect_args = {"connect_timeout": max(1, round(timeout))} if postgres else {}
    try:
        return create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)
    except (ArgumentError, ImportError, SQLAlchemyError) as exc:
        raise RecordsError(f"The database URL {parsed!r} cannot be used: {exc}.") from exc


class RecordStore:
    """The records database, migrated to the current schema on opening."""

    def __init__(
        self,
        url: str | None = None,
        *,
        retention_days: int = RETENTION_DAYS,
        busy_timeout: float = BUSY_TIMEOUT_S,
        create: bool = True,
    ) -> None:
        self.url = database_url(url)
        if not create:
            _require_existing(self.url)
        self.retention_days = retention_days
        self.engine = _engine(self.url, busy_timeout)
        try:
            self.migrate()
        except SQLAlchemyError as exc:
            self.engine.dispose()
            raise RecordsError(
                f"The records database {self} could not be opened: {db_reason(exc)}."
            ) from exc

    def __str__(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    def migrate(self) -> None:
        """Bring the schema up to the newest Alembic revision (a no-op when it is)."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def close(self) -> None:
        self.engine.dispose()

    # -- writing ---------------------------------------------------------------------------
    def write(self, batch: Batch) -> None:
        """Store a batch in one transaction (all of it or, on an error, none of it)."""
        with self.engine.begin() as conn:
            insert = _insert_for(conn.dialect.name)
            if batch.faces:
                rows = [
                    {"camera": c, "minute": m, "label": label, "n": n}
                    for (c, m, label), n in batch.faces.items()
                ]
                stmt = insert(face_minutes)
                conn.execute(
                    stmt.on_conflict_do_update(
                        index_elements=["camera", "minute", "label"],
                        set_={"n": face_minutes.c.n + stmt.excluded.n},
                    ),
                    rows,
                )
            if batch.people:
                stmt = insert(people)
                conn.execute(
                    stmt.on_conflict_do_update(
                        index_elements=["camera", "person_key"],
                        set_={
                            k: stmt.excluded[k] for k in ("last_seen", "label", "votes", "frames")
                        },
                    ),
                    [_person_row(p) for p in batch.people.values()],
                )
            if batch.statuses:
                conn.execute(
                    camera_status.insert(),
                    [
                        {"camera": s.camera, "at": utc(s.at), "state": s.state,
                         "detail": s.detail[:500]}
                        for s in batch.statuses
                    ],
                )  # fmt: skip
            if batch.alerts:
                conn.execute(
                    alerts.insert(),
                    [
                        {"camera": a.camera, "at": utc(a.at), "rule": a.rule,
                         "message": a.message[:500], "value": a.value, "snapshot": a.snapshot}
                        for a in batch.alerts
                    ],
                )  # fmt: skip

    def prune(self, now: datetime | None = None) -> int:
        """Delete records older than the retention period; the number of rows deleted."""
        cutoff = utc(now or datetime.now(UTC)) - timedelta(days=self.retention_days)
        with self.engine.begin() as conn:
            deleted = conn.execute(delete(face_minutes).where(face_minutes.c.minute < cutoff))
            gone = deleted.rowcount
            gone += conn.execute(delete(people).where(people.c.last_seen < cutoff)).rowcount
            gone += conn.execute(delete(camera_status).where(camera_status.c.at < cutoff)).rowcount
            gone += conn.execute(delete(alerts).where(alerts.c.at < cutoff)).rowcount
        return gone

    # -- reading ---------------------------------------------------------------------------
    def minutes(
        self, camera: str | None = None, since: datetime | None = None
    ) -> list[MinuteRecord]:
        """People first seen and face detections per camera and minute, oldest first."""
        faces_q = select(face_minutes.c.camera, face_minutes.c.minute, face_minutes.c.label,
                         face_minutes.c.n)  # fmt: skip
        people_q = select(
            people.c.camera, people.c.first_minute, people.c.label, func.count()
        ).group_by(people.c.camera, people.c.first_minute, people.c.label)
        if camera is not None:
            faces_q = faces_q.where(face_minutes.c.camera == camera)
            people_q = people_q.where(people.c.camera == camera)
        if since is not None:
            faces_q = faces_q.where(face_minutes.c.minute >= minute_of(since))
            people_q = people_q.where(people.c.first_minute >= minute_of(since))
        table: dict[tuple[str, datetime], MinuteRecord] = {}

        def record(cam: str, minute: datetime) -> MinuteRecord:
            return table.setdefault((cam, minute), MinuteRecord(cam, minute, {}, {}))

        with self._reading() as conn:
            for cam, minute, label, n in conn.execute(faces_q):
                record(cam, minute).faces[label] = int(n)
            for cam, minute, label, n in conn.execute(people_q):
                record(cam, minute).people[label] = int(n)
        return [table[key] for key in sorted(table)]

    def status_changes(
        self, camera: str | None = None, since: datetime | None = None, limit: int = 200
    ) -> list[StatusChange]:
        """The newest camera status changes, newest first."""
        query = select(
            camera_status.c.camera, camera_status.c.at, camera_status.c.state,
            camera_status.c.detail,
        ).order_by(camera_status.c.at.desc(), camera_status.c.id.desc()).limit(limit)  # fmt: skip
        if camera is not None:
            query = query.where(camera_status.c.camera == camera)
        if since is not None:
            query = query.where(camera_status.c.at >= utc(since))
        with self._reading() as conn:
            return [StatusChange(*row) for row in conn.execute(query)]

    def alert_events(
        self, camera: str | None = None, since: datetime | None = None, limit: int = 200
    ) -> list[AlertEvent]:
        """The newest alert events, newest first."""
        columns = [alerts.c[k] for k in ("camera", "at", "rule", "message", "value", "snapshot")]
        query = select(*columns).order_by(alerts.c.at.desc(), alerts.c.id.desc()).limit(limit)
        if camera is not None:
            query = query.where(alerts.c.camera == camera)
        if since is not None:
            query = query.where(alerts.c.at >= utc(since))
        with self._reading() as conn:
            return [AlertEvent(*row) for row in conn.execute(query)]

    def person_records(
        self, camera: str | None = None, since: datetime | None = None, limit: int | None = None
    ) -> list[PersonRecord]:
        """Stored people (oldest first), or the newest `limit` of them."""
        query = select(people).order_by(people.c.first_seen.desc(), people.c.id.desc())
        if camera is not None:
            query = query.where(people.c.camera == camera)
        if since is not None:
            query = query.where(people.c.first_seen >= utc(since))
        query = query.limit(limit) if limit else query
        with self._reading() as conn:
            return [
                PersonRecord(r.camera, r.person_key, r.first_seen, r.last_seen, r.label,
                             dict(r.votes), r.frames)
                for r in reversed(conn.execute(query).all())
            ]  # fmt: skip

    def cameras(self) -> list[str]:
        """Every camera that has records."""
        with self._reading() as conn:
            names = set(conn.scalars(select(face_minutes.c.camera).distinct()))
            names |= set(conn.scalars(select(people.c.camera).distinct()))
            names |= set(conn.scalars(select(camera_status.c.camera).distinct()))
        return sorted(names)

    def _reading(self):
        return _ReadErrors(self)


class _ReadErrors:
    """A connection whose database errors become one RecordsError sentence."""

    def __init__(self, store: RecordStore) -> None:
        self.store = store

    def __enter__(self):
        try:
            self.conn = self.store.engine.connect()
        except SQLAlchemyError as exc:
            raise RecordsError(
                f"The records database {self.store} is unreachable: {db_reason(exc)}."
            ) from exc
        return self.conn

    def __exit__(self, kind, exc, tb) -> None:
        self.conn.close()
        if isinstance(exc, SQLAlchemyError):
            raise RecordsError(f"Reading {self.store} failed: {db_reason(exc)}.") from exc


def db_reason(exc: Exception) -> str:
    """The driver's first line for a database error, without SQLAlchemy's decorations."""
    inner = getattr(exc, "orig", None) or exc
    return (str(inner).strip().splitlines() or [type(inner).__name__])[0].rstrip(".")


def _insert_for(dialect: str):
    """The INSERT with ON CONFLICT of this database (SQLite and PostgreSQL both have one)."""
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        raise RecordsError(f"The records store supports SQLite and PostgreSQL, not {dialect}.")
    return insert


def _person_row(p: PersonRecord) -> dict:
    return {
        "camera": p.camera,
        "person_key": p.key,
        "first_seen": utc(p.first_seen),
        "last_seen": utc(p.last_seen),
        "first_minute": minute_of(p.first_seen),
        "label": p.label,
        "votes": dict(p.votes),
        "frames": p.frames,
    }
