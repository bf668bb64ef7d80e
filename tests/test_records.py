"""facemask.records: the store on SQLite and on a real PostgreSQL the suite starts itself, its
migrations, retention, and the writer's bounded buffer when the database is locked or gone."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import postgres_server
import pytest
from camera_clips import wait_for
from sqlalchemy import inspect, text

from facemask.records import (
    AlertEvent,
    PersonRecord,
    RecordsError,
    RecordStore,
    RecordWriter,
    StatusChange,
)
from facemask.records.leases import CameraLeases
from facemask.records.store import MIGRATIONS, Batch
from harness import free_port

T0 = datetime(2026, 12, 3, 9, 30, 12, tzinfo=UTC)
HEAD = "0003"  # the newest migration


@pytest.fixture(scope="module")
def cluster() -> postgres_server.Cluster:
    postgres_server.require()
    with postgres_server.postgres(free_port()) as cluster:
        yield cluster


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path: Path) -> RecordStore:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'records.db'}"
    else:
        url = request.getfixturevalue("cluster").url
    store = RecordStore(url)
    yield store
    with store.engine.begin() as conn:  # the PostgreSQL cluster is shared by the module
        for table in ("face_minutes", "people", "camera_status", "alerts"):
            conn.execute(text(f"DELETE FROM {table}"))
    store.close()


def person(camera: str, key: str, label: str, first: datetime, seconds: float = 3, **votes):
    return PersonRecord(
        camera, key, first, first + timedelta(seconds=seconds), label,
        votes or {label: 5}, sum((votes or {label: 5}).values()),
    )  # fmt: skip


def test_counts_people_and_status_round_trip(store: RecordStore) -> None:
    batch = Batch()
    batch.faces.update({("door", T0.replace(second=0, tzinfo=None), "with_mask"): 4})
    batch.people[("door", "r1:1")] = person("door", "r1:1", "with_mask", T0)
    batch.statuses.append(StatusChange("door", T0, "online"))
    store.write(batch)
    # the same person seen longer (a newer record replaces it), more faces, a second minute
    later = Batch()
    later.faces.update({
        ("door", T0.replace(second=0, tzinfo=None), "with_mask"): 2,
        ("door", (T0 + timedelta(minutes=1)).replace(second=0, tzinfo=None), "without_mask"): 3,
    })  # fmt: skip
    later.people[("door", "r1:1")] = person("door", "r1:1", "with_mask", T0, 40, with_mask=9,
                                            without_mask=2)  # fmt: skip
    later.people[("door", "r1:2")] = person(
        "door", "r1:2", "without_mask", T0 + timedelta(minutes=1)
    )
    later.people[("hall", "r1:3")] = person("hall", "r1:3", "without_mask", T0)
    later.statuses.append(StatusChange("door", T0 + timedelta(seconds=5), "offline", "gone"))
    store.write(later)

    lines = [m.as_json() for m in store.minutes()]
    assert lines == [
        {"camera": "door", "minute": "2026-12-03T09:30:00Z",
         "people": {"with_mask": 1}, "faces": {"with_mask": 6}},
        {"camera": "door", "minute": "2026-12-03T09:31:00Z",
         "people": {"without_mask": 1}, "faces": {"without_mask": 3}},
        {"camera": "hall", "minute": "2026-12-03T09:30:00Z",
         "people": {"without_mask": 1}, "faces": {}},
    ]  # fmt: skip
    assert [m.camera for m in store.minutes(camera="hall")] == ["hall"]
    assert len(store.minutes(since=T0 + timedelta(seconds=50))) == 1  # from 09:31 on
    first = store.person_records("door")[0]
    assert (first.frames, first.votes, first.last_seen) == (
        11, {"with_mask": 9, "without_mask": 2}, (T0 + timedelta(seconds=40)).replace(tzinfo=None)
    )  # fmt: skip
    states = [(s.state, s.detail) for s in store.status_changes("door")]
    assert states == [("offline", "gone"), ("online", "")]
    assert store.cameras() == ["door", "hall"]


def test_retention_deletes_old_records(store: RecordStore) -> None:
    old = T0 - timedelta(days=store.retention_days + 1)
    batch = Batch()
    for at in (old, T0):
        batch.faces[("door", at.replace(second=0, tzinfo=None), "with_mask")] = 1
        batch.people[("door", str(at))] = person("door", str(at), "with_mask", at)
        batch.statuses.append(StatusChange("door", at, "online"))
        batch.alerts.append(AlertEvent("door", at, "unmasked_person", "a person", 1.0))
    store.write(batch)
    assert store.prune(now=T0) == 4
    assert [m.minute.day for m in store.minutes()] == [3]
    assert len(store.person_records()) == 1 and len(store.status_changes()) == 1
    assert [a.at for a in store.alert_events()] == [T0.replace(tzinfo=None)]


def test_schema_comes_from_the_migrations(store: RecordStore) -> None:
    with store.engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    assert {"face_minutes", "people", "camera_status", "alerts", "alembic_version"} <= tables
    assert version == HEAD
    RecordStore(store.url).close()  # opening again migrates nothing and keeps the data


def test_an_older_database_is_migrated_on_opening_and_keeps_its_data(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")  # a database the first release made
        conn.execute(text("INSERT INTO face_minutes VALUES ('door', '2026-12-03 09:00:00', "
                          "'with_mask', 7)"))  # fmt: skip
    engine.dispose()
    store = RecordStore(url)
    assert [m.faces for m in store.minutes()] == [{"with_mask": 7}]
    store.write(Batch(alerts=[AlertEvent("door", T0, "unmasked_person", "a person", 1.0)]))
    assert len(store.alert_events()) == 1
    store.close()


def test_a_camera_lease_is_held_by_one_watcher_until_it_expires_or_is_given_back(store):
    a, b = CameraLeases(store, "a", ttl=1.0), CameraLeases(store, "b", ttl=1.0)
    assert a.claim(["door", "hall"]) == {"door", "hall"}
    assert b.claim(["door", "hall", "dock"]) == {"dock"}  # door and hall are a's
    assert a.claim(["door", "hall"]) == {"door", "hall"}  # renewed
    a.release(["hall"])
    assert b.claim(["door", "hall", "dock"]) == {"hall", "dock"}  # given back: taken at once
    assert wait_for(lambda: b.claim(["door", "hall", "dock"]) == {"door", "hall", "dock"}, 5)
    assert a.claim(["door"]) == set()  # a did not renew in time: door is b's now
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM camera_leases"))


def test_sqlite_store_uses_wal(tmp_path: Path) -> None:
    RecordStore(f"sqlite:///{tmp_path / 'deep' / 'r.db'}").close()  # the folder is made
    with sqlite3.connect(tmp_path / "deep" / "r.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_unreachable_database_is_one_sentence() -> None:
    url = f"postgresql+psycopg://op:hunter2@127.0.0.1:{free_port()}/x"
    with pytest.raises(RecordsError, match="could not be opened") as info:
        RecordStore(url)
    assert "hunter2" not in str(info.value) and "***" in str(info.value)
    with pytest.raises(RecordsError, match="not a database URL"):
        RecordStore("nonsense")


def test_writer_keeps_a_bounded_buffer_while_the_database_is_locked(tmp_path: Path) -> None:
    path = tmp_path / "records.db"
    store = RecordStore(f"sqlite:///{path}", busy_timeout=0.2)
    writer = RecordWriter(store, max_pending=50)
    blocker = sqlite3.connect(path, timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")  # another process holds the database
    try:
        for i in range(80):  # 80 minutes of counts: more than the 50 the buffer holds
            writer.add_faces("door", T0 + timedelta(minutes=i), ["with_mask"])
        writer.add_person(person("door", "r:1", "with_mask", T0))
        assert writer.pending == 50 and writer.dropped == 31
        assert not writer.flush()
        assert "refused a write" in writer.last_error and writer.pending == 50
    finally:
        blocker.rollback()
        blocker.close()
    assert writer.close(timeout=10)  # the lock is gone: everything kept is written
    assert writer.last_error == "" and writer.pending == 0
    counted = [m.minute for m in store.minutes() if m.faces]
    assert len(counted) == 49  # the oldest counts were the ones dropped
    assert counted[0] == (T0 + timedelta(minutes=31)).replace(second=0, tzinfo=None)
    assert len(store.person_records()) == 1
    store.close()


def test_writer_retries_while_the_database_is_down(cluster: postgres_server.Cluster) -> None:
    store = RecordStore(cluster.url)
    writer = RecordWriter(store, interval=0.1, retry=(0.1, 0.3)).start()
    try:
        cluster.stop()  # the database server goes away under a running writer
        writer.add_faces("dock", T0, ["without_mask", "without_mask"])
        writer.add_status(StatusChange("dock", T0, "online"))
        assert wait_for(lambda: "refused a write" in writer.last_error, 10)
        assert writer.pending == 2
        cluster.start()
        writer.add_faces("dock", T0, ["with_mask"])
        assert wait_for(lambda: writer.pending == 0 and not writer.last_error, 15)
    finally:
        assert writer.close(timeout=10)
    assert [m.faces for m in store.minutes(camera="dock")] == [{"with_mask": 1, "without_mask": 2}]
    assert [s.state for s in store.status_changes("dock")] == ["online"]
    with store.engine.begin() as conn:
        for table in ("face_minutes", "camera_status"):
            conn.execute(text(f"DELETE FROM {table}"))
    store.close()
