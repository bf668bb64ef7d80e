"""facemask.video: a real clip made from a face photo goes in, a playable H.264 mp4 comes out."""

from __future__ import annotations

import wave
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from facemask.classify import MaskClassifier
from facemask.detect import WEBCAM, FaceDetector
from facemask.errors import VideoError
from facemask.images import load_image
from facemask.pipeline import Pipeline
from facemask.video import VideoCancelled, VideoJob, annotate_video

FRAMES = 12
FPS = 10


@pytest.fixture(scope="module")
def pipeline(tiny_model_dir: Path) -> Pipeline:
    return Pipeline(FaceDetector(WEBCAM), MaskClassifier(tiny_model_dir))


def write_clip(path: Path, face: np.ndarray, size=(331, 247), codec="mpeg4", frames=FRAMES):
    """A short clip of a face photo drifting sideways (odd frame size on purpose)."""
    base = cv2.resize(face, size, interpolation=cv2.INTER_AREA)
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=FPS)
        stream.width, stream.height = (size[0] // 2) * 2, (size[1] // 2) * 2
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            frame = np.ascontiguousarray(np.roll(base, 2 * i, axis=1))
            picture = av.VideoFrame.from_ndarray(frame, format="rgb24")
            for packet in stream.encode(picture):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def probe(path: Path) -> tuple[str, str, int, int, int, float]:
    """(codec, pixel format, width, height, decoded frames, fps) of a video file."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        ctx = stream.codec_context
        return ctx.name, ctx.format.name, ctx.width, ctx.height, frames, float(stream.average_rate)


@pytest.fixture(scope="module")
def face(face_images: list[Path]) -> np.ndarray:
    return load_image(next(p for p in face_images if p.name == "astronaut.jpg"))


def test_round_trip_is_playable_h264(pipeline: Pipeline, face: np.ndarray, tmp_path: Path) -> None:
    src = write_clip(tmp_path / "clip.avi", face)
    calls: list[tuple[int, int]] = []
    summary = annotate_video(
        src, tmp_path / "out" / "annotated.mp4", pipeline, lambda d, t: calls.append((d, t))
    )
    codec, pix_fmt, width, height, frames, fps = probe(summary.output)

    assert (codec, pix_fmt) == ("h264", "yuv420p")
    assert frames == summary.frames == FRAMES
    assert fps == pytest.approx(FPS)
    assert width % 2 == 0 and height % 2 == 0
    assert (width, height) == (summary.width, summary.height)
    assert summary.seconds == pytest.approx(FRAMES / FPS)
    assert sum(summary.face_frames_per_label.values()) >= FRAMES - 2  # the face is found
    assert sum(summary.faces_per_label.values()) >= 1
    assert set(summary.faces_per_label) <= set(pipeline.labels)
    assert [done for done, _ in calls] == list(range(1, FRAMES + 1))
    assert calls[-1][1] == FRAMES
    assert not [p for p in summary.output.parent.iterdir() if p.name.startswith(".partial")]


def test_frames_are_annotated(pipeline: Pipeline, face: np.ndarray, tmp_path: Path) -> None:
    src = write_clip(tmp_path / "clip.mp4", face, size=(320, 240), codec="libx264", frames=3)
    summary = annotate_video(src, tmp_path / "annotated.mp4", pipeline)
    with av.open(str(src)) as a, av.open(str(summary.output)) as b:
        before = next(a.decode(video=0)).to_ndarray(format="rgb24").astype(int)
        after = next(b.decode(video=0)).to_ndarray(format="rgb24").astype(int)
    changed = np.abs(before - after).max(axis=2) > 60  # box and label, beyond codec noise
    assert changed.mean() > 0.01


def test_max_frames(pipeline: Pipeline, face: np.ndarray, tmp_path: Path) -> None:
    src = write_clip(tmp_path / "clip.avi", face)
    summary = annotate_video(src, tmp_path / "short.mp4", pipeline, max_frames=4)
    assert summary.frames == 4 == probe(summary.output)[4]
    assert summary.notes == ()


def test_unreadable_files_raise_one_sentence(
    pipeline: Pipeline, face: np.ndarray, tmp_path: Path
) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    clip = write_clip(tmp_path / "clip.mp4", face, size=(320, 240), codec="libx264")
    truncated = tmp_path / "truncated.mp4"  # moov atom at the end: cut off
    truncated.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    sound = tmp_path / "sound.mp4"  # a real MP4 holding only an AAC sound track
    with av.open(str(sound), "w") as out:
        stream = out.add_stream("aac", rate=8000)
        silence = av.AudioFrame.from_ndarray(
            np.zeros((1, 8000), np.float32), format="fltp", layout="mono"
        )
        silence.sample_rate = 8000
        for packet in [*stream.encode(silence), *stream.encode(None)]:
            out.mux(packet)
    wav = tmp_path / "sound-named.mp4"  # a WAV file with a video's name
    with wave.open(str(wav), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(8000)
        handle.writeframes(np.zeros(8000, dtype=np.int16).tobytes())
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")

    for bad, words in [
        (text, "not a readable video"),
        (truncated, "not a readable video"),
        (sound, "has no video stream"),
        (wav, "not a readable video"),
        (empty, "is empty"),
        (tmp_path / "missing.mp4", "could not be read"),
    ]:
        out = tmp_path / f"{bad.stem}-out.mp4"
        with pytest.raises(VideoError, match=words) as info:
            annotate_video(bad, out, pipeline)
        message = str(info.value)
        assert bad.name in message and message.endswith(".") and "\n" not in message
        assert not out.exists()


def test_a_background_job_reports_progress_and_its_result(
    pipeline: Pipeline, face: np.ndarray, tmp_path: Path
) -> None:
    clip = write_clip(tmp_path / "clip.mp4", face)
    job = VideoJob(clip.read_bytes(), "../../etc/my clip?.mp4", pipeline)
    assert job.source.parent.parent == job.folder and job.source.name == "my clip_.mp4"
    assert job.wait(120)
    assert job.error is None and job.summary is not None
    assert job.frames == job.summary.frames == FRAMES
    assert probe(job.summary.output)[:2] == ("h264", "yuv420p")
    assert not job.source.exists()  # the input copy goes as soon as the work ends
    job.close()
    assert not job.folder.exists()


def test_a_cancelled_job_stops_early_and_leaves_nothing(
    pipeline: Pipeline, face: np.ndarray, tmp_path: Path
) -> None:
    clip = write_clip(tmp_path / "long.mp4", face, frames=400)
    job = VideoJob(clip.read_bytes(), "long.mp4", pipeline)
    job.cancel()
    assert job.wait(60)
    assert isinstance(job.error, VideoCancelled) and "nothing was saved" in str(job.error)
    assert job.summary is None and job.frames < 400
    assert list(job.folder.rglob("*.mp4")) == []
    job.close()
    assert not job.folder.exists()


def test_a_bad_file_in_a_job_is_its_error_not_a_crash(pipeline: Pipeline) -> None:
    job = VideoJob(b"\x00" * 4096, "broken.mp4", pipeline)
    assert job.wait(60)
    assert isinstance(job.error, VideoError) and "broken.mp4 is not a readable video" in str(
        job.error
    )
    job.close()
