"""facemask.cameras: configuration, redaction, and real streams on 127.0.0.1 (a looping file,
GStreamer's RTSP server, an HTTP MJPEG server), with the faults an operator meets."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from camera_clips import jpeg, mjpeg_server, silent_server, wait_for

from facemask.cameras import (
    Camera,
    CameraError,
    CameraSpec,
    camera_spec,
    configured_cameras,
    load_cameras,
    parse_camera,
    redact,
)
from harness import free_port, rtsp
from harness.clips import face_canvas, write_clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1 s, 10 FPS H.264 clip of a face."""
    path = tmp_path_factory.mktemp("clips") / "face.mp4"
    return write_clip(path, [("without_mask_00597.jpg", 1.0)])


def test_redact_hides_passwords_in_urls_and_text() -> None:
    assert redact("rtsp://admin:s3cret@10.0.0.5:554/live") == "rtsp://admin:***@10.0.0.5:554/live"
    assert redact("rtsp://u:p@ss:w/rd@cam/x") == "rtsp://u:***@cam/x"  # an unescaped '@' and '/'
    assert redact("http://cam/video.mjpg?user=a&password=hunter2&x=1") == (
        "http://cam/video.mjpg?user=a&password=***&x=1"
    )
    line = "failed: 'rtsp://a:b@h/s' then https://x:y@h2?token=abc"
    assert redact(line) == "failed: 'rtsp://a:***@h/s' then https://x:***@h2?token=***"
    for plain in ("rtsp://cam.local/stream", "rtsp://viewer@cam/x", "videos/door.mp4", "0"):
        assert redact(plain) == plain


def test_camera_urls_are_sorted_into_kinds(clip: Path, tmp_path: Path) -> None:
    assert parse_camera("door=rtsp://u:pw@cam/s").kind == "rtsp"
    assert parse_camera("hall=https://cam/video.mjpg").kind == "http"
    assert parse_camera("desk=0") == CameraSpec("desk", "/dev/video0", "device")
    assert parse_camera(f"demo={clip}").kind == "file"
    spec = parse_camera("door=rtsp://u:pw@cam/s")
    assert "pw" not in repr(spec) and "pw" not in str(spec) and spec.url.endswith("@cam/s")
    for bad, words in [
        ("nourl", "NAME=URL"),
        ("bad name=rtsp://cam", "not valid"),
        ("x=ftp://u:pw@cam/f", "not an rtsp://"),
        ("x=missing.mp4", "no video file"),
        ("x=", "no URL"),
    ]:
        with pytest.raises(CameraError, match=words) as info:
            parse_camera(bad)
        assert "pw" not in str(info.value)


def test_cameras_file_and_flags_combine(clip: Path, tmp_path: Path) -> None:
    shutil.copy(clip, tmp_path / "door.mp4")
    toml = tmp_path / "cameras.toml"
    toml.write_text(
        '[cameras]\nentrance = "rtsp://op:pw@10.1.1.1/s1"\n'
        'door = { url = "door.mp4" }\n'  # relative to the file's folder
    )
    specs = configured_cameras(["desk=0"], toml)
    assert [(s.name, s.kind) for s in specs] == [
        ("entrance", "rtsp"), ("door", "file"), ("desk", "device")
    ]  # fmt: skip
    assert specs[1].url == str(tmp_path / "door.mp4")
    with pytest.raises(CameraError, match="given twice: door"):
        configured_cameras([f"door={clip}"], toml)
    toml.write_text("[cameras\n")
    with pytest.raises(CameraError, match="not valid TOML"):
        load_cameras(toml)
    toml.write_text("title = 'no cameras'\n")
    with pytest.raises(CameraError, match=r"no \[cameras\] table"):
        load_cameras(toml)


def read_frames(camera: Camera, seconds: float) -> list:
    frames, seq, end = [], 0, time.monotonic() + seconds
    while time.monotonic() < end:
        frame = camera.read(seq, timeout=0.5)
        if frame is not None:
            frames.append(frame)
            seq = frame.seq
    return frames


def test_file_camera_loops_and_keeps_only_the_newest_frame(clip: Path) -> None:
    events = []
    camera = Camera(camera_spec("demo", str(clip)), on_status=lambda n, s: events.append(s.state))
    camera.start()
    try:
        frames = read_frames(camera, 1.6)  # longer than the 1 s clip: it must loop
        assert len(frames) >= 12, len(frames)
        assert all(f.rgb.shape == (480, 640, 3) and f.rgb.dtype == np.uint8 for f in frames)
        time.sleep(0.55)  # a slow reader: about 5 frames arrive meanwhile, only one is kept
        newest = camera.read(frames[-1].seq)
        assert newest is not None and newest.seq >= frames[-1].seq + 3
        assert camera.read(newest.seq, timeout=0.0) is None  # nothing newer is queued
        assert camera.status.state == "online" and camera.status.reconnects == 0
    finally:
        camera.stop()
    assert events == ["online", "stopped"]


def _rtsp_available() -> bool:
    ok = rtsp.available()
    if not ok and os.environ.get("CI") == "true":
        pytest.fail("GStreamer's RTSP server is missing: `make test` installs it")
    return ok


def start_rtsp(port: int, clip: Path) -> subprocess.Popen:
    return rtsp.start(port, {"test": clip})


def test_rtsp_camera_drops_mid_stream_and_reconnects(clip: Path) -> None:
    if not _rtsp_available():
        pytest.skip("GStreamer's RTSP server (gir1.2-gst-rtsp-server-1.0) is not installed")
    port = free_port()
    clip = write_clip(clip.with_name("long.mp4"), [("without_mask_00597.jpg", 8.0)])
    server = start_rtsp(port, clip)
    events: list[str] = []
    url = f"rtsp://viewer:pa55word@127.0.0.1:{port}/test"
    camera = Camera(
        camera_spec("door", url), open_timeout=5, read_timeout=2, backoff=(0.2, 1.0),
        on_status=lambda n, s: events.append(f"{s.state}: {s.detail}"),
    ).start()  # fmt: skip
    try:
        assert wait_for(lambda: camera.status.frames >= 5, 10), camera.status
        frame = camera.read()
        assert frame is not None and frame.rgb.shape == (480, 640, 3)
        server.kill()  # the camera drops off the network mid-stream
        server.wait()
        assert wait_for(lambda: camera.status.state == "offline", 5), camera.status
        server = start_rtsp(port, clip)  # ... and comes back
        assert wait_for(lambda: camera.status.state == "online", 10), camera.status
        assert camera.status.reconnects >= 1
    finally:
        camera.stop()
        server.kill()
        server.wait()
    assert events[0].startswith("online") and any(e.startswith("offline") for e in events)
    assert not any("pa55word" in e for e in events)


def test_unreachable_camera_is_offline_and_retried() -> None:
    url = f"rtsp://admin:s3cret@127.0.0.1:{free_port()}/live"
    camera = Camera(camera_spec("gate", url), open_timeout=1, backoff=(0.1, 0.2)).start()
    try:
        assert wait_for(lambda: camera.status.reconnects >= 2, 5), camera.status
        status = camera.status
        assert status.state == "offline" and status.frames == 0
        assert "could not be opened" in status.detail and "s3cret" not in status.detail
        assert camera.read(timeout=0.1) is None
    finally:
        camera.stop()


def test_hanging_camera_times_out() -> None:
    with silent_server() as port:  # accepts the connection, never answers
        camera = Camera(
            camera_spec("hang", f"rtsp://127.0.0.1:{port}/x"), open_timeout=1, backoff=(5, 5)
        ).start()
        try:
            assert wait_for(lambda: camera.status.state == "offline", 4), camera.status
            assert "sent nothing for 1 s" in camera.status.detail
        finally:
            started = time.monotonic()
            camera.stop()
            assert time.monotonic() - started < 2  # stop does not wait out the back-off


def test_mjpeg_camera_skips_garbage_and_oversized_frames() -> None:
    good = jpeg(face_canvas("without_mask_00597.jpg"))
    oversized = jpeg(np.zeros((100, 7700, 3), np.uint8))  # past the gate's 7680 px video side

    def parts(connection: int):
        for i in range(400):
            yield b"\x00garbage\xff" * 40 if i in (8, 9) else oversized if i == 12 else good

    with mjpeg_server(parts) as url:
        camera = Camera(camera_spec("hall", url), open_timeout=3, read_timeout=2).start()
        try:
            frames = read_frames(camera, 1.5)
            status = camera.status
        finally:
            camera.stop()
    assert status.state == "online" and status.reconnects == 0
    assert status.rejected >= 2, status  # the garbage and the oversized part, at least
    assert frames and all(f.rgb.shape == (480, 640, 3) for f in frames)


def test_mjpeg_camera_that_stalls_mid_stream_is_reopened() -> None:
    good = jpeg(face_canvas(None))

    def parts(connection: int):  # the first connection stalls after 5 frames
        yield from [good] * (5 if connection == 1 else 400)
        yield None

    with mjpeg_server(parts) as url:
        camera = Camera(
            camera_spec("stall", url), open_timeout=2, read_timeout=1, backoff=(0.1, 0.5)
        ).start()
        try:
            assert wait_for(lambda: camera.status.state == "offline", 5), camera.status
            assert "sent nothing for 1 s" in camera.status.detail
            assert wait_for(lambda: camera.status.state == "online", 5), camera.status
            assert camera.status.reconnects == 1
        finally:
            camera.stop()


def test_missing_device_is_offline_with_a_sentence() -> None:
    spec = camera_spec("desk", "97")  # no /dev/video97 here
    assert not Path(spec.url).exists()
    camera = Camera(spec, open_timeout=1, backoff=(5, 5)).start()
    try:
        assert wait_for(lambda: camera.status.state == "offline", 5), camera.status
        assert camera.status.detail == "Camera desk: the device /dev/video97 could not be opened."
    finally:
        camera.stop()
