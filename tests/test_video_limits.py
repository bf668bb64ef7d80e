"""Bounded video work: frames above the size limit are refused before they are decoded, frame
rates outside what the output can carry are said, and the server's video jobs, analyses and
sessions are capped and cleaned up (facemask.jobs)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from facemask import jobs
from facemask.classify import MaskClassifier
from facemask.detect import WEBCAM, FaceDetector
from facemask.errors import VideoError
from facemask.pipeline import Pipeline
from facemask.video import FOLDER_PREFIX, annotate_video

BIG_SIDE = 8000  # 64 megapixels: above gate.MAX_IMAGE_PIXELS (40)


@pytest.fixture(scope="module")
def pipeline(shipped_model_dir: Path) -> Pipeline:
    return Pipeline(FaceDetector(WEBCAM), MaskClassifier(shipped_model_dir))


def growing_clip(path: Path) -> Path:
    """An MJPEG AVI whose header says 64 x 64: two such frames, then 8000 x 8000 JPEG frames
    (a grey JPEG that size is under 1 MB; decoded and converted it would be 256 MB)."""
    with av.open(str(path), "w", format="avi") as out:
        stream = out.add_stream("mjpeg", rate=25)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuvj420p"
        for i in range(2):
            picture = av.VideoFrame.from_ndarray(np.full((64, 64, 3), 90, np.uint8), "rgb24")
            picture.pts = i
            for packet in stream.encode(picture):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
        big = io.BytesIO()
        Image.new("L", (BIG_SIDE, BIG_SIDE), 90).save(big, "JPEG", quality=50)
        for i in range(2, 5):
            packet = av.Packet(big.getvalue())
            packet.stream, packet.pts, packet.dts = stream, i, i
            packet.time_base = stream.time_base
            out.mux(packet)
    return path


def flat_clip(path: Path, frames: int, rate: int, size: tuple[int, int]) -> Path:
    """An MPEG-4 clip of flat grey frames, `rate` frames per second."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=rate)
        stream.width, stream.height, stream.pix_fmt = *size, "yuv420p"
        for i in range(frames):
            frame = np.full((size[1], size[0], 3), i % 255, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


PEAK_SCRIPT = """
import json, resource, sys
from facemask.classify import MaskClassifier
from facemask.detect import WEBCAM, FaceDetector
from facemask.errors import VideoError
from facemask.pipeline import Pipeline
from facemask.video import annotate_video
import numpy as np
pipeline = Pipeline(FaceDetector(WEBCAM), MaskClassifier(sys.argv[2]))
pipeline.process(np.zeros((64, 64, 3), np.uint8))  # models loaded and warm before measuring
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    annotate_video(sys.argv[1], sys.argv[1] + ".out.mp4", pipeline)
    message = None
except VideoError as exc:
    message = str(exc)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"message": message, "peak_growth_mb": (after - before) / 1024}))
"""


def test_frames_that_grow_mid_stream_are_refused_before_decoding(
    tmp_path: Path, shipped_model_dir: Path
) -> None:
    clip = growing_clip(tmp_path / "grows.avi")
    assert clip.stat().st_size < 5_000_000
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    run = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT, str(clip), str(shipped_model_dir)],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert found["message"] == (
        "Frame 3 is larger than 40 megapixels (or unreadable); the video is refused."
    )
    # One such frame decoded is 64 MB (grey), converted to RGB 192 MB more: neither happened.
    assert found["peak_growth_mb"] < 60, found


def test_a_frame_rate_outside_the_supported_range_is_said(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    """A 5 s clip at 1000 fps must not become a 120 s slow-motion video."""
    path = flat_clip(tmp_path / "fast.mp4", frames=5000, rate=1000, size=(64, 64))
    with pytest.raises(VideoError) as caught:
        annotate_video(path, tmp_path / "out.mp4", pipeline)
    assert str(caught.value) == (
        "fast.mp4 runs at 1000 frames per second; supported frame rates are 1 to 240."
    )
    assert not (tmp_path / "out.mp4").exists()


def long_clip(tmp_path: Path) -> bytes:
    return flat_clip(tmp_path / "long.mp4", frames=2000, rate=25, size=(320, 240)).read_bytes()


def test_the_server_runs_a_few_video_jobs_and_says_busy_beyond(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    video = jobs.VideoJobs(capacity=1, idle_s=60)
    first = video.start(long_clip(tmp_path), "a.mp4", pipeline)
    try:
        with pytest.raises(jobs.VideoBusy, match="try again in a minute"):
            video.start(b"x", "b.mp4", pipeline)
        assert video.running() == 1
    finally:
        video.close(first)
    assert first.closed and not first.folder.exists()
    second = video.start(b"\x00" * 64, "c.mp4", pipeline)  # a slot is free again
    video.close(second)


def test_a_job_ends_with_its_session_or_when_nobody_watches(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    data = long_clip(tmp_path)
    video = jobs.VideoJobs(capacity=2, idle_s=1.0, sweep_s=0.2)
    session = {"open": True}
    left = video.start(data, "left.mp4", pipeline, alive=lambda: session["open"])
    watched = video.start(data, "watched.mp4", pipeline)
    try:
        session["open"] = False  # the visitor closed the tab
        deadline = time.monotonic() + 30
        while not left.closed and time.monotonic() < deadline:
            watched.touch()
            time.sleep(0.1)
        assert left.closed and left.done and not left.folder.exists()
        assert not watched.closed  # still watched: still running
        time.sleep(1.5)  # now nobody watches it either
        deadline = time.monotonic() + 30
        while not watched.closed and time.monotonic() < deadline:
            time.sleep(0.1)
        assert watched.closed and not watched.folder.exists() and video.running() == 0
    finally:
        video.close(left)
        video.close(watched)


def test_stale_job_folders_are_removed_at_start_up(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    folders = {
        "dead": tmp_path / f"{FOLDER_PREFIX}{dead.pid}-abc",
        "legacy": tmp_path / f"{FOLDER_PREFIX}k2j3h4x9",
        "recent legacy": tmp_path / f"{FOLDER_PREFIX}a8d7f6g5",  # maybe an older server's job
        "ours": tmp_path / f"{FOLDER_PREFIX}{os.getpid()}-def",
        "other": tmp_path / "something-else",
    }
    for folder in folders.values():
        (folder / "input").mkdir(parents=True)
        (folder / "input" / "clip.mp4").write_bytes(b"x" * 100)
    hours_ago = time.time() - 2 * jobs.LEGACY_STALE_S
    os.utime(folders["legacy"], (hours_ago, hours_ago))
    assert jobs.clean_stale_folders(tmp_path) == 2
    assert {name for name, f in folders.items() if f.exists()} == {"ours", "other", "recent legacy"}


def test_analyses_beyond_the_server_slots_hear_busy() -> None:
    slots = jobs.Slots(capacity=1, wait_s=0.2, busy="Busy, try again.")
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with slots.hold():
            held.set()
            release.wait(10)

    worker = threading.Thread(target=hold)
    worker.start()
    try:
        assert held.wait(10)
        with pytest.raises(jobs.Busy, match="Busy, try again."), slots.hold():
            pass
    finally:
        release.set()
        worker.join()
    with slots.hold():  # free again
        pass


def test_the_janitor_cleans_up_once_a_session_has_ended() -> None:
    janitor = jobs.SessionJanitor(sweep_s=3600)  # swept by hand here
    state = {"open": True, "cleaned": 0}
    janitor.watch("s1", lambda: state["open"], lambda: state.update(cleaned=state["cleaned"] + 1))
    assert janitor.sweep() == 0
    state["open"] = False
    for _ in range(jobs.GRACE_SWEEPS):  # grace for a browser reconnecting after a blip
        assert janitor.sweep() == 0
    assert janitor.sweep() == 1 and state["cleaned"] == 1
    assert janitor.sweep() == 0 and state["cleaned"] == 1  # once


def test_the_janitor_runs_its_reapers_every_sweep_and_survives_a_failing_one(monkeypatch) -> None:
    janitor = jobs.SessionJanitor(sweep_s=3600)
    released = []
    monkeypatch.setattr(jobs, "release_memory", lambda: released.append(1))
    ended = iter([0, 3, 0])

    def broken() -> int:
        raise RuntimeError("a reaper that fails")

    janitor.every_sweep(broken)
    janitor.every_sweep(lambda: next(ended))
    assert janitor.sweep() == 0 and released == []
    assert janitor.sweep() == 3 and released == [1]  # memory handed back once something ended
    assert janitor.sweep() == 0 and released == [1]
