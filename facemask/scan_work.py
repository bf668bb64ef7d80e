"""What one scan worker does with one file: the photo or video through the gate and the pipeline,
into a file row and its face rows (facemask.scan_table gives them their columns).

A photo takes `facemask predict`'s path (load_image, then predict.image_result); a video takes
`facemask video`'s (the same frame scaling, `Pipeline.process` with a `FaceTracker`, one label per
person by vote), on frames sampled at `fps`. `FileScanner` is the Ray Data actor: it loads the
models once and scans the blocks of paths it is handed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error

from facemask import gate
from facemask.errors import FacemaskError, VideoError
from facemask.pipeline import Detection, FaceTracker, Pipeline, TrackVotes
from facemask.video import DEFAULT_FPS, av_reason, fit_frame, frame_rgb, open_video, output_size

PHOTO, VIDEO = "photo", "video"


@dataclass(frozen=True)
class ScanSettings:
    """What a scan computes: the same settings give the same rows (a resumed scan checks them)."""

    model_dir: str  # an absolute model folder, readable by every worker
    photo_detector: str = "photo"  # facemask.pipeline.DETECTOR_PRESETS, as `facemask predict`
    video_detector: str = "webcam"  # as `facemask video`
    runtime: str = "auto"
    fps: float = 2.0  # video frames analysed per second of video; 0: every frame


@dataclass
class FileResult:
    """One scanned file: its row of counts and its faces (dicts of the faces table's columns)."""

    file: str
    kind: str
    size: int
    width: int = 0
    height: int = 0
    frames: int = 0  # frames analysed (1 for a photo)
    seconds: float = 0.0  # video time covered by the analysed frames
    faces: Counter[str] = field(default_factory=Counter)  # detections per label
    people: Counter[str] = field(default_factory=Counter)  # a photo's faces; a video's tracks
    face_rows: list[dict[str, Any]] = field(default_factory=list)
    notes: str | None = None
    error: str | None = None


def face_row(file: str, det: Detection, frame: int, time: float | None, scale: float = 1.0):
    """One row of the faces table; `scale` maps a box back to the file's own pixels."""
    x1, y1, x2, y2 = (int(round(v * scale)) for v in det.box)
    return {
        "file": file, "frame": frame, "time": time, "x1": x1, "y1": y1, "x2": x2, "y2": y2,
        "label": det.label, "confidence": round(float(det.confidence), 4),
        "detection_score": round(float(det.detection_score), 4), "person": det.track_id,
    }  # fmt: skip


def scan_photo(pipeline: Pipeline, path: str, size: int) -> FileResult:
    """Detect and classify every face of a photo, exactly as `facemask predict` does."""
    from facemask.images import load_image
    from facemask.predict import image_result

    result = FileResult(path, PHOTO, size, frames=1)
    rgb = load_image(path, name=Path(path).name)  # the gate: size, format, header, pixels
    _, detections, _ = image_result(pipeline, rgb, path)
    result.height, result.width = rgb.shape[:2]
    for det in detections:
        result.faces[det.label] += 1
        result.people[det.label] += 1
        result.face_rows.append(face_row(path, det, 0, None))
    return result


def scan_video(pipeline: Pipeline, path: str, size: int, fps: float) -> FileResult:
    """Faces on the frames sampled at `fps` (0: every frame), tracked, one voted label per person.

    Frames are scaled as `facemask video` scales them before detection; boxes are given back in
    the video's own pixels. A stream damaged part-way keeps what came before (noted).
    """
    result = FileResult(path, VIDEO, size)
    name = Path(path).name
    container = open_video(Path(path), limited=False)
    tracker, people = FaceTracker(), TrackVotes()
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = Fraction(stream.average_rate or stream.guessed_rate or DEFAULT_FPS)
        start, sample, index, fitted = None, 0, -1, None
        try:
            for frame in container.decode(stream):
                index += 1
                time = frame.time if frame.time is not None else index / float(rate)
                start = time if start is None else start
                time -= start
                result.seconds = time + 1 / float(rate)  # the video's length, so far
                if fps > 0 and time * fps + 1e-6 < sample:
                    continue  # between two samples
                sample = int(time * fps + 1e-6) + 1 if fps > 0 else 0
                label = f"Frame {index + 1} of {name}"
                gate.check_size(frame.width, frame.height, label, VideoError)  # before converting
                rgb = gate.check_frame(frame_rgb(frame), label, VideoError)
                if fitted is None:
                    result.height, result.width = rgb.shape[:2]
                    fitted = output_size(result.width, result.height)
                detections = pipeline.process(fit_frame(rgb, *fitted), tracker)
                scale = result.width / fitted[0]
                for det in detections:
                    result.faces[det.label] += 1
                    result.face_rows.append(face_row(path, det, index, round(time, 3), scale))
                people.add(detections)
                result.frames += 1
        except (av.error.FFmpegError, ValueError) as exc:
            if result.frames == 0:
                raise VideoError(f"{name} could not be decoded: {av_reason(exc)}.") from exc
            result.notes = f"The video is damaged after frame {index}; the rest was skipped."
    finally:
        container.close()
    if result.frames == 0:
        raise VideoError(f"{name} has no decodable video frames.")
    result.people = people.people()
    result.seconds = round(result.seconds, 3)
    return result


class FileScanner:
    """The Ray Data actor: models loaded once, then blocks of (path, kind, size) rows scanned.

    `threads` bounds each worker's native threads, so that N workers share the cores instead of
    each assuming it has them all.
    """

    def __init__(self, settings: ScanSettings, threads: int = 1) -> None:
        import cv2

        from facemask.classify import MaskClassifier
        from facemask.detect import FaceDetector
        from facemask.pipeline import DETECTOR_PRESETS

        cv2.setNumThreads(threads)
        self.settings = settings
        classifier = MaskClassifier(settings.model_dir, settings.runtime, num_threads=threads)
        self.labels = classifier.labels
        self.pipelines = {
            kind: Pipeline(FaceDetector(DETECTOR_PRESETS[preset], threads), classifier)
            for kind, preset in ((PHOTO, settings.photo_detector), (VIDEO, settings.video_detector))
        }

    def scan(self, path: str, kind: str, size: int) -> FileResult:
        """One file; a file the gate or a decoder refuses becomes a row with its sentence."""
        try:
            if kind == VIDEO:
                return scan_video(self.pipelines[VIDEO], path, size, self.settings.fps)
            return scan_photo(self.pipelines[PHOTO], path, size)
        except FacemaskError as exc:
            return FileResult(path, kind, size, error=str(exc))
        except MemoryError:
            return FileResult(path, kind, size, error=f"{Path(path).name} needs too much memory.")
        except Exception as exc:  # noqa: BLE001 -- one file must not end a season's scan
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
            return FileResult(path, kind, size, error=f"{Path(path).name} failed ({reason}).")

    def __call__(self, batch):
        """A block of paths (pyarrow Table: path, kind, size) -> the block's file rows, each with
        its faces nested (facemask.scan_table.results_table)."""
        from facemask.scan_table import results_table

        columns = (batch[name].to_pylist() for name in ("path", "kind", "size"))
        return results_table([self.scan(*row) for row in zip(*columns, strict=True)], self.labels)


def worker_threads(cpus: float, workers: int) -> int:
    """Native threads per worker: the cores shared out, at least one each."""
    return max(1, int(cpus // max(1, workers)))
