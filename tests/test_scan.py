"""facemask scan: real photos and a real clip through Ray Data, embedded and on a real two-node
cluster on this machine's loopback; the rows agree with `facemask predict --json` and
`facemask video`, bad files are rows, and a second run resumes."""

from __future__ import annotations

import collections
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from facemask.cli import _pipeline, main
from facemask.errors import FacemaskError
from facemask.images import load_image
from facemask.runs import DEFAULT_MODEL
from facemask.scan_table import FACES, FILES, ScanStore, results_table
from facemask.scan_work import PHOTO, VIDEO, FileResult, ScanSettings, scan_video
from facemask.video import annotate_video
from harness import free_port

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
CLIP_FPS = 2  # = scan's default --fps: every frame is analysed, as `facemask video` does


def write_clip(path: Path, face: np.ndarray, frames: int, fps: int) -> Path:
    """A clip of a face photo drifting sideways, then a blank stretch, then the face again."""
    base = cv2.resize(face, (320, 240), interpolation=cv2.INTER_AREA)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for i in range(frames):
            blank = frames // 3 <= i < frames // 3 + fps * 3  # long enough to end the track
            frame = np.full_like(base, 128) if blank else np.roll(base, 3 * i, axis=1)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Photos in nested folders, a clip, a text file posing as a photo, a truncated JPEG, a
    README the folder scan must leave out."""
    root = tmp_path_factory.mktemp("archive")
    (root / "photos" / "more").mkdir(parents=True)
    faces = sorted((DATA / "faces").glob("*.jpg"))
    for photo in faces[:4]:
        shutil.copy(photo, root / "photos" / photo.name)
    for photo in sorted((DATA / "mini-dataset" / "without_mask").glob("*.jpg"))[:3]:
        shutil.copy(photo, root / "photos" / "more" / photo.name)
    (root / "photos" / "notes.jpg").write_text("not a photo at all")
    (root / "photos" / "cut.jpg").write_bytes((DATA / "faces" / "astronaut.jpg").read_bytes()[:600])
    (root / "photos" / "README.txt").write_text("what the folder holds")
    (root / "clips").mkdir()
    write_clip(root / "clips" / "door.mp4", load_image(DATA / "faces" / "astronaut.jpg"), 24, 2)
    return root


def run_scan(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "facemask", "scan", *args],
        capture_output=True, text=True, timeout=300, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
    return result


def rows(out: Path, name: str) -> list[dict]:
    """A table's rows in a stable order (Ray returns blocks as they finish)."""
    table = pq.read_table(out / name).to_pylist()
    return sorted(table, key=lambda r: (r["file"], r.get("frame") or 0, r.get("x1") or 0))


@pytest.fixture(scope="module")
def embedded(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The archive scanned embedded with two workers (sources: a folder and a glob)."""
    out = tmp_path_factory.mktemp("scan")
    result = run_scan(
        str(archive / "photos"), str(archive / "clips" / "*.mp4"), "--out", str(out),
        "--workers", "2",
    )  # fmt: skip
    return out, result.stdout + result.stderr


def test_every_file_has_its_row_and_bad_files_their_sentence(archive, embedded):
    out, log = embedded
    files = {Path(r["file"]).name: r for r in rows(out, FILES)}
    assert set(files) == {p.name for p in archive.rglob("*") if p.suffix in (".jpg", ".mp4")}
    assert "Ray started in" in log and "1 files in the folders are neither" in log
    assert (
        files["notes.jpg"]["error"]
        == "notes.jpg is not a readable image (JPEG, PNG, WebP, GIF or BMP)."
    )
    assert files["cut.jpg"]["error"].startswith("cut.jpg is not a readable image")
    good = [r for r in files.values() if r["error"] is None]
    assert len(good) == len(files) - 2 and all(r["frames"] >= 1 for r in good)
    faces = rows(out, FACES)
    for row in good:
        assert row["faces"] == sum(f["file"] == row["file"] for f in faces)
    assert not (out / "parts").exists()


def test_photos_match_predict_json(archive, embedded, capsys):
    out, _ = embedded
    photos = sorted(str(p) for p in (archive / "photos").rglob("*.jpg"))
    main(["predict", "--json", *photos])
    predicted = {}
    for line in capsys.readouterr().out.splitlines():
        result = json.loads(line)
        predicted[result["file"]] = result
    faces = rows(out, FACES)
    for row in rows(out, FILES):
        if row["kind"] != PHOTO:
            continue
        expected = predicted[row["file"]]
        if "error" in expected:
            assert row["error"] is not None
            continue
        mine = [f for f in faces if f["file"] == row["file"]]
        assert (row["width"], row["height"]) == (expected["width"], expected["height"])
        assert sorted(
            ([f["x1"], f["y1"], f["x2"], f["y2"]], f["label"], f["confidence"]) for f in mine
        ) == sorted((f["box"], f["label"], f["confidence"]) for f in expected["faces"])
    assert any(f["label"] == "without_mask" for f in faces)


def test_video_matches_facemask_video(archive, embedded, tmp_path):
    out, _ = embedded
    clip = archive / "clips" / "door.mp4"
    summary = annotate_video(clip, tmp_path / "a.mp4", _pipeline(DEFAULT_MODEL, "webcam"))
    row = next(r for r in rows(out, FILES) if r["kind"] == VIDEO)
    assert row["frames"] == summary.frames == 24
    people = {k[7:]: v for k, v in row.items() if k.startswith("people_") and v}
    faces = {k[6:]: v for k, v in row.items() if k.startswith("faces_") and v}
    assert people == summary.faces_per_label and sum(people.values()) == 2
    assert faces == summary.face_frames_per_label
    tracked = [f for f in rows(out, FACES) if f["file"] == row["file"]]
    assert {f["person"] for f in tracked} == {1, 2}
    assert all(f["time"] == f["frame"] / CLIP_FPS for f in tracked)


def test_db_puts_each_recording_beside_the_cameras(archive, tmp_path):
    """`--db`: a video's people and face detections per minute in the records database, as
    `facemask report` reads them; photos and bad files add nothing there."""
    url = f"sqlite:///{tmp_path / 'records.db'}"
    clips = tmp_path / "clips"
    shutil.copytree(archive / "clips", clips)
    shutil.copy(archive / "photos" / "notes.jpg", clips / "notes.jpg")
    result = run_scan(str(clips), "--out", str(tmp_path / "scan"), "--workers", "1", "--fps", "0",
                      "--db", url)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "1 recordings' per-minute counts went to the database" in result.stdout
    row = next(r for r in rows(tmp_path / "scan", FILES) if r["kind"] == VIDEO)
    from facemask.records.store import RecordStore

    store = RecordStore(url, create=False)
    try:
        minutes = store.minutes()
    finally:
        store.close()
    assert {m.camera for m in minutes} == {"recording:door.mp4"}
    faces, people = collections.Counter(), collections.Counter()
    for minute in minutes:
        faces.update(minute.faces)
        people.update(minute.people)
    assert faces == {k[6:]: v for k, v in row.items() if k.startswith("faces_") and v}
    assert people == {k[7:]: v for k, v in row.items() if k.startswith("people_") and v}
    assert sum(people.values()) == 2


def test_frames_are_sampled_at_the_asked_rate(tmp_path):
    clip = write_clip(tmp_path / "c.mp4", load_image(DATA / "faces" / "astronaut.jpg"), 25, 10)
    pipeline = _pipeline(DEFAULT_MODEL, "webcam")
    sampled = scan_video(pipeline, str(clip), clip.stat().st_size, fps=2)
    assert sampled.frames == 5 and sampled.seconds == 2.5  # t = 0, 0.5, 1.0, 1.5, 2.0
    assert {r["frame"] for r in sampled.face_rows} <= {0, 5, 10, 15, 20}
    assert scan_video(pipeline, str(clip), clip.stat().st_size, fps=0).frames == 25


def test_a_second_run_skips_what_is_done_and_scans_what_is_new(archive, embedded, tmp_path):
    out = tmp_path / "scan"
    shutil.copytree(embedded[0], out)
    before = rows(out, FILES)
    extra = tmp_path / "new"
    extra.mkdir()
    shutil.copy(DATA / "faces" / "astronaut.jpg", extra / "late.jpg")
    result = run_scan(str(archive / "photos"), str(extra), "--out", str(out), "--workers", "1")
    after = rows(out, FILES)
    assert "9 files were done by an earlier run" in result.stdout
    assert "Scanned 1 files" in result.stdout
    assert [r for r in after if not r["file"].endswith("late.jpg")] == before


def test_store_keeps_finished_parts_through_a_crash(tmp_path):
    """Parts written before a crash count as done; a faces part without its files part does
    not; merging twice (a crash after the renames) counts nothing twice."""
    labels = ("with_mask", "without_mask")
    face = {"file": "a.jpg", "frame": 0, "time": None, "x1": 1, "y1": 2, "x2": 3, "y2": 4,
            "label": "with_mask", "confidence": 0.9, "detection_score": 0.8,
            "person": None}  # fmt: skip
    done = FileResult("a.jpg", PHOTO, 10, 4, 4, 1, face_rows=[face])
    done.faces["with_mask"] = done.people["with_mask"] = 1
    store = ScanStore(tmp_path, labels)
    store.check_settings(ScanSettings("/models/m", fps=2.0))
    store.add(results_table([done], labels))
    store.flush()
    store.close()  # the crash: no merge
    orphan = tmp_path / "parts" / "x-00001.faces.parquet"
    pq.write_table(pa.Table.from_pylist([face]), orphan)
    store = ScanStore(tmp_path, labels)
    assert store.done() == {"a.jpg"} and not orphan.exists()
    store.merge()
    parts = tmp_path / "parts"
    parts.mkdir()
    for name in (FILES, FACES):  # as if the parts' removal had not happened
        shutil.copy(tmp_path / name, parts / f"y-00001.{name}")
    store.merge()
    files = pq.read_table(tmp_path / FILES).to_pylist()
    assert len(files) == 1 and files[0]["share_masked"] == 1.0
    assert pq.read_table(tmp_path / FACES).num_rows == 1
    with pytest.raises(FacemaskError, match=r"other settings \(fps\)"):
        store.check_settings(ScanSettings("/models/m", fps=1.0))
    with pytest.raises(FacemaskError, match="Another scan is writing"):
        ScanStore(tmp_path, labels)
    store.close()


# -- a real cluster: `ray start --head` and a second node, on 127.0.0.1 ---------------------------
NODE = (  # NOTE: with multi-node on, Ray swaps 127.0.0.1 for this machine's outward address
    "import sys, ray._private.services as s; "
    "s.node_ip_address_from_perspective = lambda address=None: '127.0.0.1'; "
    "from ray.scripts.scripts import main; sys.exit(main())"
)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to `ray start --block` stops its node; its process group goes after."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture
def cluster(tmp_path: Path):
    """A head (1 CPU) and a second node (1 CPU) on this machine, bound to 127.0.0.1."""
    port = free_port()
    temp = Path(tempfile.mkdtemp(prefix="ray-"))  # short: Ray's socket paths must fit 107 bytes
    log = (tmp_path / "ray-start.log").open("w")
    env = {
        **os.environ, "PYTHONPATH": str(REPO), "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
    }  # fmt: skip
    common = ["--block", "--num-cpus", "1", "--object-store-memory", "100000000",
              "--disable-usage-stats"]  # fmt: skip
    head = subprocess.Popen(
        [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--port", str(port),
         "--node-ip-address", "127.0.0.1", "--include-dashboard=false", "--temp-dir",
         str(temp), *common],
        env={**env, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}, start_new_session=True,
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    processes = [head]
    try:
        _wait_for_port(port, head)
        node = subprocess.Popen(
            [sys.executable, "-c", NODE, "start", "--address", f"127.0.0.1:{port}", *common],
            env=env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        processes.append(node)
        _wait_for_nodes(f"127.0.0.1:{port}", 2, env)
        yield f"127.0.0.1:{port}", env
    finally:
        for process in reversed(processes):
            stop(process)
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


def _wait_for_port(port: int, process: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "ray start --head ended (see ray-start.log)"
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise AssertionError(f"the head did not listen on 127.0.0.1:{port}")


def _wait_for_nodes(address: str, count: int, env: dict, timeout: float = 120) -> None:
    check = (
        "import ray, time, sys\n"
        f"ray.init(address={address!r}, logging_level='error')\n"
        f"deadline = time.monotonic() + {timeout}\n"
        f"while sum(n['Alive'] for n in ray.nodes()) < {count} and time.monotonic() < deadline:\n"
        "    time.sleep(0.5)\n"
        f"sys.exit(sum(n['Alive'] for n in ray.nodes()) < {count})\n"
    )
    local = {**env, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    result = subprocess.run([sys.executable, "-c", check], env=local, timeout=timeout + 60)
    assert result.returncode == 0, "the second node did not join"


def test_a_two_node_cluster_gives_the_rows_of_the_embedded_run(
    archive, embedded, cluster, tmp_path
):
    address, env = cluster
    out = tmp_path / "cluster-scan"
    result = run_scan(
        str(archive / "photos"), str(archive / "clips" / "*.mp4"), "--out", str(out),
        "--workers", "2", env={"RAY_ADDRESS": address, "RAY_AUTH_MODE": "token",
                               "RAY_AUTH_TOKEN": env["RAY_AUTH_TOKEN"]},
    )  # fmt: skip
    assert f"({address})" in result.stderr
    assert rows(out, FILES) == rows(embedded[0], FILES)
    assert rows(out, FACES) == rows(embedded[0], FACES)


def test_help_and_a_source_that_names_nothing(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["scan", "--help"])
    assert exited.value.code == 0
    assert "--workers" in capsys.readouterr().out
    assert main(["scan", str(tmp_path / "nowhere" / "*.jpg"), "--out", str(tmp_path / "o")]) == 2
    assert "matches no file or folder" in capsys.readouterr().err
    assert main(["scan", str(DATA), "--out", str(tmp_path / "o"), "--fps", "-1"]) == 2
