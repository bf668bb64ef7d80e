"""facemask watch / report: a real face clip played by a file camera, analysed with the shipped
model, counted per minute and per person; and a watcher killed with SIGKILL, then restarted."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import postgres_server
import pytest
from camera_clips import wait_for, webhook_receiver
from PIL import Image

from facemask.cameras import camera_spec
from facemask.cli import main
from facemask.pipeline import Detection
from facemask.records import RecordStore
from facemask.watch import PersonVotes
from harness import free_port
from harness.clips import write_clip

REPO = Path(__file__).resolve().parents[1]


def facemask(*args: str, env: dict | None = None) -> subprocess.Popen:
    env = {**(env or os.environ), "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "facemask", *args], env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


@pytest.fixture(scope="module")
def door_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 s: a person without a mask walks past (2 s), nobody (1 s), one with a mask (2 s),
    nobody (3 s)."""
    scenes = [("without_mask_00597.jpg", 2.0), (None, 1.0), ("with_mask_00002.jpg", 2.0),
              (None, 3.0)]  # fmt: skip
    return write_clip(tmp_path_factory.mktemp("clips") / "door.mp4", scenes)


def det(track: int, label: str) -> Detection:
    return Detection((0, 0, 10, 10), label, 0.9, 0.9, track_id=track)


def test_each_person_gets_the_label_most_of_their_frames_had() -> None:
    votes = PersonVotes("door", "run1")
    t0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    frames = [[det(1, "without_mask"), det(2, "with_mask")], [det(1, "with_mask")],
              [det(1, "without_mask")]]  # fmt: skip
    records = []
    for i, frame in enumerate(frames):
        records = votes.update(t0 + timedelta(seconds=i), frame)
    assert [r.key for r in records] == ["run1:1"]  # track 2 was seen once: not a person yet
    person = records[0]
    assert person.label == "without_mask" and person.votes == {"without_mask": 2, "with_mask": 1}
    assert (person.first_seen, person.last_seen, person.frames) == (
        t0, t0 + timedelta(seconds=2), 3
    )  # fmt: skip


def report(db: str, *args: str) -> list[dict]:
    proc = facemask("report", "--db", db, "--json", *args)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return [json.loads(line) for line in out.splitlines()]


def test_watch_counts_each_person_once_by_their_voted_label(door_clip: Path, tmp_path: Path):
    """... and alerts on the person without a mask: recorded, a snapshot kept, and POSTed to a
    webhook that refuses the first try (its token never in the log)."""
    db, live = f"sqlite:///{tmp_path / 'records.db'}", tmp_path / "live"
    shots = tmp_path / "shots"
    with webhook_receiver(fail_first=1, path="/hook/t0ken") as receiver:
        env = {**os.environ, "FACEMASK_WEBHOOK": receiver.url}
        gone = f"gone=rtsp://viewer:pa55@127.0.0.1:{free_port()}/x"  # unreachable from the start
        proc = facemask("watch", "--camera", f"door={door_clip}", "--camera", gone, "--db", db,
                        "--duration", "6.5", "--live-dir", str(live), "--alert-unmasked-person",
                        "--snapshots", str(shots), env=env)  # fmt: skip
        _, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    assert "t0ken" not in err and "Alert: Camera door: a person without mask." in err
    assert "pa55" not in err and "Camera gone could not be opened" in err
    assert [status for status, _ in receiver.requests] == [503, 200]
    (alert,) = receiver.delivered
    assert (alert["camera"], alert["rule"]) == ("door", "unmasked_person")
    with Image.open(shots / alert["snapshot"]) as snapshot:
        assert snapshot.size == (640, 480) and snapshot.format == "JPEG"
    lines = report(db)
    assert lines and {line["camera"] for line in lines} == {"door"}
    for line in lines:
        assert datetime.strptime(line["minute"], "%Y-%m-%dT%H:%M:%SZ").second == 0
    people = sum((Counter(line["people"]) for line in lines), Counter())
    faces = sum((Counter(line["faces"]) for line in lines), Counter())
    assert people == {"without_mask": 1, "with_mask": 1}, lines
    assert set(faces) == {"without_mask", "with_mask"} and min(faces.values()) >= 5, faces
    assert report(db, "--camera", "hall") == []
    assert report(db, "--since", "2999-01-01T00:00Z") == []
    status = json.loads((live / "door.json").read_text())
    assert status["state"] == "stopped" and status["analysed"] >= 20
    with Image.open(live / "door.jpg") as frame:
        assert frame.size == (640, 480)
    store = RecordStore(db)
    assert [s.state for s in store.status_changes("door")] == ["stopped", "online"]
    assert store.status_changes("gone")[-1].state == "offline"  # the others went on
    (stored,) = store.alert_events("door")
    assert (stored.rule, stored.snapshot) == ("unmasked_person", alert["snapshot"])
    assert status["alerts"] == 1
    store.close()


def test_watch_and_report_refuse_bad_input_in_one_sentence(tmp_path: Path, capsys) -> None:
    for args, words in [
        (["watch", "--db", f"sqlite:///{tmp_path / 'r.db'}"], "Name at least one camera"),
        (["watch", "--camera", "door=rtsp://op:pw@cam/s", "--camera", "door=0"], "given twice"),
        (["watch", "--camera", "x=rtsp://op:pw@cam/s", "--keep-days", "0"], "--keep-days"),
        (["report", "--db", f"sqlite:///{tmp_path / 'none.db'}"], "no records at"),
        (
            [
                "watch",
                "--camera",
                "x=rtsp://op:pw@cam/s",
                "--db",
                f"postgresql+psycopg://op:pw@127.0.0.1:{free_port()}/x",
            ],
            "could not be opened",
        ),
        (["watch", "--camera", "x=rtsp://cam/s", "--webhook", "ftp://op:pw@h/"], "http(s)://"),
        (["report", "--since", "yesterday"], "not an ISO 8601 time"),
    ]:
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert words in err and "Traceback" not in err and "pw@" not in err, err


def test_a_killed_watcher_leaves_a_consistent_database_and_resumes(door_clip: Path, tmp_path):
    """SIGKILL mid-run, then a restart that ends with SIGTERM."""
    path = tmp_path / "records.db"
    db = f"sqlite:///{path}"
    args = [
        "watch",
        "--camera",
        f"door={door_clip}",
        "--db",
        db,
        "--live-dir",
        str(tmp_path),
        "--lease-ttl",
        "2",
    ]  # the restart takes the dead watcher's camera after 2 s
    proc = facemask(*args, "--duration", "120")
    try:
        assert wait_for(lambda: path.is_file() and _faces(path) >= 8, 90), proc.stderr
    finally:
        proc.send_signal(signal.SIGKILL)  # no chance to flush
        proc.communicate(timeout=30)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    before = _faces(path)
    restarted = facemask(*args)  # no --duration: until SIGTERM
    try:
        assert wait_for(lambda: _faces(path) > before, 90)  # it adds to the same records
    finally:
        restarted.send_signal(signal.SIGTERM)
        _, err = restarted.communicate(timeout=60)
    assert restarted.returncode == 0, err  # SIGTERM: flushed and a clean exit
    store = RecordStore(db)
    assert store.status_changes("door")[0].state == "stopped"  # written on the way out
    store.close()
    assert report(db)


def _faces(path: Path) -> int:
    """Face detections stored so far (read as any other reader would, while the watcher runs)."""
    with sqlite3.connect(path, timeout=5) as conn:
        try:
            return conn.execute("SELECT coalesce(sum(n), 0) FROM face_minutes").fetchone()[0]
        except sqlite3.OperationalError:  # the schema is not there yet
            return 0


@pytest.fixture(scope="module")
def cluster() -> postgres_server.Cluster:
    postgres_server.require()
    with postgres_server.postgres(free_port()) as cluster:
        yield cluster


def test_watch_writes_to_postgresql_named_by_facemask_db(door_clip: Path, tmp_path, cluster):
    env = {**os.environ, "FACEMASK_DB": cluster.url}
    proc = facemask("watch", "--camera", f"door={door_clip}", "--duration", "3",
                    "--live-dir", str(tmp_path), env=env)  # fmt: skip
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    proc = facemask("report", "--json", env=env)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines and lines[0]["faces"].get("without_mask", 0) >= 3, lines


def test_two_watchers_share_a_camera_and_one_takes_over_after_kill_9(door_clip, tmp_path, cluster):
    """Two watchers name the same camera: one watches it; killed with SIGKILL, the other takes
    it over within 30 s (here the lease lasts 3 s), and no minute is counted twice."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import ProgrammingError

    engine = create_engine(cluster.url)

    def holder() -> str:
        with engine.connect() as conn:
            try:
                return conn.execute(text("SELECT holder FROM camera_leases WHERE camera = "
                                         "'hall'")).scalar() or ""  # fmt: skip
            except ProgrammingError:  # the schema is not there yet
                return ""

    def faces() -> int:
        with engine.connect() as conn:
            return conn.execute(text("SELECT coalesce(sum(n), 0) FROM face_minutes "
                                     "WHERE camera = 'hall'")).scalar()  # fmt: skip

    args = ["watch", "--camera", f"hall={door_clip}", "--db", cluster.url, "--fps", "5",
            "--lease-ttl", "3"]  # fmt: skip
    first = facemask(*args, "--live-dir", str(tmp_path / "a"))
    started = time.monotonic()
    second = None
    try:
        assert wait_for(lambda: f":{first.pid}:" in holder() and faces() > 0, 90)
        second = facemask(*args, "--live-dir", str(tmp_path / "b"))
        ready = []
        threading.Thread(target=lambda: ready.extend(second.stderr), daemon=True).start()
        assert wait_for(lambda: any("Watching 1 camera" in line for line in ready), 90), ready
        time.sleep(4)  # longer than a lease: the second watcher renews nothing of the first's
        assert f":{first.pid}:" in holder() and not (tmp_path / "b" / "hall.json").exists()
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=30)
        killed = time.monotonic()
        assert wait_for(lambda: f":{second.pid}:" in holder(), 30)
        took = time.monotonic() - killed
        before = faces()
        assert wait_for(lambda: faces() > before, 30)  # it analyses and records the camera
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=60)
        assert second.returncode == 0, "".join(ready)
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    elapsed = time.monotonic() - started
    assert took < 10, took  # the lease's 3 s plus one renewal period, well within 30 s
    print(f"taken over {took:.1f} s after the SIGKILL")
    assert holder() == ""  # given back on SIGTERM
    # one face at most per analysed frame, 5 frames a second: a camera watched twice at once
    # would count up to twice as many
    assert faces() <= 5 * elapsed * 1.1, (faces(), elapsed)
    per_minute = [line["faces"] for line in report(cluster.url, "--camera", "hall")]
    assert all(sum(f.values()) <= 5 * 60 for f in per_minute), per_minute
    store = RecordStore(cluster.url)
    states = [s.state for s in reversed(store.status_changes("hall"))]
    store.close()
    assert states[:2] == ["online", "online"] and states[-1] == "stopped", states
    engine.dispose()


def test_a_watcher_that_cannot_renew_its_leases_lets_its_cameras_go(door_clip, tmp_path):
    """Before its leases could expire, a watcher cut off from the database stops watching, so
    the watcher that takes the camera over never analyses it at the same time."""
    from sqlalchemy import text

    from facemask.records import RecordWriter
    from facemask.records.leases import CameraLeases
    from facemask.watch import Watcher

    store = RecordStore(f"sqlite:///{tmp_path / 'records.db'}")
    leases = CameraLeases(store, "here", ttl=1.0)
    writer = RecordWriter(store)
    spec = camera_spec("door", str(door_clip))
    watcher = Watcher([spec], None, writer, leases=leases)  # no analysis runs: no pipeline
    (watch,) = watcher.watches
    watcher._share_cameras()
    assert watch.camera is not None
    with store.engine.begin() as conn:  # the database refuses the renewals from now on
        conn.execute(text("DROP TABLE camera_leases"))
    watcher._share_cameras()
    assert watch.camera is not None  # the leases are still good for a while
    time.sleep(0.85)
    watcher._share_cameras()
    assert watch.camera is None  # let go before they could expire (1 s)
    writer.close()
    store.close()
