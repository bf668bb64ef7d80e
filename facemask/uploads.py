"""The Upload page's work, testable without Streamlit: photos in, results and downloads out.

Each uploaded file goes through the gate (`load_image`) and the one pipeline; a file that cannot
be used becomes its own one-sentence error and never stops the others.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facemask.errors import FacemaskError
from facemask.gate import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, fit_side
from facemask.images import encode_image, load_image
from facemask.pipeline import LABEL_TEXT, Detection, Pipeline, annotate
from facemask.predict import image_result
from facemask.video import VideoSummary

IMAGE_TYPES = tuple(extension.lstrip(".") for extension in IMAGE_EXTENSIONS)
"""Extensions the Upload page offers; the gate checks the content whatever the name says."""
VIDEO_TYPES = tuple(extension.lstrip(".") for extension in VIDEO_EXTENSIONS)
SESSION_MAX_FILES = int(os.environ.get("FACEMASK_UPLOAD_MAX_FILES", "20"))
"""Photos one session may have analysed at once (the uploader holds them in server memory)."""
SESSION_MAX_BYTES = int(os.environ.get("FACEMASK_UPLOAD_MAX_MB", "400")) * 2**20
"""Bytes of photos one session may have analysed at once."""
PREVIEW_SIDE = 1600
"""The page shows an annotated photo at most this large (JPEG); the full-size PNG is made only
when it is downloaded, so a session keeps a few hundred KB per photo, not tens of MB."""
NO_FACE_HINT = (
    "No face was found in this image. If it is a close-up of one face, "
    "classify the whole image as that face."
)


@dataclass(frozen=True)
class ImageOutcome:
    """One uploaded photo: its `predict --json` object, a preview and face rows, or an error.

    `shown` is what is drawn on it (the faces, or the whole image when classified as one), so
    the full-size annotated PNG can be made again from the upload (`annotated_png`).
    """

    name: str
    result: dict[str, Any] | None = None
    preview: bytes = b""
    rows: list[dict[str, Any]] = field(default_factory=list)
    shown: tuple[Detection, ...] = ()
    error: FacemaskError | None = None
    legend: tuple[str, ...] = ()


def admitted(sizes: Sequence[int], max_files: int | None = None, max_bytes: int | None = None
             ) -> tuple[int, str | None]:  # fmt: skip
    """How many of a session's uploads (in order) fit its limits, and a sentence about the rest.

    Defaults: SESSION_MAX_FILES and SESSION_MAX_BYTES.
    """
    max_files = SESSION_MAX_FILES if max_files is None else max_files
    max_bytes = SESSION_MAX_BYTES if max_bytes is None else max_bytes
    count, total = 0, 0
    for size in sizes:
        if count == max_files or total + size > max_bytes:
            break
        count, total = count + 1, total + size
    if count == len(sizes):
        return count, None
    return count, (
        f"Only the first {count} of {len(sizes)} photos were analysed: a session may have "
        f"{max_files} photos or {max_bytes / 2**20:.0f} MB at a time. Remove some to add others."
    )


def face_rows(detections: Sequence[Detection]) -> list[dict[str, Any]]:
    """The page's face table: one row per face, labels in words."""
    return [
        {
            "face": i,
            "box": ", ".join(str(v) for v in det.box),
            "label": LABEL_TEXT.get(det.label, det.label),
            "confidence": round(det.confidence, 4),
            "detection score": round(det.detection_score, 4),
        }
        for i, det in enumerate(detections, start=1)
    ]


def analyse_image(
    data: bytes, name: str, pipeline: Pipeline, whole_image: bool = False
) -> ImageOutcome:
    """Gate, detect, classify and draw one uploaded photo; a user's bad file is its `error`.

    With whole_image and no face found, the whole image is drawn as one classified face.
    """
    try:
        rgb = load_image(data, name=name)
        result, detections, whole = image_result(pipeline, rgb, name, whole_image=whole_image)
        shown = (whole,) if whole is not None and not detections else tuple(detections)
        small, scale = fit_side(rgb, PREVIEW_SIDE)
        del rgb  # NOTE: the decoded photo (tens of MB) goes before the preview is drawn
        jpeg = encode_image(
            annotate(small, [_scaled(d, scale) for d in shown], legend=pipeline.labels), "JPEG", 85
        )
    except FacemaskError as exc:
        return ImageOutcome(name, error=exc)
    return ImageOutcome(
        name, result, jpeg, face_rows(detections), shown, legend=tuple(pipeline.labels)
    )


def _scaled(detection: Detection, scale: float) -> Detection:
    """A detection drawn on the photo scaled by `scale` (the preview)."""
    box = tuple(int(round(v * scale)) for v in detection.box)
    return dataclasses.replace(detection, box=box)


def annotated_png(data: bytes, outcome: ImageOutcome) -> bytes:
    """The full-size annotated PNG of an analysed upload (made on demand: a download)."""
    rgb = load_image(data, name=outcome.name)
    return encode_image(annotate(rgb, outcome.shown, legend=outcome.legend), "PNG")


def whole_image_sentence(result: dict[str, Any]) -> str:
    """'Whole image: **Mask** (97% confident).' for a result made with whole_image."""
    label = LABEL_TEXT.get(result["image_label"], result["image_label"])
    return f"Whole image: **{label}** ({result['image_confidence']:.0%} confident)."


def results_jsonl(results: Iterable[dict[str, Any]]) -> str:
    """One JSON object per image, as `facemask predict --json` prints them."""
    return "".join(json.dumps(r) + "\n" for r in results)


RESULTS_NAME = "facemask_results"
"""The file name of the results download (.csv, .jsonl)."""


def annotated_name(name: str, suffix: str = ".png") -> str:
    """The file name an annotated image (or video, `suffix` ".mp4") of `name` is saved under."""
    return f"{Path(name).stem}_annotated{suffix}"


def annotated_zip(uploads: Iterable[tuple[bytes, ImageOutcome]]) -> bytes:
    """Every annotated PNG of (upload bytes, outcome) pairs in one zip (names made unique when
    two uploads share a stem); made on demand, one photo at a time."""
    buffer = io.BytesIO()
    seen: set[str] = set()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for data, outcome in uploads:
            if outcome.error is not None:
                continue
            base = annotated_name(outcome.name)
            name, n = base, 1
            while name in seen:
                n += 1
                name = f"{Path(base).stem}-{n}.png"
            seen.add(name)
            archive.writestr(name, annotated_png(data, outcome))  # PNG is compressed already
    return buffer.getvalue()


def video_result(summary: VideoSummary) -> dict[str, Any]:
    """What the page keeps of a finished video: the MP4 bytes and the summary's numbers."""
    return {
        "mp4": summary.output.read_bytes(),
        "frames": summary.frames,
        "seconds": summary.seconds,
        "fps": summary.fps,
        "width": summary.width,
        "height": summary.height,
        "faces": summary.faces_per_label,
        "notes": list(summary.notes),
    }


def video_sentence(done: dict[str, Any]) -> str:
    """'N frames (S s at F fps), W x H px; faces: ...' for a finished video."""
    counts = ", ".join(
        f"{n} {LABEL_TEXT.get(label, label).lower()}" for label, n in done["faces"].items()
    )
    return (
        f"{done['frames']} frames ({done['seconds']:.1f} s at {done['fps']:.3g} fps), "
        f"{done['width']} x {done['height']} px; faces: {counts or 'none found'}."
    )
