"""Video file in -> annotated video out: the upload page's and `facemask video`'s one path.

Every frame goes through `Pipeline.process` with a `FaceTracker` (labels smoothed across
frames) and `annotate`. The output is browser-playable H.264 (yuv420p, even dimensions) in an
mp4 with the source frame rate; audio is not carried over.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import av.error
import numpy as np

from facemask import gate
from facemask.errors import VideoError
from facemask.files import atomic_path
from facemask.gate import MAX_VIDEO_BYTES, MAX_VIDEO_SECONDS
from facemask.pipeline import FaceTracker, Pipeline, TrackVotes, annotate
from facemask.progress import ProgressCallback

OUTPUT_MAX_SIDE = 1280
"""Frames whose longer side exceeds this are scaled down before detection and written at that
size (faces stay large enough)."""
DEFAULT_FPS = Fraction(25)
MIN_FPS, MAX_FPS = 1, 240
"""Frame rates the output can carry; a video outside them is refused, not slowed down."""
FOLDER_PREFIX = "facemask-video-"
"""A job's temporary folder: FOLDER_PREFIX + the server's pid + a random part."""
_CRF = "23"
_PRESET = "veryfast"


class VideoCancelled(VideoError):
    """annotate_video was asked to stop; nothing was written."""


@dataclass(frozen=True)
class VideoSummary:
    """What annotate_video did."""

    frames: int  # frames written (= frames read)
    fps: float
    seconds: float  # duration of the output
    width: int
    height: int
    faces_per_label: dict[str, int]  # distinct tracked faces, by the label they had most often
    face_frames_per_label: dict[str, int]  # detections summed over frames
    output: Path
    notes: tuple[str, ...] = field(default=())  # e.g. "only the first 120 s were processed"


def check_video_size(name: str, size: int, limited: bool = True) -> None:
    """VideoError for an empty file or (when `limited`) one above MAX_VIDEO_BYTES."""
    if size == 0:
        raise VideoError(f"{name} is empty.")
    if limited and size > MAX_VIDEO_BYTES:
        raise VideoError(
            f"{name} is {size / 2**20:.0f} MB; the limit is {MAX_VIDEO_BYTES / 2**20:.0f} MB."
        )


def open_video(src: Path, limited: bool = True):
    """A PyAV container for a video file that passed the gate (magic bytes, codec, frame size).

    `limited=False` drops the upload's byte limit (an archive's recording may be hours long:
    frames are decoded one at a time); FFmpeg still refuses any frame above the pixel limit.
    """
    try:
        size = src.stat().st_size
    except OSError as exc:
        raise VideoError(f"{src.name} could not be read: {exc.strerror or exc}.") from exc
    check_video_size(src.name, size, limited)
    with src.open("rb") as handle:
        demuxer = gate.sniff_video(handle.read(16), src.name)
    try:
        container = av.open(str(src), mode="r", format=demuxer)
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise VideoError(
            f"{src.name} is not a readable video (MP4, MOV, AVI or WebM): {av_reason(exc)}."
        ) from exc
    try:
        if not container.streams.video:
            raise VideoError(f"{src.name} has no video stream.")
        stream = container.streams.video[0]
        gate.check_video_stream(stream, src.name)
        # FFmpeg refuses to allocate any frame above this: a stream whose frames grow is
        # stopped before a big frame is decoded, whatever its header declared.
        stream.codec_context.options = {"max_pixels": str(gate.MAX_IMAGE_PIXELS)}
    except VideoError:
        container.close()
        raise
    return container


def av_reason(exc: Exception) -> str:
    """FFmpeg's own words for an error, without the file path it appends."""
    text = getattr(exc, "strerror", None) or str(exc)
    return text[:1].lower() + text[1:].rstrip(".")


def output_size(width: int, height: int) -> tuple[int, int]:
    """Scale down to OUTPUT_MAX_SIDE and round to even numbers (yuv420p needs them)."""
    scale = min(1.0, OUTPUT_MAX_SIDE / max(width, height))
    out_w = max(2, int(round(width * scale / 2)) * 2)
    out_h = max(2, int(round(height * scale / 2)) * 2)
    return out_w, out_h


def _expected_frames(stream, fps: Fraction, limit: int) -> int:
    frames = int(stream.frames or 0)
    if frames <= 0 and stream.duration and stream.time_base:
        frames = int(round(float(stream.duration * stream.time_base) * fps))
    if frames <= 0 and stream.container.duration:
        frames = int(round(stream.container.duration / av.time_base * fps))
    return min(frames, limit) if frames > 0 else limit


def annotate_video(
    src_path: str | os.PathLike,
    dst_path: str | os.PathLike,
    pipeline: Pipeline,
    progress: ProgressCallback | None = None,
    max_frames: int | None = None,
    stop: threading.Event | None = None,
) -> VideoSummary:
    """Detect, classify and annotate every frame of a video; write an H.264 mp4 to dst_path.

    `progress(frames done, frames expected)` is called as frames are written; the expected count
    is the container's estimate.
    The output appears at dst_path only when complete. At most max_frames frames (and
    MAX_VIDEO_SECONDS) are processed. Raises VideoError with one sentence for files that are
    missing, too large, unreadable, corrupt or without a video stream, and VideoCancelled
    (writing nothing) once `stop` is set.
    """
    src, dst = Path(src_path), Path(dst_path)
    container = open_video(src)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        fps, notes = _frame_rate(stream, src.name)
        limit = int(MAX_VIDEO_SECONDS * fps)
        if max_frames is not None:
            limit = min(limit, max(1, int(max_frames)))
        total = _expected_frames(stream, fps, limit)
        dst.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(dst) as tmp:  # a cancelled or failed job leaves no file
            summary = _transcode(
                container, stream, tmp, pipeline, fps, limit, total, progress, stop
            )
    finally:
        container.close()
    if summary["frames"] == 0:
        dst.unlink(missing_ok=True)
        raise VideoError(f"{src.name} has no decodable video frames.")
    notes += summary["notes"]
    if summary["hit_limit"] and (max_frames is None or limit < max_frames):
        notes.append(f"Only the first {MAX_VIDEO_SECONDS:.0f} s of {src.name} were processed.")
    return VideoSummary(
        frames=summary["frames"],
        fps=float(fps),
        seconds=summary["frames"] / float(fps),
        width=summary["width"],
        height=summary["height"],
        faces_per_label=summary["faces"],
        face_frames_per_label=summary["face_frames"],
        output=dst,
        notes=tuple(notes),
    )


def _frame_rate(stream, name: str) -> tuple[Fraction, list[str]]:
    """The stream's frame rate (and a note when it had to be assumed); VideoError outside
    MIN_FPS..MAX_FPS, which a player would show as slow or fast motion."""
    rate = stream.average_rate or stream.guessed_rate
    if not rate:
        return DEFAULT_FPS, [f"{name} does not give its frame rate; {DEFAULT_FPS} fps assumed."]
    fps = Fraction(rate)
    if not MIN_FPS <= fps <= MAX_FPS:
        raise VideoError(
            f"{name} runs at {float(fps):.4g} frames per second; supported frame rates are "
            f"{MIN_FPS} to {MAX_FPS}."
        )
    return fps, []


def _transcode(container, stream, tmp: Path, pipeline, fps, limit, total, progress, stop) -> dict:
    """Decode, process, annotate and encode; returns counts for the summary."""
    tracker = FaceTracker()
    face_frames: Counter[str] = Counter()
    people = TrackVotes()
    notes: list[str] = []
    frames, hit_limit = 0, False
    out = av.open(str(tmp), mode="w", format="mp4", options={"movflags": "+faststart"})
    out_stream = None
    try:
        try:
            for frame in container.decode(stream):
                if frames >= limit:
                    hit_limit = True
                    break
                if stop is not None and stop.is_set():
                    raise VideoCancelled(f"Stopped after {frames} frames; nothing was saved.")
                label = f"Frame {frames + 1}"
                gate.check_size(frame.width, frame.height, label, VideoError)  # before converting
                rgb = gate.check_frame(frame_rgb(frame), label, VideoError)
                if out_stream is None:
                    width, height = output_size(rgb.shape[1], rgb.shape[0])
                    out_stream = _video_stream(out, fps, width, height)
                rgb = fit_frame(rgb, out_stream.width, out_stream.height)
                detections = pipeline.process(rgb, tracker)
                face_frames.update(det.label for det in detections)
                people.add(detections)
                picture = av.VideoFrame.from_ndarray(
                    annotate(rgb, detections, legend=pipeline.labels), format="rgb24"
                )
                picture.pts = frames
                for packet in out_stream.encode(picture):
                    out.mux(packet)
                frames += 1
                if progress is not None:
                    progress(frames, max(total, frames))
        except av.error.ArgumentError as exc:  # max_pixels: a frame above the size limit
            raise VideoError(
                f"Frame {frames + 1} is larger than {gate.MAX_IMAGE_PIXELS / 1e6:.0f} megapixels "
                "(or unreadable); the video is refused."
            ) from exc
        except (av.error.FFmpegError, ValueError) as exc:
            if frames == 0:
                raise VideoError(f"The video could not be decoded: {av_reason(exc)}.") from exc
            notes.append(f"The video is damaged after frame {frames}; the rest was skipped.")
        if out_stream is not None:
            for packet in out_stream.encode(None):
                out.mux(packet)
    except av.error.FFmpegError as exc:
        raise VideoError(f"The annotated video could not be written: {av_reason(exc)}.") from exc
    finally:
        out.close()
    faces = people.people()
    return {
        "frames": frames,
        "width": out_stream.width if out_stream is not None else 0,
        "height": out_stream.height if out_stream is not None else 0,
        "faces": dict(faces),
        "face_frames": dict(face_frames),
        "notes": notes,
        "hit_limit": hit_limit,
    }


def _video_stream(out, fps: Fraction, width: int, height: int):
    stream = out.add_stream("libx264", rate=fps)
    stream.width, stream.height = width, height
    stream.pix_fmt = "yuv420p"
    stream.codec_context.time_base = 1 / fps
    stream.options = {"crf": _CRF, "preset": _PRESET}
    return stream


def frame_rgb(frame) -> np.ndarray:
    """A decoded frame as RGB uint8, turned upright when the container says it is rotated."""
    rgb = frame.to_ndarray(format="rgb24")
    quarter_turns = int(round((frame.rotation or 0) / 90)) % 4
    if quarter_turns:
        rgb = np.ascontiguousarray(np.rot90(rgb, k=quarter_turns))
    return rgb


def fit_frame(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize a frame to the output size (no-op when it already has it)."""
    if rgb.shape[1] == width and rgb.shape[0] == height:
        return rgb
    import cv2

    interpolation = cv2.INTER_AREA if rgb.shape[1] > width else cv2.INTER_LINEAR
    return cv2.resize(rgb, (width, height), interpolation=interpolation)


class VideoJob:
    """annotate_video on a background thread, so a page stays responsive and can cancel it.

    The job owns a temporary folder holding the input copy and the output; `close()` removes it.
    Read `frames` / `total` for progress; once `done`, either `summary` or `error` is set.
    `touch()` says its owner still watches it (VideoJobs ends jobs nobody watches).
    """

    def __init__(self, data: bytes, name: str, pipeline: Pipeline) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-"))
        self.source = self.folder / "input" / _safe_name(name)
        self.source.parent.mkdir()
        self.source.write_bytes(data)
        self.frames, self.total = 0, 0
        self.summary: VideoSummary | None = None
        self.error: Exception | None = None  # VideoError for the user's file, else a bug
        self.last_seen = time.monotonic()
        self.closed = False  # its files are gone (closed by its owner or for idleness)
        self._stop = threading.Event()
        self._pipeline = pipeline
        self._thread = threading.Thread(target=self._run, name="facemask-video", daemon=True)
        self._thread.start()

    def _progress(self, frames: int, total: int) -> None:
        self.frames, self.total = frames, total

    def _run(self) -> None:
        try:
            self.summary = annotate_video(
                self.source, self.folder / "annotated.mp4", self._pipeline,
                progress=self._progress, stop=self._stop,
            )  # fmt: skip
        except Exception as exc:  # noqa: BLE001 -- a thread hands every failure back to its owner
            self.error = exc
        finally:
            self.source.unlink(missing_ok=True)

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def touch(self) -> None:
        self.last_seen = time.monotonic()

    def cancel(self) -> None:
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job ends (or timeout); True when it has ended."""
        self._thread.join(timeout)
        return self.done

    def close(self) -> None:
        """Stop the job if it runs, then remove its files."""
        self.cancel()
        self.wait()
        shutil.rmtree(self.folder, ignore_errors=True)
        self.closed = True  # NOTE: after the removal: other threads read `closed` as "files gone"


def _safe_name(name: str) -> str:
    """An upload's own name (messages quote it) made safe to use inside the job's folder."""
    cleaned = re.sub(r"[^A-Za-z0-9._ -]", "_", Path(name).name).strip(" .")
    return cleaned[-100:] or "video"
